"""The catalog: departments, datasets, their files and the classification history."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, ForeignKey, Index, String, Text, event, text
from sqlalchemy.orm import Mapped, Mapper, mapped_column, relationship

from ..labels import LABELS, label
from ..messages import Message
from .base import Base, utcnow

# The classes' names as the portal's records write them (Chinese; the label table's source).
OPEN_CLASS_LABELS = {code: words.source for code, words in LABELS["open_class"].items() if code}


class OpenClass(enum.StrEnum):
    """The three open classes of Art. 22."""

    UNCONDITIONAL = "unconditional"  # 无条件开放
    CONDITIONAL = "conditional"  # 有条件开放
    NOT_OPEN = "not_open"  # 不予开放

    @property
    def label(self) -> Message | str:
        return label("open_class", self.value)


PUBLIC_CLASSES = (OpenClass.UNCONDITIONAL.value, OpenClass.CONDITIONAL.value)


class DatasetStatus(enum.StrEnum):
    PUBLISHED = "published"  # on the portal (unconditional or conditional)
    INTERNAL = "internal"  # not open: metadata kept for its department, never public
    HELD = "held"  # waiting for the department to fix a problem (hold_reason)
    WITHDRAWN = "withdrawn"  # gone from its source, or withdrawn by its department


class Department(Base):
    """A 政务部门: provides data (one source per datum, Art. 17)."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)  # CKAN organization name or 提供方代码
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    datasets: Mapped[list[Dataset]] = relationship(back_populates="department")


class Dataset(Base):
    """One catalog entry (信息资源) as the portal keeps it."""

    __tablename__ = "datasets"
    __table_args__ = (Index("ix_datasets_status_class", "status", "open_class"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # CKAN dataset name, or the lower-cased 信息资源代码 for spreadsheets.
    name: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    summary: Mapped[str] = mapped_column(Text, default="")
    resource_code: Mapped[str | None] = mapped_column(String(100), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    domain: Mapped[str | None] = mapped_column(String(100))
    data_format: Mapped[str | None] = mapped_column(String(100))
    share_class: Mapped[str | None] = mapped_column(String(100))
    share_conditions: Mapped[str | None] = mapped_column(Text)
    open_class: Mapped[str | None] = mapped_column(String(20))  # OpenClass, or None while unknown
    open_conditions: Mapped[str | None] = mapped_column(Text)
    legal_basis: Mapped[str | None] = mapped_column(Text)
    update_cycle: Mapped[str | None] = mapped_column(String(50))
    published_date: Mapped[date | None]
    tags: Mapped[list] = mapped_column(default=list)
    # What the source said, exactly (unknown open-class words, extra fields) for the department.
    source_fields: Mapped[dict] = mapped_column(default=dict)
    # The department's edits of public metadata in the console ({"title", "summary", "tags",
    # "domain", "title_en"}): applied over the catalog's values by every harvest.
    edits: Mapped[dict] = mapped_column(default=dict)
    # The department's reclassification in the console, with its legal basis; the harvest
    # classifies by it instead of the catalog's word until the department clears it.
    class_override: Mapped[str | None] = mapped_column(String(20))
    override_basis: Mapped[str | None] = mapped_column(Text)
    override_conditions: Mapped[str | None] = mapped_column(Text)  # 开放条件 given with it
    # Touches state secrets, commercial secrets or personal privacy (Jiangsu Art. 18): requests
    # get SENSITIVE_WORKING_DAYS and a refusal is a written decision. From the catalog
    # (涉及秘密或隐私: 是) or set by the department in the console.
    sensitive: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # The department's sandbox settings (issue 21): conditional data reached only through the
    # sandbox (no file grant), and the least number of records behind any released cell.
    sandbox_only: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    sandbox_k: Mapped[int] = mapped_column(default=10, server_default=text("10"))

    status: Mapped[str] = mapped_column(String(20), default=DatasetStatus.HELD.value)
    hold_reason: Mapped[str | None] = mapped_column(Text)
    # What holds it, for the department: [{"code", "file", "sheet", "column", "kind", "count",
    # "rows", "examples"}] (harvest.holds.explain turns each code into words and a fix).
    hold_details: Mapped[list | None] = mapped_column()
    # The department's masking (脱敏) per column: {column: {"method": "partial"|"drop", "kind"}};
    # every version made from now on is masked so before it is scanned.
    masking: Mapped[dict | None] = mapped_column()

    source_id: Mapped[int | None] = mapped_column(ForeignKey("harvest_sources.id"), index=True)
    source_ref: Mapped[str] = mapped_column(String(200))  # CKAN name / 信息资源代码 as in the source
    # Fingerprints of what the source last said, so an unchanged entry costs no work.
    metadata_fingerprint: Mapped[str | None] = mapped_column(String(64))
    files_fingerprint: Mapped[str | None] = mapped_column(String(64))

    download_count: Mapped[int] = mapped_column(default=0)
    # Set in the same transaction as any change a search index must see; cleared once the
    # index has committed it. A killed harvest leaves it set, so the next sync catches up.
    search_dirty: Mapped[bool] = mapped_column(default=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    withdrawn_at: Mapped[datetime | None]
    # Merged into another department's entry (Art. 15, portal/catalog/duplicates.py): this one
    # is withdrawn and its page leads to the one kept. No foreign key: SQLite adds a constrained
    # column only by rebuilding the table (see migration 0012).
    merged_into_id: Mapped[int | None]

    department: Mapped[Department] = relationship(back_populates="datasets")
    distributions: Mapped[list[Distribution]] = relationship(
        back_populates="dataset", order_by="Distribution.fetched_at", cascade="all, delete-orphan"
    )
    # The data dictionary, by column name: it outlives versions (a new file keeps its columns'
    # descriptions) and harvests (a department's edit in the console wins over the catalog's).
    field_descriptions: Mapped[list[FieldDescription]] = relationship(
        order_by="FieldDescription.id", cascade="all, delete-orphan"
    )
    classification_events: Mapped[list[ClassificationEvent]] = relationship(
        back_populates="dataset", order_by="ClassificationEvent.id"
    )

    @property
    def is_public(self) -> bool:
        return self.status == DatasetStatus.PUBLISHED.value and self.open_class in PUBLIC_CLASSES

    @property
    def effective_basis(self) -> str | None:
        """The legal basis in force: the department's, given with its reclassification, over
        the catalog's (every public surface shows this one)."""
        return self.override_basis if self.class_override and self.override_basis else self.legal_basis

    @property
    def effective_conditions(self) -> str | None:
        return (
            self.override_conditions
            if self.class_override and self.override_conditions
            else self.open_conditions
        )

    @property
    def current_distributions(self) -> list[Distribution]:
        return [d for d in self.distributions if d.superseded_at is None]

    @property
    def served_tables(self) -> list[DataTable]:
        """The tables any public path may serve or describe (downloads, preview, APIs, DCAT,
        licensed files): current versions that passed the publication gate. Unconditional
        data: clean versions only; conditional data may hold personal information under a
        licence, never rows that could not be read."""
        allowed = ("clean",) if self.open_class == OpenClass.UNCONDITIONAL.value else ("clean", "personal")
        return [
            t
            for d in self.current_distributions
            if d.scan_status in allowed and d.purged_at is None
            for t in d.tables
        ]


class Distribution(Base):
    """A data file as fetched from the source: one version of one resource.

    A changed file makes a new Distribution and marks the earlier one superseded (kept, with
    its date); the current ones have superseded_at NULL.
    """

    __tablename__ = "distributions"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    source_name: Mapped[str] = mapped_column(String(500))  # file name or resource name
    source_url: Mapped[str | None] = mapped_column(Text)
    media_format: Mapped[str] = mapped_column(String(20))  # csv, xlsx
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    encoding: Mapped[str | None] = mapped_column(String(30))  # detected, for CSV sources
    original_path: Mapped[str] = mapped_column(Text)  # relative to the files folder
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)
    superseded_at: Mapped[datetime | None]
    # The publication gate's verdict on exactly these files: clean | personal (personal
    # information found) | incomplete (rows that could not be read). NULL: made before the
    # gate, never served until harvested again. Only a clean version is ever served openly.
    scan_status: Mapped[str | None] = mapped_column(String(20))
    masking: Mapped[dict | None] = mapped_column()  # the masking applied to make this version
    purged_at: Mapped[datetime | None]  # its files were removed from storage (the row is the record)

    dataset: Mapped[Dataset] = relationship(back_populates="distributions")

    @property
    def servable(self) -> bool:
        """May be served to anyone (when its dataset is unconditional and public)."""
        return self.scan_status == "clean" and self.purged_at is None

    tables: Mapped[list[DataTable]] = relationship(
        back_populates="distribution", order_by="DataTable.position", cascade="all, delete-orphan"
    )


class DataTable(Base):
    """One table of a distribution (a CSV, or one sheet of a workbook), converted."""

    __tablename__ = "data_tables"

    id: Mapped[int] = mapped_column(primary_key=True)
    distribution_id: Mapped[int] = mapped_column(ForeignKey("distributions.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    sheet: Mapped[str | None] = mapped_column(String(200))
    parquet_path: Mapped[str] = mapped_column(Text)
    csv_path: Mapped[str] = mapped_column(Text)  # UTF-8
    row_count: Mapped[int]
    # [{"name": ..., "type": ...}] in pyarrow type names
    schema: Mapped[list] = mapped_column(default=list)
    # Every download format: {"csv": {"path", "size", "sha256"}, "parquet": ..., "xlsx": ..., "json": ...}
    formats: Mapped[dict] = mapped_column(default=dict)
    # Personal information found, per column (harvest.pii.Finding.as_dict), and the table's
    # problems (rows that could not be read) — empty for a clean table.
    findings: Mapped[list | None] = mapped_column()
    problems: Mapped[list | None] = mapped_column()
    notes: Mapped[list | None] = mapped_column()  # title lines above the header, notes below

    distribution: Mapped[Distribution] = relationship(back_populates="tables")


class FieldDescription(Base):
    """One column of a dataset described (数据项): its Chinese name, what it means, its unit and,
    where it has one, its code list (代码表) as [[code, meaning], …]. From the catalog's 信息项
    (source "catalog"), or written by the department in the console (source "console")."""

    __tablename__ = "field_descriptions"
    __table_args__ = (Index("uq_field_descriptions_dataset_name", "dataset_id", "name", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))  # the column's name in the data file
    title: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(String(50))
    codes: Mapped[list | None] = mapped_column()
    source: Mapped[str] = mapped_column(String(20), default="catalog")  # catalog|console
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Upload(Base):
    """A new version of a data file, given by its department in the console
    (portal/catalog/uploads.py): received in chunks into a file of its own, checked in a dry run
    (the report: what the gate finds, what would be published), published when the curator
    confirms."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random: it names the file
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    filename: Mapped[str] = mapped_column(String(200))  # as shown (the uploader's name, cleaned)
    size: Mapped[int] = mapped_column(BigInteger)  # bytes announced at the start
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    replace_id: Mapped[int | None] = mapped_column(ForeignKey("distributions.id"))
    # receiving | checking | checked | publishing | published | failed | discarded
    status: Mapped[str] = mapped_column(String(20), default="receiving")
    masking: Mapped[dict | None] = mapped_column()  # the department's choice for this version
    report: Mapped[dict | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    dataset: Mapped[Dataset] = relationship()


class DuplicateCase(Base):
    """A likely duplicate pair the bureau sent to both departments (Art. 15): one department
    proposes which entry is kept, the other confirms (the other entry is merged into it), or
    either dismisses the pair with a reason."""

    __tablename__ = "duplicate_cases"
    __table_args__ = (Index("uq_duplicate_cases_pair", "dataset_a_id", "dataset_b_id", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_a_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    dataset_b_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open|proposed|merged|dismissed
    keep_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"))  # the entry proposed to keep
    proposed_by_department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    reason: Mapped[str | None] = mapped_column(Text)  # why it was dismissed
    sent_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]

    dataset_a: Mapped[Dataset] = relationship(foreign_keys=[dataset_a_id])
    dataset_b: Mapped[Dataset] = relationship(foreign_keys=[dataset_b_id])
    keep: Mapped[Dataset | None] = relationship(foreign_keys=[keep_id])

    @property
    def datasets(self) -> tuple[Dataset, Dataset]:
        return self.dataset_a, self.dataset_b


class RestrictionRequest(Base):
    """Restricting a published dataset needs the bureau's approval; meanwhile it is held."""

    __tablename__ = "restriction_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    from_class: Mapped[str] = mapped_column(String(20))
    to_class: Mapped[str] = mapped_column(String(20))
    legal_basis: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    decision: Mapped[str | None] = mapped_column(String(20))  # approved | rejected; None while pending
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)

    dataset: Mapped[Dataset] = relationship()


class DownloadEvent(Base):
    """One download (or the first request of a resumed one): counts and trends."""

    __tablename__ = "download_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    table_id: Mapped[int | None] = mapped_column(ForeignKey("data_tables.id"))
    format: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ClassificationEvent(Base):
    """Append-only history of every classification and reclassification (design: rules).

    Rows are never updated or deleted: an ORM guard below refuses it, and the migration adds
    database triggers that refuse it to any other client as well.
    """

    __tablename__ = "classification_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    from_class: Mapped[str | None] = mapped_column(String(20))
    to_class: Mapped[str | None] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    legal_basis: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))  # "harvest job 12" or a user
    note: Mapped[str | None] = mapped_column(Text)

    dataset: Mapped[Dataset] = relationship(back_populates="classification_events")


class AppendOnlyError(RuntimeError):
    pass


@event.listens_for(ClassificationEvent, "before_update")
@event.listens_for(ClassificationEvent, "before_delete")
def _refuse_change(_mapper: Mapper[Any], _conn: Connection, target: Base) -> None:
    raise AppendOnlyError("classification history is append-only")

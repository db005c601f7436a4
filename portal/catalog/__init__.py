"""Read side of the catalog. Every public page, API answer and download finds datasets
through here, so the rule 'nothing not open, held or withdrawn is ever public' lives in
one place (rules.md 6)."""

from __future__ import annotations

import datetime as dt
import os
from functools import lru_cache

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session, joinedload

from portal import clock

from ..models import (
    PUBLIC_CLASSES,
    ClassificationEvent,
    Dataset,
    DatasetStatus,
    DataTable,
    Department,
    Distribution,
)
from ..storage import Storage


def public_datasets() -> Select[Dataset]:
    return select(Dataset).where(
        Dataset.status == DatasetStatus.PUBLISHED.value, Dataset.open_class.in_(PUBLIC_CLASSES)
    )


def domain_is_public(session: Session, domain: str) -> bool:
    """A data domain has a page (and a feed, and can be followed) while a public dataset is in it."""
    return (
        session.scalar(
            public_datasets().with_only_columns(Dataset.id).where(Dataset.domain == domain).limit(1)
        )
        is not None
    )


def only_public(session: Session, names: list[str]) -> set[str]:
    """Which of these names are public right now: a safety net between the index and a page."""
    if not names:
        return set()
    return set(
        session.scalars(public_datasets().with_only_columns(Dataset.name).where(Dataset.name.in_(names)))
    )


def get_public_dataset(session: Session, name: str, *, whole: bool = True) -> Dataset | None:
    """The dataset with its department, versions and tables, in one query (a page and
    package_show read them all); `whole=False`: the dataset's row only (a page whose parts are
    kept rendered, portal/fragments.py, reads the rest only when it renders them)."""
    if not whole:
        return session.scalars(_PUBLIC_BY_NAME, {"name": name}).one_or_none()
    found = session.execute(_PUBLIC_BY_NAME_WHOLE, {"name": name})
    return found.unique().scalar_one_or_none()


# Built once: making the statement (not running it) was a fifth of a kept page's time.
_PUBLIC_BY_NAME = public_datasets().where(Dataset.name == bindparam("name"))
_PUBLIC_BY_NAME_WHOLE = _PUBLIC_BY_NAME.options(
    joinedload(Dataset.distributions).joinedload(Distribution.tables),
    joinedload(Dataset.department),
)


def merged_into(session: Session, name: str) -> str | None:
    """The public entry a merged dataset now leads to (its name), or None."""
    merged = session.scalar(select(Dataset.merged_into_id).where(Dataset.name == name))
    if merged is None:
        return None
    kept = session.get(Dataset, merged)
    return kept.name if kept is not None and kept.is_public else None


def out_of_view(session: Session, name: str) -> str | None:
    """Why a dataset that was public is not now: "review" (held: awaiting a fix or the
    bureau's decision on a restriction) or "withdrawn"; None for anything else — a dataset
    that was never public, or is now not open, is not known to exist."""
    ds = session.scalar(select(Dataset).where(Dataset.name == name))
    if ds is None or ds.open_class not in PUBLIC_CLASSES or ds.status not in ("held", "withdrawn"):
        return None
    was_public = session.scalar(
        select(ClassificationEvent.id)
        .where(ClassificationEvent.dataset_id == ds.id, ClassificationEvent.to_status == "published")
        .limit(1)
    )
    if was_public is None:
        return None
    return "review" if ds.status == "held" else "withdrawn"


def counts_by_class(session: Session) -> dict[str, int]:
    rows = session.execute(
        public_datasets().with_only_columns(Dataset.open_class, func.count()).group_by(Dataset.open_class)
    ).all()
    return {cls: 0 for cls in PUBLIC_CLASSES} | {cls: n for cls, n in rows if cls is not None}


def departments_with_counts(session: Session) -> list[tuple[Department, int]]:
    sub = (
        public_datasets()
        .with_only_columns(Dataset.department_id, func.count().label("n"))
        .group_by(Dataset.department_id)
        .subquery()
    )
    return list(
        session.execute(
            select(Department, sub.c.n)
            .join(sub, sub.c.department_id == Department.id)
            .order_by(sub.c.n.desc(), Department.name)
        ).all()
    )


# ---------------------------------------------------------------------- dataset page


def attribution_line(ds: Dataset, date: dt.date | None = None) -> str:
    """Art. 25: the source department and the date the data was obtained (today, by default)."""

    from harvest.formats import attribution

    return attribution(ds.department.name, ds.title, (date or clock.today()).isoformat())


def preview(storage: Storage, table: DataTable, page: int, rows: int) -> dict:
    """A page of the first PREVIEW_LIMIT rows, read from the Parquet file's first batch only."""
    path = storage.local_path(table.parquet_path)
    st = os.stat(path)  # gone behind the portal's back: FileNotFoundError, as when it was read
    version = (str(path), st.st_mtime_ns, st.st_size)
    return _preview_page(version, min(PREVIEW_LIMIT, table.row_count), page, rows)


@lru_cache(maxsize=512)
def _preview_page(version: tuple[str, int, int], limit: int, page: int, rows: int) -> dict:
    """Kept per file version (path, mtime, size) and page: a render reads the Parquet file
    once, not on every request. Read-only for its callers."""
    path = version[0]
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    first = next(pf.iter_batches(batch_size=PREVIEW_LIMIT), None)
    pages = max((limit + rows - 1) // rows, 1)
    page = min(page, pages)
    data = first.slice((page - 1) * rows, rows).to_pylist() if first is not None else []
    return {"columns": pf.schema_arrow.names, "rows": data, "page": page, "pages": pages, "limit": limit}


PREVIEW_LIMIT = 1000


def history(ds: Dataset) -> list[Distribution]:
    """Every version of every file, newest first (the update history)."""
    return sorted(ds.distributions, key=lambda d: d.fetched_at, reverse=True)


# ---------------------------------------------------------------------- open lists (Art. 23)

LIST_COLUMNS = [
    ("resource_code", "信息资源代码"),
    ("title", "信息资源名称"),
    ("domain", "数据领域"),
    ("data_format", "信息资源格式"),
    ("update_cycle", "更新周期"),
    ("published_date", "发布日期"),
]
CONDITIONAL_COLUMNS = [("effective_conditions", "开放条件"), ("effective_basis", "法律依据")]


def open_lists(session: Session, department: Department) -> dict[str, list[Dataset]]:
    """The department's 无条件开放清单 and 有条件开放清单: what it publishes, by class."""
    rows = session.scalars(
        public_datasets()
        .where(Dataset.department_id == department.id)
        .order_by(Dataset.resource_code, Dataset.name)
    ).all()
    return {cls: [d for d in rows if d.open_class == cls] for cls in PUBLIC_CLASSES}


def list_table(datasets: list[Dataset], open_class: str) -> tuple[list[str], list[list[str]]]:
    columns = LIST_COLUMNS + (CONDITIONAL_COLUMNS if open_class == "conditional" else [])
    header = [label for _, label in columns]
    rows = [
        ["" if getattr(d, attr) is None else str(getattr(d, attr)) for attr, _ in columns] for d in datasets
    ]
    return header, rows

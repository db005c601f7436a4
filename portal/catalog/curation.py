"""The department console's rules: reclassification, restriction approval, metadata edits,
publish and withdraw, catalog freshness. Plain functions over a session.

Opening up takes effect at once. Restricting a published dataset (to conditional or not
open) needs the bureau's approval and withdraws it from public view meanwhile. Every change
is in the classification history. Edits and reclassifications survive later harvests: the
harvest applies `Dataset.edits` over the catalog's values and classifies by
`Dataset.class_override` while one is set.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session, sessionmaker

from harvest.classify import has_legal_basis
from harvest.decisions import EDITABLE, apply_edits, pending_hold, pending_restriction
from harvest.gate import purge_files
from harvest.holds import detail, held_by_gate, hold_fields
from portal import clock
from portal.audit import record
from portal.authz import Action, require
from portal.errors import DomainError
from portal.messages import Message, _, source
from portal.models import (
    ClassificationEvent,
    Dataset,
    DatasetStatus,
    OpenClass,
    RestrictionRequest,
    User,
    utcnow,
)
from portal.storage import Storage

OPENNESS = {
    None: -1,
    OpenClass.NOT_OPEN.value: 0,
    OpenClass.CONDITIONAL.value: 1,
    OpenClass.UNCONDITIONAL.value: 2,
}


class CurationError(DomainError):
    """A message for the curator at the console."""


def _curator(user: User, ds: Dataset) -> None:
    """Curators act on their own department's datasets only."""
    require(user, Action.CURATE, ds)


def _history(session: Session, ds: Dataset, actor: User, before: tuple, basis: str | None, note: str) -> None:
    session.add(
        ClassificationEvent(
            dataset_id=ds.id,
            from_class=before[0],
            to_class=ds.open_class,
            from_status=before[1],
            to_status=ds.status,
            legal_basis=basis,
            actor=f"user {actor.id} ({actor.email})",
            note=note,
        )
    )
    ds.search_dirty = True
    ds.updated_at = utcnow()


def reclassify(
    session: Session,
    storage: Storage,
    curator: User,
    ds: Dataset,
    to_class: str,
    legal_basis: str,
    reason: str = "",
    ip: str | None = None,
    conditions: str = "",
) -> str:
    """Returns 'applied' (opening up, at once) or 'pending' (a restriction for the bureau)."""
    _curator(curator, ds)
    if to_class not in OPENNESS or to_class is None:
        raise CurationError(_("请选择开放类型"))
    if to_class != OpenClass.UNCONDITIONAL.value and not has_legal_basis(legal_basis):
        raise CurationError(_("有条件开放和不予开放须写明法律依据"))
    if to_class == ds.open_class and ds.status != DatasetStatus.HELD.value:
        raise CurationError(_("开放类型未改变"))
    if pending_restriction(session, ds):
        raise CurationError(_("已有待审批的限制开放申请"))
    from harvest.pii import scan_text

    if found := scan_text(
        [legal_basis or "", conditions or ""], "法律依据或开放条件"
    ):  # shown on public pages
        raise CurationError(_("法律依据和开放条件中不得含个人信息：%(found)s", found=found[0].describe()))
    before = (ds.open_class, ds.status)
    ds.class_override, ds.override_basis = to_class, legal_basis or None
    ds.override_conditions = (conditions or "").strip() or None
    restricting = ds.status == DatasetStatus.PUBLISHED.value and OPENNESS[to_class] < OPENNESS[ds.open_class]
    if restricting:
        session.add(
            RestrictionRequest(
                dataset_id=ds.id,
                requested_by_id=curator.id,
                from_class=ds.open_class,
                to_class=to_class,
                legal_basis=legal_basis,
                reason=reason or "",
            )
        )
        ds.status = DatasetStatus.HELD.value
        ds.hold_reason, ds.hold_details = hold_fields(pending_hold())
        _history(
            session,
            ds,
            curator,
            before,
            legal_basis,
            f"申请限制为{source(OpenClass(to_class).label)}：{reason}",
        )
        record(
            session, "restriction_requested", actor=curator, target=f"dataset:{ds.name}", ip=ip, to=to_class
        )
        return "pending"
    _set_class(storage, ds, to_class)
    _history(session, ds, curator, before, legal_basis, reason or "部门在控制台调整开放类型")
    record(session, "reclassified", actor=curator, target=f"dataset:{ds.name}", ip=ip, to=to_class)
    return "applied"


def _set_class(storage: Storage, ds: Dataset, to_class: str) -> None:
    """Make the class effective now. Data already fetched is published; a dataset whose file
    was never fetched (it was not open) waits for the next harvest to fetch it."""
    from harvest import gate

    ds.open_class = to_class
    if to_class == OpenClass.NOT_OPEN.value:
        ds.status, ds.hold_reason, ds.hold_details = DatasetStatus.INTERNAL.value, None, None
        purge_files(storage, ds)
        return
    tables = [t for d in ds.current_distributions for t in d.tables]
    if not tables:
        ds.status = DatasetStatus.HELD.value
        ds.hold_reason, ds.hold_details = hold_fields([detail("waiting_for_files")])
        ds.metadata_fingerprint = None  # the next harvest processes it again
        return
    ds.status, ds.hold_reason, ds.hold_details = DatasetStatus.PUBLISHED.value, None, None
    held = gate.hold(ds, to_class)  # opened up: the gate's verdict on the same files
    if held:
        ds.status = DatasetStatus.HELD.value
        ds.hold_reason, ds.hold_details = held


def decide_restriction(
    session: Session,
    storage: Storage,
    bureau: User,
    request: RestrictionRequest,
    approve: bool,
    note: str = "",
    ip: str | None = None,
) -> None:
    require(bureau, Action.DECIDE_RESTRICTION, request)
    if request.decision is not None:
        raise CurationError(_("该申请已处理"))
    ds = request.dataset
    before = (ds.open_class, ds.status)
    request.decision, request.decided_by_id, request.decided_at, request.note = (
        ("approved" if approve else "rejected"),
        bureau.id,
        utcnow(),
        note or None,
    )
    if approve:
        _set_class(storage, ds, request.to_class)
    else:
        from harvest import gate

        ds.class_override, ds.override_basis, ds.override_conditions = (
            None,
            None,
            None,
        )  # back to the catalog's class
        ds.status, ds.hold_reason, ds.hold_details = DatasetStatus.PUBLISHED.value, None, None
        held = gate.hold(ds, ds.open_class)  # back to public only through the gate
        if held:
            ds.status = DatasetStatus.HELD.value
            ds.hold_reason, ds.hold_details = held
    _history(
        session,
        ds,
        bureau,
        before,
        request.legal_basis,
        f"大数据局{'批准' if approve else '驳回'}限制开放申请" + (f"：{note}" if note else ""),
    )
    record(
        session,
        "restriction_decided",
        actor=bureau,
        target=f"dataset:{ds.name}",
        ip=ip,
        decision=request.decision,
    )


def masking_choices(ds: Dataset) -> list[dict]:
    """The columns the department may mask: those the gate found personal information in (in
    the current version, or masked already), with the kind found and the choice in force."""
    chosen = ds.masking or {}
    seen: dict[str, dict] = {}
    for dist in ds.current_distributions:
        for table in dist.tables:
            for finding in table.findings or []:
                columns = finding.get("columns") or [finding["column"]]
                kinds = finding.get("column_kinds") or [finding["kind"]] * len(columns)
                for column, kind in zip(columns, kinds, strict=False):
                    seen.setdefault(
                        column,
                        {
                            "column": column,
                            "kind": kind,
                            "count": finding.get("count", 0),
                            "examples": finding.get("examples", []),
                        },
                    )
    for column, choice in chosen.items():
        seen.setdefault(
            column, {"column": column, "kind": choice.get("kind", ""), "count": 0, "examples": []}
        )
    return [{**c, "method": (chosen.get(c["column"]) or {}).get("method", "")} for c in seen.values()]


def _masking_of(ds: Dataset, methods: dict[str, str]) -> dict:
    """{column: {"method", "kind"}} for the columns given a method; each column must be one of
    the dataset's, each method one the harvest knows."""
    from harvest.pii import MASKING_METHODS

    known = {c["column"]: c for c in masking_choices(ds)}
    masking = {}
    for column, method in methods.items():
        if column not in known:
            raise CurationError(_("没有这一列：%(column)s", column=column))
        if method and method not in MASKING_METHODS:
            raise CurationError(_("请选择脱敏方式"))
        if method:
            masking[column] = {"method": method, "kind": known[column]["kind"]}
    return masking


def apply_gate(session: Session, storage: Storage, ds: Dataset) -> None:
    """After the department made a new version (masking, an upload): the gate decides whether
    the dataset is published or held, and versions that may not be served leave storage."""
    from harvest import gate

    if ds.status == DatasetStatus.PUBLISHED.value or (
        ds.status == DatasetStatus.HELD.value and held_by_gate(ds.hold_details)
    ):
        held = gate.hold(ds, ds.open_class)
        if held:
            ds.status = DatasetStatus.HELD.value
            ds.hold_reason, ds.hold_details = held
        elif not pending_restriction(session, ds):
            ds.status, ds.hold_reason, ds.hold_details = DatasetStatus.PUBLISHED.value, None, None
    gate.purge_unservable(storage, ds)


def set_masking(
    session: Session,
    storage: Storage,
    curator: User,
    ds: Dataset,
    methods: dict[str, str],
    ip: str | None = None,
) -> str:
    """The department's masking (脱敏) per column: {column: "partial" | "drop" | ""}. The current
    files are converted again with it into a new version, which the gate scans like any other;
    the earlier version, if it held personal information, is removed from storage. Every later
    harvest masks the same way. Returns the dataset's status afterwards."""
    from harvest.run import Harvester, _EntryFailed

    _curator(curator, ds)
    if ds.open_class == OpenClass.NOT_OPEN.value or not ds.current_distributions:
        raise CurationError(_("没有可脱敏的数据文件"))
    masking = _masking_of(ds, methods)
    if masking == (ds.masking or {}):
        raise CurationError(_("脱敏方式未改变"))
    before = (ds.open_class, ds.status)
    ds.masking = masking or None
    try:
        # A new version from the stored files, scanned again, in this session (the harvester's
        # own sessions go unused).
        Harvester(sessionmaker(session.get_bind()), storage).remake(session, ds)
    except _EntryFailed as exc:
        raise CurationError(exc.args[0]) from exc
    apply_gate(session, storage, ds)
    columns = (
        "、".join(f"{c}（{'删除' if m['method'] == 'drop' else '部分遮蔽'}）" for c, m in masking.items())
        or "取消脱敏"
    )
    _history(session, ds, curator, before, ds.legal_basis, f"部门设置脱敏：{columns}")
    record(session, "masking_set", actor=curator, target=f"dataset:{ds.name}", ip=ip, masking=masking)
    return ds.status


def set_sensitive(
    session: Session, curator: User, ds: Dataset, sensitive: bool, ip: str | None = None
) -> None:
    """The department marks a dataset as touching state secrets, commercial secrets or personal
    privacy (Jiangsu Art. 18): requests for it get the longer term, refusals in writing."""
    _curator(curator, ds)
    if ds.sensitive == sensitive:
        raise CurationError(_("未改变"))
    ds.sensitive = sensitive
    record(session, "sensitivity_set", actor=curator, target=f"dataset:{ds.name}", ip=ip, sensitive=sensitive)


def edit_metadata(session: Session, curator: User, ds: Dataset, changes: dict, ip: str | None = None) -> None:
    _curator(curator, ds)
    edits = dict(ds.edits or {})
    for key, value in changes.items():
        if key not in EDITABLE:
            continue
        value = [t for t in (value or []) if t] if key == "tags" else (value or "").strip()
        if value:
            edits[key] = value
        else:
            edits.pop(key, None)
    if edits.get("title") is not None and len(edits["title"]) > 500:
        raise CurationError(_("名称过长"))
    from harvest.pii import scan_text

    for key in ("title", "summary", "domain", "title_en", "summary_en", "tags"):
        value = edits.get(key)
        found = scan_text(value if isinstance(value, list) else [value or ""], key)
        if found:
            raise CurationError(_("公开元数据中不得含个人信息：%(found)s", found=found[0].describe()))
    catalog = (ds.source_fields or {}).get("catalog", {})
    for key in ("title", "summary", "domain", "tags"):  # back to the catalog's value when an edit is cleared
        if key not in edits and key in catalog:
            setattr(ds, key, catalog[key])
    ds.edits = edits
    apply_edits(ds)
    ds.search_dirty, ds.updated_at = True, utcnow()
    record(
        session, "metadata_edited", actor=curator, target=f"dataset:{ds.name}", ip=ip, fields=sorted(changes)
    )


def withdraw(session: Session, curator: User, ds: Dataset, reason: str, ip: str | None = None) -> None:
    _curator(curator, ds)
    if ds.status != DatasetStatus.PUBLISHED.value:
        raise CurationError(_("只有已发布的数据可以撤回"))
    before = (ds.open_class, ds.status)
    ds.status, ds.withdrawn_at, ds.hold_reason = DatasetStatus.WITHDRAWN.value, utcnow(), reason or "部门撤回"
    _history(session, ds, curator, before, ds.legal_basis, f"部门撤回：{reason}")
    record(session, "dataset_withdrawn", actor=curator, target=f"dataset:{ds.name}", ip=ip)


def publish(session: Session, curator: User, ds: Dataset, ip: str | None = None) -> None:
    """Publish again a dataset the department withdrew (its class and files unchanged)."""
    _curator(curator, ds)
    if ds.status != DatasetStatus.WITHDRAWN.value or ds.open_class not in (
        OpenClass.UNCONDITIONAL.value,
        OpenClass.CONDITIONAL.value,
    ):
        raise CurationError(_("只有已撤回的开放数据可以重新发布"))
    if not ds.current_distributions:
        raise CurationError(_("没有数据文件，等待采集"))
    before = (ds.open_class, ds.status)
    ds.status, ds.withdrawn_at, ds.hold_reason = DatasetStatus.PUBLISHED.value, None, None
    ds.merged_into_id = None  # published again on its own: its page no longer leads elsewhere
    _history(session, ds, curator, before, ds.legal_basis, "部门重新发布")
    record(session, "dataset_published", actor=curator, target=f"dataset:{ds.name}", ip=ip)


CATALOG_FIX_WORKING_DAYS = 15  # Art. 16: a catalog entry reflects a change within 15 working days


def overdue_fix(ds: Dataset, today: dt.date | None = None) -> dt.date | None:
    """The date by which a held entry should have been fixed in the catalog, if it has passed."""
    from portal.workdays import add_working_days

    if ds.status != DatasetStatus.HELD.value:
        return None
    held_since = max(
        (e.at for e in ds.classification_events if e.to_status == DatasetStatus.HELD.value), default=None
    )
    if held_since is None:
        return None
    due = add_working_days(clock.local(held_since).date(), CATALOG_FIX_WORKING_DAYS).date
    return due if due < (today or clock.today()) else None


CYCLE_DAYS = {"实时": 1, "每日": 1, "每周": 7, "每月": 31, "每季度": 92, "每半年": 183, "每年": 366}


def stale(ds: Dataset, today: dt.date | None = None) -> Message | None:
    """Why an entry counts as out of date (Art. 14–16), or None."""
    today = today or clock.today()
    days = CYCLE_DAYS.get((ds.update_cycle or "").strip())
    if days is None or not ds.distributions:
        return None
    last = clock.local(max(d.fetched_at for d in ds.distributions)).date()
    published = ds.published_date or last
    newest = max(last, published)
    if (today - newest).days > days * 1.5:
        return _(
            "更新周期为「%(update_cycle)s」，最近一次更新在 %(newest)s",
            update_cycle=ds.update_cycle,
            newest=newest,
        )
    return None

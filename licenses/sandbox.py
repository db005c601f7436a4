"""The data sandbox (可用不可见, issue 21): a grant delivered as a sandbox never lets its data
leave. Its holder writes read-only aggregate SQL; the query is checked (licenses/disclosure.py),
run as a job over a DuckDB copy of the granted fields and rows only, and what the holder sees
has passed statistical disclosure control: small cells, dominated sums and cells that differ
from an earlier released one by fewer than k records are suppressed. An output the automatic
check cannot pass may be released by the providing department on request, with reasons.
Every query, its full result and every decision are kept for the department and the bureau."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import clock
from portal.audit import record
from portal.authz import Action, require
from portal.catalog.rows import Scope
from portal.messages import _, from_stored, stored
from portal.models import (
    ApplicationItem,
    Dataset,
    DataTable,
    Grant,
    SandboxQuery,
    SandboxRelease,
    User,
    utcnow,
)
from portal.storage import Storage

from .disclosure import (
    Outcome,
    Plan,
    Prior,
    QueryRefused,
    TableInfo,
    build_table,
    check_query,
    read_table_info,
    run_query,
)
from .errors import LicenceError
from .grants import grant_for_api
from .sandbox_engine import FORMAT

log = logging.getLogger(__name__)

MAX_SQL = 10_000
MIN_K = 5
MAX_WAITING = 3  # queries of one person queued or running at once
MAX_PER_HOUR = 60  # queries on one grant per hour: differencing by many small steps is slow work


@dataclass
class SandboxTable:
    """One table of a granted dataset as the sandbox shows it."""

    item: ApplicationItem
    table: DataTable

    @property
    def label(self) -> str:
        return self.table.sheet or self.item.dataset.title


def sandbox_grant_for(
    session: Session, user: User, dataset_id: int, today: dt.date | None = None
) -> tuple[Grant, ApplicationItem] | None:
    """The user's sandbox grant in force today that covers this dataset (the data API says where
    to go instead of refusing without words)."""
    return grant_for_api(session, user, dataset_id, today, delivery="sandbox")


def sandbox_grants(session: Session, user: User) -> list[Grant]:
    return list(
        session.scalars(
            select(Grant)
            .where(Grant.user_id == user.id, Grant.delivery == "sandbox")
            .order_by(Grant.id.desc())
        )
    )


def in_force(user: User, grant: Grant) -> None:
    """The holder's own sandbox grant, valid today — else a refusal in words."""
    require(user, Action.HOLD_GRANT, grant)
    if grant.delivery != "sandbox":
        raise LicenceError(_("该授权为文件交付，请在“我的授权”下载授权数据"))
    if (refusal := _not_in_force(grant)) is not None:
        raise LicenceError(refusal)


def _not_in_force(grant: Grant) -> object | None:
    """Why the grant cannot be used today, in words; None when it can."""
    state = grant.state()
    if state == "valid":
        return None
    return {
        "revoked": _("授权已撤销，数据沙箱不再可用"),
        "expired": _("授权已过期，数据沙箱不再可用"),
        "suspended": _("数据集暂停公开，授权暂停使用，恢复公开后自动恢复"),
    }.get(state, _("授权尚未生效"))


def tables(grant: Grant) -> list[SandboxTable]:
    return [SandboxTable(item, t) for item in grant.application.items for t in item.dataset.served_tables]


def find_table(grant: Grant, table_id: int) -> SandboxTable:
    for t in tables(grant):
        if t.table.id == table_id:
            return t
    raise LicenceError(_("该数据表不在授权范围内或暂不可用"))


def _scope(item: ApplicationItem) -> Scope:
    return Scope(fields=item.fields_approved, row_filter=item.row_filter)


def _copy_path(storage: Storage, st: SandboxTable) -> Path:
    scope = _scope(st.item)
    key = hashlib.sha256(
        # FORMAT: a copy made by an earlier engine (without record keys) is made again
        json.dumps([FORMAT, st.table.parquet_path, scope.fields, scope.row_filter], sort_keys=True).encode()
    ).hexdigest()[:16]
    return storage.cache_path(f"sandbox/{st.table.id}-{key}.duckdb")


def table_info(storage: Storage, st: SandboxTable) -> TableInfo:
    """The DuckDB copy of this table's granted part, made once per table version and scope."""
    path = _copy_path(storage, st)
    if path.exists():
        return read_table_info(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return build_table(storage.local_path(st.table.parquet_path), _scope(st.item), path)


def prepared(session: Session, storage: Storage, st: SandboxTable) -> TableInfo | None:
    """The copy's description if it is made; else None, and a job to make it is queued (a
    large table takes seconds: not in a request)."""
    from portal import jobs

    path = _copy_path(storage, st)
    if path.exists():
        return read_table_info(path)
    jobs.submit(
        session,
        "sandbox_prepare",
        {"grant": st.item.application.grant.id if st.item.application.grant else None, "table": st.table.id},
        key=f"sandbox_prepare:{path.name}",
    )
    return None


def prepare(session: Session, storage: Storage, grant_id: int, table_id: int) -> None:
    """The `sandbox_prepare` job: make the copy before the first query needs it."""
    grant = session.get(Grant, grant_id)
    if grant is None or grant.delivery != "sandbox" or grant.state() != "valid":
        return
    table_info(storage, find_table(grant, table_id))


def example_sql(st: SandboxTable, info: TableInfo | None) -> str:
    """A first query to edit that the checks pass: a count by the first column that may be
    grouped, once the copy says which those are; a plain count before that."""
    groupable = (
        [c.name for c in info.columns if not c.identifier and c.type in ("text", "bool")] if info else []
    )
    if not groupable:
        return "SELECT COUNT(*) AS 记录数\nFROM data"
    column = groupable[0]
    return f"SELECT {column}, COUNT(*) AS 记录数\nFROM data\nGROUP BY {column}\nORDER BY 记录数 DESC"


def submit(
    session: Session, user: User, grant: Grant, st: SandboxTable, sql: str, ip: str | None = None
) -> SandboxQuery:
    """Record the query; refuse at once what the check refuses, queue the rest as a job."""
    from portal import jobs

    in_force(user, grant)
    sql = (sql or "").strip()
    if not sql:
        raise LicenceError(_("请输入查询语句"))
    if len(sql) > MAX_SQL:
        raise LicenceError(_("查询语句过长（最多 %(n)s 个字符）", n=MAX_SQL))
    _check_pace(session, user, grant)
    query = SandboxQuery(
        grant_id=grant.id,
        item_id=st.item.id,
        dataset_id=st.item.dataset_id,
        table_id=st.table.id,
        user_id=user.id,
        sql=sql,
    )
    session.add(query)
    session.flush()
    # Checked and run by the job (the first query of a table makes its DuckDB copy, which
    # should not hold a request): a refusal comes back in words on the query's page.
    jobs.submit(session, "sandbox_query", {"query": query.id})
    record(
        session,
        "sandbox_query",
        actor=user,
        target=f"grant:{grant.id}",
        ip=ip,
        query=query.id,
        dataset=st.item.dataset.name,
        status=query.status,
    )
    return query


def _check_pace(session: Session, user: User, grant: Grant) -> None:
    waiting = session.scalar(
        select(func.count())
        .select_from(SandboxQuery)
        .where(SandboxQuery.user_id == user.id, SandboxQuery.status.in_(("queued", "running")))
    )
    if waiting and waiting >= MAX_WAITING:
        raise LicenceError(_("已有 %(n)s 个查询在运行，请等待其完成后再提交", n=waiting))
    hour_ago = utcnow() - dt.timedelta(hours=1)
    recent = session.scalar(
        select(func.count())
        .select_from(SandboxQuery)
        .where(SandboxQuery.grant_id == grant.id, SandboxQuery.submitted_at >= hour_ago)
    )
    if recent and recent >= MAX_PER_HOUR:
        raise LicenceError(_("每个授权每小时最多提交 %(n)s 个查询，请稍后再试", n=MAX_PER_HOUR))


def _finish(query: SandboxQuery, status: str, *, message: object = None) -> None:
    query.status = status
    query.message = stored(message) if message is not None else None  # type: ignore[arg-type]
    query.finished_at = utcnow()


def run(session: Session, storage: Storage, query_id: int) -> str:
    """The `sandbox_query` job: run a checked query and keep what may be shown and what may not."""
    query = session.get_one(SandboxQuery, query_id)
    if query.status != "queued":
        return query.status  # a second delivery of the job: done once
    grant = query.grant
    if (refusal := _not_in_force(grant)) is not None or grant.delivery != "sandbox":
        _finish(query, "failed", message=refusal or _("该授权为文件交付，请在“我的授权”下载授权数据"))
        return query.status
    query.status = "running"
    session.flush()
    started = clock.now()
    try:
        st = find_table(grant, query.table_id)
        info = table_info(storage, st)
        plan = check_query(query.sql, info)  # again, against the copy itself
        outcome = run_query(info, plan, k=query.dataset.sandbox_k, priors=priors(session, query))
    except (QueryRefused, LicenceError) as exc:
        _finish(query, "refused" if isinstance(exc, QueryRefused) else "failed", message=exc.message)
        if detail := getattr(exc, "detail", None):  # DuckDB's own words: they may carry a value
            query.raw_result = {"error": detail}
    except Exception:  # a fault of ours, not of the query: said so, logged for us, never retried blind
        log.exception("sandbox query %s failed", query.id)
        _finish(query, "failed", message=_("查询未能运行（平台内部错误），已记录，请稍后再试"))
    else:
        _keep(query, plan, outcome)
    query.seconds = (clock.now() - started).total_seconds()
    record(
        session,
        "sandbox_result",
        target=f"grant:{grant.id}",
        query=query.id,
        status=query.status,
        suppressed=len((query.result or {}).get("suppressed", [])),
    )
    return query.status


def _keep(query: SandboxQuery, plan: Plan, outcome: Outcome) -> None:
    query.plan = plan.to_json()
    query.result = {
        "columns": outcome.columns,
        "rows": outcome.safe_rows,
        "suppressed": [list(s) for s in outcome.suppressed],
    }
    query.raw_result = {"columns": outcome.columns, "rows": outcome.rows}
    query.cells = outcome.cells
    message = (
        _(
            "%(n)s 个单元格因可能识别到个人或单一主体已被抑制（记录少于 %(k)s 条、单一主体占比过高或与先前结果相减可推出少量记录）",
            n=len(outcome.suppressed),
            k=query.dataset.sandbox_k,
        )
        if outcome.suppressed
        else None
    )
    _finish(query, "done", message=message)


def priors(session: Session, query: SandboxQuery) -> list[Prior]:
    """The outputs this person already had released from the same table, under this grant or
    any other (a second grant must not start with a clean history): what a new output must
    not differ from by a few records."""
    earlier = session.scalars(
        select(SandboxQuery).where(
            SandboxQuery.user_id == query.user_id,
            SandboxQuery.table_id == query.table_id,
            SandboxQuery.status == "done",
            SandboxQuery.id != query.id,
        )
    )
    return [Prior(Plan.from_json(q.plan), q.cells or {}) for q in earlier if q.plan and q.cells]


def message_of(query: SandboxQuery) -> object:
    return from_stored(query.message) if query.message else None


def set_sandbox(
    session: Session, curator: User, ds: Dataset, *, only: bool, k: int | None, ip: str | None = None
) -> None:
    """The department's choices: sandbox as the only delivery of new grants (grants already
    issued keep theirs), and its k. k below 5 would release cells of a few people."""
    require(curator, Action.CURATE, ds)
    if ds.open_class != "conditional":
        raise LicenceError(_("只有有条件开放数据可以设置数据沙箱"))
    if k is None or not MIN_K <= k <= 1000:
        raise LicenceError(_("k 须在 %(low)s 到 1000 之间", low=MIN_K))
    if (ds.sandbox_only, ds.sandbox_k) == (only, k):
        return
    record(
        session,
        "sandbox_settings",
        actor=curator,
        target=f"dataset:{ds.name}",
        ip=ip,
        sandbox_only=only,
        k=k,
        was=[ds.sandbox_only, ds.sandbox_k],
    )
    ds.sandbox_only, ds.sandbox_k = only, k


# ------------------------------------------------------------------------------ releases


def request_release(
    session: Session, user: User, query: SandboxQuery, reason: str, ip: str | None = None
) -> SandboxRelease:
    in_force(user, query.grant)
    if query.user_id != user.id:
        raise LicenceError(_("只能为自己的查询申请发布"))
    # Any finished output may be asked for, whether or not a group was left out: offering it
    # only when one was would tell whether a small group exists.
    if query.status != "done":
        raise LicenceError(_("只有已完成的查询可以申请发布完整结果"))
    if any(r.status in ("pending", "approved") for r in query.releases):
        raise LicenceError(_("该结果已申请发布"))
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise LicenceError(_("请说明需要完整结果的理由（至少 10 个字）"))
    release = SandboxRelease(query_id=query.id, requested_by_id=user.id, reason=reason[:5000])
    session.add(release)
    session.flush()
    record(
        session,
        "sandbox_release_requested",
        actor=user,
        target=f"grant:{query.grant_id}",
        ip=ip,
        query=query.id,
    )
    return release


def decide_release(
    session: Session, curator: User, release: SandboxRelease, approve: bool, note: str, ip: str | None = None
) -> None:
    """The providing department decides, with reasons either way (they are the audit trail's)."""
    require(curator, Action.DECIDE_RELEASE, release)
    if release.status != "pending":
        raise LicenceError(_("该发布申请已处理"))
    note = (note or "").strip()
    if not note:
        raise LicenceError(_("请填写决定理由"))
    release.status = "approved" if approve else "refused"
    release.decided_by_id = curator.id
    release.decided_at = utcnow()
    release.decision_note = note[:5000]
    record(
        session,
        "sandbox_release_decided",
        actor=curator,
        target=f"grant:{release.query.grant_id}",
        ip=ip,
        query=release.query_id,
        decision=release.status,
        note=note[:500],
    )


def released_in_full(query: SandboxQuery) -> bool:
    return any(r.status == "approved" for r in query.releases)


def pending_releases(session: Session, user: User) -> list[SandboxRelease]:
    rows = session.scalars(
        select(SandboxRelease).where(SandboxRelease.status == "pending").order_by(SandboxRelease.id)
    )
    return [r for r in rows if _oversees(user, r.query)]


def overseen_queries(session: Session, user: User, limit: int = 200) -> list[SandboxQuery]:
    """Every query on the department's datasets (all of them for the bureau), newest first."""
    from portal.models import Dataset

    stmt = select(SandboxQuery).order_by(SandboxQuery.id.desc()).limit(limit)
    if not user.is_bureau:
        stmt = stmt.join(Dataset, Dataset.id == SandboxQuery.dataset_id).where(
            Dataset.department_id == user.curator_department_id
        )
    return list(session.scalars(stmt))


def _oversees(user: User, query: SandboxQuery) -> bool:
    from portal.authz import can

    return can(user, Action.OVERSEE_SANDBOX, query)

"""Agreements, grants, licensed downloads and usage reports.

Accepting the agreement stores its exact text, template version, who, when and from where
(unchangeable rows), and issues a grant with a licence number that anyone can check at
/licences/<number>. Licensed data leaves only through a signed link bound to the user, the
grant and the dataset, expiring in minutes, and only within the grant's fields and rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from portal import clock
from portal.audit import record
from portal.authz import Action, require
from portal.exports import zip_file, zip_text
from portal.messages import _, bilingual, known, source
from portal.models import (
    Agreement,
    Application,
    ApplicationItem,
    AppStatus,
    Grant,
    LicensedDownload,
    UsageReport,
    User,
    utcnow,
)
from portal.storage import Storage

from .agreement_text import TEMPLATE_VERSION, render_agreement
from .applications import _move, _owner, require_open
from .errors import LicenceError, LinkRefused

LINK_MAX_AGE = 15 * 60
REPORT_EVERY_MONTHS = 6


def agreement_for(app: Application, site_url: str) -> str:
    """The agreement the applicant is asked to accept (made from the current template)."""
    if app.status != AppStatus.APPROVED.value:
        raise LicenceError(_("只有已同意的申请才有待签协议"))
    return render_agreement(app, site_url)


def accept(
    session: Session,
    applicant: User,
    app: Application,
    version: int,
    text_seen_sha256: str,
    site_url: str,
    ip: str | None = None,
) -> Grant:
    """The applicant accepts the agreement they were shown (its sha256 must match: no one
    accepts a text that changed under them)."""
    _owner(applicant, app)
    text = agreement_for(app, site_url)
    sha = hashlib.sha256(text.encode()).hexdigest()
    if sha != text_seen_sha256:
        raise LicenceError(_("协议内容已更新，请重新阅读后再确认"))
    require_open(app)
    _move(session, app, applicant, "accept", (AppStatus.APPROVED,), AppStatus.GRANTED, version, None, ip)
    agreement = Agreement(
        application_id=app.id,
        template_version=TEMPLATE_VERSION,
        text=text,
        sha256=sha,
        accepted_by_id=applicant.id,
        accepted_ip=ip,
    )
    session.add(agreement)
    session.flush()
    assert app.approved_from is not None, "an approved application has its term"
    grant = Grant(
        licence_number=_licence_number(app.approved_from),
        user_id=applicant.id,
        application_id=app.id,
        agreement_id=agreement.id,
        purpose=app.purpose,
        valid_from=app.approved_from,
        valid_until=app.approved_until,
        report_every_months=REPORT_EVERY_MONTHS,
        # A dataset its department made sandbox-only is never delivered as a file, whichever
        # route (consent, research, tender) the application took.
        delivery="sandbox"
        if app.delivery == "sandbox" or any(i.dataset.sandbox_only for i in app.items)
        else "file",
    )
    session.add(grant)
    session.flush()
    record(
        session,
        "grant_issued",
        actor=applicant,
        target=f"grant:{grant.id}",
        ip=ip,
        licence=grant.licence_number,
        agreement_sha256=sha,
        delivery=grant.delivery,
    )
    return grant


def _licence_number(start: dt.date) -> str:
    body = f"{start:%Y}{secrets.randbelow(10**8):08d}"
    check = "0123456789X"[sum(int(c) * (i + 1) for i, c in enumerate(body)) % 11]  # catches a mistyped digit
    return f"DCFL-{body[:4]}-{body[4:]}{check}"


def revoke(session: Session, actor: User, grant: Grant, reason: str, ip: str | None = None) -> None:
    require(actor, Action.REVOKE_GRANT, grant)
    if len((reason or "").strip()) < 10:
        raise LicenceError(_("撤销授权须说明理由（至少 10 字）"))
    if grant.revoked_at is not None:
        raise LicenceError(_("该授权已撤销"))
    grant.revoked_at, grant.revoked_by_id, grant.revoke_reason = utcnow(), actor.id, reason.strip()
    record(session, "grant_revoked", actor=actor, target=f"grant:{grant.id}", ip=ip, reason=reason.strip())


def by_licence(session: Session, number: str) -> Grant | None:
    return session.scalar(select(Grant).where(Grant.licence_number == number.strip().upper()))


# ---------------------------------------------------------------------- licensed downloads


def _links(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="dongchangfu-portal:licensed-download")


def download_link_token(secret: str, user: User, grant: Grant, item: ApplicationItem) -> str:
    return _links(secret).dumps({"u": user.id, "g": grant.id, "i": item.id})


def check_download(
    session: Session, secret: str, token: str, user: User, grant_id: int
) -> tuple[Grant, ApplicationItem]:
    """The grant and item the link is for — if it is genuine, fresh, this user's, and the
    grant is valid today. Raises LinkRefused otherwise (every case looks the same outside)."""
    try:
        data = _links(secret).loads(token, max_age=LINK_MAX_AGE)
    except SignatureExpired as exc:
        raise LinkRefused(_("下载链接已过期，请回到授权页面重新获取")) from exc
    except BadSignature as exc:
        raise LinkRefused(_("下载链接无效")) from exc
    if not isinstance(data, dict) or data.get("u") != user.id or data.get("g") != grant_id:
        raise LinkRefused(_("下载链接不属于当前用户或授权"))
    grant = session.get(Grant, grant_id)
    item = session.get(ApplicationItem, data.get("i"))
    if (
        grant is None
        or item is None
        or item.application_id != grant.application_id
        or grant.user_id != user.id
    ):
        raise LinkRefused(_("下载链接无效"))
    if grant.delivery != "file":
        raise LinkRefused(_("该授权为数据沙箱交付：数据不出域，请在数据沙箱中查询"))
    state = grant.state()
    if state != "valid":
        raise LinkRefused(
            {
                "revoked": _("授权已撤销：%(reason)s", reason=known(grant.revoke_reason or "")),
                "expired": _("授权已过期"),
                "suspended": _("数据集暂停公开（撤回、待处理或待审批），授权暂停使用，恢复公开后自动恢复"),
            }.get(state, _("授权尚未生效"))
        )
    return grant, item


def _grants_of(user: User, today: dt.date, delivery: str) -> Select:
    return (
        select(Grant, ApplicationItem)
        .join(ApplicationItem, ApplicationItem.application_id == Grant.application_id)
        .where(
            Grant.user_id == user.id,
            # Rows leave only through a file grant; a sandbox grant's data never does
            # (licenses/sandbox.py asks for its own delivery).
            Grant.delivery == delivery,
            Grant.revoked_at.is_(None),
            Grant.valid_from <= today,
            Grant.valid_until >= today,
        )
    )


def grant_for_api(
    session: Session, user: User, dataset_id: int, today: dt.date | None = None, delivery: str = "file"
) -> tuple[Grant, ApplicationItem] | None:
    """The user's grant in force today that covers this dataset, with its item (the granted
    fields and rows); the newest if several. The data API serves licensed rows only through this."""
    today = today or clock.today()
    row = session.execute(
        _grants_of(user, today, delivery)
        .where(ApplicationItem.dataset_id == dataset_id)
        .order_by(Grant.valid_until.desc(), Grant.id.desc())
        .limit(1)
    ).first()
    # Suspended while any dataset the grant covers is not public (licenses/follow.py).
    return (row[0], row[1]) if row and row[0].state(today) == "valid" else None


def datasets_granted(session: Session, user: User, today: dt.date | None = None) -> frozenset[int]:
    """Every dataset for which grant_for_api would answer a grant today: one query for all, so a
    page can ask it once per reader and day (portal/views/catalog.py keeps it)."""
    today = today or clock.today()
    rows = session.execute(_grants_of(user, today, "file")).all()
    return frozenset(item.dataset_id for grant, item in rows if grant.state(today) == "valid")


def log_api_rows(
    session: Session, user: User, grant: Grant, dataset_id: int, rows: int, size: int, seconds: float
) -> None:
    """Every call that returns licensed rows is a licensed download in the grant's log."""
    session.add(
        LicensedDownload(
            grant_id=grant.id, user_id=user.id, dataset_id=dataset_id, bytes=size, seconds=seconds, rows=rows
        )
    )


@dataclass
class LicensedFile:
    path: Path
    rows: int
    name: str


def build_licensed_zip(
    session: Session,
    storage: Storage,
    grant: Grant,
    item: ApplicationItem,
    user: User,
    site_url: str,
    ip: str | None = None,
) -> LicensedFile:
    """CSV, Parquet and XLSX with only the granted fields and rows, in the grant's own column
    and row order (licenses/fingerprint.py; every file's sha256 kept), ATTRIBUTION.txt,
    datapackage.json and the accepted agreement; logged with bytes and time."""
    if grant.delivery != "file":
        raise LicenceError(_("该授权为数据沙箱交付：数据不出域，请在数据沙箱中查询"))
    from harvest.formats import attribution
    from portal.catalog.bundle import frictionless_fields, package

    started = time.perf_counter()
    ds = item.dataset
    today = clock.today()
    tables = ds.served_tables
    if not tables:
        raise LicenceError(_("数据文件暂不可用"))
    from portal.catalog.rows import Scope, scoped_table

    from . import fingerprint

    scope = Scope(fields=item.fields_approved, row_filter=item.row_filter)
    licence_url = f"{site_url.rstrip('/')}/licences/{grant.licence_number}"
    line = attribution(ds.department.name, ds.title, today.isoformat())
    meta = {
        "source_department": ds.department.name,
        "dataset": ds.title,
        "licence_number": grant.licence_number,
        "licence_url": licence_url,
        "permitted_purpose": source(grant.application.purpose_label),
        "valid_until": grant.valid_until.isoformat(),
        "attribution": line,
    }
    folder = storage.cache_path(f"licensed/{grant.id}-{item.id}-{today.isoformat()}-{secrets.token_hex(4)}")
    folder.mkdir(parents=True)
    # Every granted table: one folder per table (its sheet's name) when there are several.
    parts = []
    for position, table in enumerate(tables):
        data = scoped_table(pq.read_table(storage.local_path(table.parquet_path)), scope)
        # The grant's fingerprint: its own column order and row order, values untouched
        # (licenses/fingerprint.py); made before anything is written in this session.
        data = fingerprint.marked(session, grant, item, data)
        prefix = (
            ""
            if len(tables) == 1
            else f"{_part_name(table.sheet or table.distribution.source_name, position)}/"
        )
        (folder / prefix).mkdir(parents=True, exist_ok=True)
        pq.write_table(data.replace_schema_metadata(meta), folder / prefix / "data.parquet")
        pacsv.write_csv(data, folder / prefix / "data.csv")
        fingerprint.write_xlsx(data, folder / prefix / "data.xlsx", meta)  # not when longer than a sheet
        parts.append((prefix, data))
    rows = sum(d.num_rows for _prefix, d in parts)
    text = "\n".join(
        [
            line,
            "",
            f"提供部门 / Source department: {ds.department.name}",
            f"数据集 / Dataset: {ds.title} ({ds.name})",
            f"获取日期 / Acquired: {today.isoformat()}",
            f"授权编号 / Licence number: {grant.licence_number}",
            f"许可用途 / Permitted purpose: {bilingual(grant.application.purpose_label, ' / ')} — {grant.application.scenario}",
            f"有效期至 / Valid until: {grant.valid_until.isoformat()}",
            f"授权核验 / Check the licence: {licence_url}",
            *[
                f"字段 / Fields{' (' + prefix.rstrip('/') + ')' if prefix else ''}: {', '.join(d.column_names)}"
                for prefix, d in parts
            ],
            f"行数 / Rows: {rows}"
            + (f"（仅限 {json.dumps(item.row_filter, ensure_ascii=False)}）" if item.row_filter else ""),
            "",
            "不得向第三方提供；仅限上述用途；利用本数据形成的产品须注明数据来源和获取日期。",
            "No passing on to third parties; use for the purpose above only; products state the source and date.",
            "",
        ]
    )
    descriptor = package(
        ds,
        [
            {
                "name": f"data-{i}" if len(parts) > 1 else "data",
                "path": f"{prefix}data.csv",
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": {
                    "fields": frictionless_fields(
                        ds, [{"name": f.name, "type": str(f.type)} for f in d.schema]
                    )
                },
            }
            for i, (prefix, d) in enumerate(parts)
        ],
        today.isoformat(),
    )
    descriptor["licenses"] = [
        {"name": grant.licence_number, "path": licence_url, "title": "有条件开放数据使用授权"}
    ]
    zip_path = folder / f"{ds.name}-{grant.licence_number}.zip"
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for prefix, _data in parts:
            zip_file(zf, folder / prefix / "data.csv", f"{prefix}data.csv")
            zip_file(zf, folder / prefix / "data.parquet", f"{prefix}data.parquet")
            if (folder / prefix / "data.xlsx").exists():
                zip_file(zf, folder / prefix / "data.xlsx", f"{prefix}data.xlsx")
        zip_text(zf, "ATTRIBUTION.txt", text)
        zip_text(zf, "datapackage.json", json.dumps(descriptor, ensure_ascii=False, indent=2))
        zip_text(zf, "AGREEMENT.txt", grant.agreement.text)
    size = zip_path.stat().st_size
    served = {
        f"{p}data.{fmt}": folder / p / f"data.{fmt}" for p, _d in parts for fmt in ("csv", "parquet", "xlsx")
    }
    fingerprint.record_served(session, grant, item, {**served, zip_path.name: zip_path})
    session.add(
        LicensedDownload(
            grant_id=grant.id,
            user_id=user.id,
            dataset_id=ds.id,
            bytes=size,
            seconds=time.perf_counter() - started,
            rows=rows,
        )
    )
    record(
        session,
        "licensed_download",
        actor=user,
        target=f"grant:{grant.id}",
        ip=ip,
        dataset=ds.name,
        rows=rows,
        bytes=size,
    )
    return LicensedFile(zip_path, rows, f"{ds.title}-{grant.licence_number}.zip")


def _part_name(name: str, position: int) -> str:
    """A table's folder in the ZIP: its sheet's name, safe as a path."""
    import re

    return re.sub(r"[\x00-\x1f/\\:*?\"<>|]+", "_", name).strip(" .") or f"table-{position + 1}"


# ---------------------------------------------------------------------- follow-up


def report_usage(
    session: Session, user: User, grant: Grant, what_built: str, where_used: str, ip: str | None = None
) -> UsageReport:
    require(user, Action.HOLD_GRANT, grant)
    if len((what_built or "").strip()) < 5 or len((where_used or "").strip()) < 2:
        raise LicenceError(_("请说明开发利用情况和数据出现在何处"))
    report = UsageReport(what_built=what_built.strip(), where_used=where_used.strip())
    grant.reports.append(report)
    record(session, "usage_reported", actor=user, target=f"grant:{grant.id}", ip=ip)
    return report


def next_report_due(grant: Grant) -> dt.date:
    last = max([clock.local(r.submitted_at).date() for r in grant.reports], default=grant.valid_from)
    month = last.month - 1 + grant.report_every_months
    year, month = last.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(last.day, 28))


def missing_reports(session: Session, today: dt.date | None = None) -> list[tuple[Grant, dt.date]]:
    """Grants in force whose usage report is overdue (the bureau tracks use, Art. 25)."""
    today = today or clock.today()
    grants = session.scalars(select(Grant).where(Grant.revoked_at.is_(None), Grant.valid_until >= today))
    return [(g, due) for g in grants if (due := next_report_due(g)) < today]


REMIND_DAYS_BEFORE = 7


def remind(session: Session, today: dt.date | None = None, site_url: str = "") -> int:
    """Reminders for usage reports (Art. 25: the bureau follows use): a week before a report
    falls due, to the holder; once it is overdue, to the holder and the bureau. Each is sent
    once per due date, however often this runs (portal remind, daily from cron)."""
    from portal import mail
    from portal.models import OutboxMessage, User

    today = today or clock.today()
    sent = 0
    bureau = list(session.scalars(select(User).where(User.is_bureau.is_(True))))
    for grant in session.scalars(select(Grant).where(Grant.revoked_at.is_(None), Grant.valid_until >= today)):
        if grant.state(today) != "valid":
            continue
        due = next_report_due(grant)
        if today > due:
            subject, people = (
                f"开发利用情况报告已逾期（应于 {due} 提交） · {grant.licence_number}",
                [grant.user, *bureau],
            )
        elif today >= due - dt.timedelta(days=REMIND_DAYS_BEFORE):
            subject, people = f"请于 {due} 前提交开发利用情况报告 · {grant.licence_number}", [grant.user]
        else:
            continue
        for user in people:
            if session.scalar(
                select(OutboxMessage.id).where(
                    OutboxMessage.to == user.email, OutboxMessage.subject == subject
                )
            ):
                continue
            mail.send(
                session,
                user.email,
                subject,
                f"{user.name}，您好：\n\n授权 {grant.licence_number}（{grant.user.name}）的开发利用情况报告"
                f"{'已逾期' if today > due else '即将到期'}，到期日 {due}。请在“我的授权”页面提交：形成了什么产品或成果、"
                f"用在何处。\n" + (f"\n我的授权：{site_url.rstrip('/')}/grants\n" if site_url else ""),
            )
            sent += 1
    return sent

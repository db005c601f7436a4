"""Harvest sources the bureau registers in the admin, and when each runs (rules.md Art. 14–16:
a department's open list kept current without anyone at a shell).

A source runs on its schedule — daily or weekly at an hour of Beijing time, or by update
cycle (as often as its most frequently updated entry needs) — as a `harvest` job; "run now"
and "dry run" queue the same job by hand. A CKAN token is kept sealed (Fernet under a key
derived from the portal's secret key), shown to nobody, and given only to the CKAN host."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from pathlib import Path
from typing import IO

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select
from sqlalchemy.orm import Session

from harvest.sources import CkanSource, SourceError, SpreadsheetSource
from portal import clock, jobs
from portal.audit import record
from portal.authz import Action, require
from portal.errors import DomainError
from portal.messages import _
from portal.models import Dataset, HarvestSource, Job, User, as_utc

from .curation import CYCLE_DAYS

SCHEDULES = ("manual", "daily", "weekly", "cycle")
UNKNOWN_CYCLE_DAYS = 31  # entries that say 不定期 or nothing: checked monthly


def _fernet(secret_key: str) -> Fernet:
    key = hashlib.sha256(b"harvest-source-token:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal_token(secret_key: str, token: str) -> str | None:
    return _fernet(secret_key).encrypt(token.encode()).decode() if token else None


def unseal_token(secret_key: str, sealed: str | None) -> str | None:
    if not sealed:
        return None
    try:
        return _fernet(secret_key).decrypt(sealed.encode()).decode()
    except InvalidToken as exc:  # the secret key was changed without re-sealing
        raise SourceError(_("采集来源的访问令牌无法解密（密钥已更换），请在来源页重新填写令牌")) from exc


def open_registered(
    src: HarvestSource, secret_key: str, timeout: float, instance_path: Path | None = None
) -> CkanSource | SpreadsheetSource:
    """The catalog source a registered row names."""
    from .department_catalog import PREFIX, current_catalog, open_staged

    if src.location.startswith(PREFIX) and instance_path is not None:  # a department's console upload
        return open_staged(current_catalog(instance_path, src.location), src.location, timeout)
    if src.kind == "ckan":
        return CkanSource(src.location, unseal_token(secret_key, src.token_sealed), timeout)
    if not Path(src.location).is_file():
        raise SourceError(_("目录表文件不存在：请重新上传"))
    return SpreadsheetSource(src.location, timeout)


class SourceSetupError(DomainError):
    pass


CATALOG_SUFFIXES = (".xlsx", ".csv")


def register(
    s: Session,
    user: User,
    *,
    kind: str,
    title: str,
    location: str,
    token: str = "",
    secret_key: str,
    ip: str | None = None,
) -> HarvestSource:
    """The bureau registers a CKAN endpoint (its token sealed) or a catalog spreadsheet stored
    by save_spreadsheet(). A source the command line already harvested is taken over, not
    doubled: its entries keep their datasets."""
    require(user, Action.BUREAU)
    if kind == "ckan":
        location = location.strip().rstrip("/")  # as the harvester spells it (harvest/sources.py)
        if not location.startswith(("http://", "https://")) or len(location) > 500:
            raise SourceSetupError(_("CKAN 地址须以 http:// 或 https:// 开头"), {"location": _("地址无效")})
    elif kind != "spreadsheet":
        raise SourceSetupError(_("未知的来源类型"))
    src = s.scalar(
        select(HarvestSource).where(HarvestSource.kind == kind, HarvestSource.location == location)
    )
    if src is None:
        src = HarvestSource(kind=kind, location=location)
        s.add(src)
    src.title = title.strip()[:200] or None
    if token:
        src.token_sealed = seal_token(secret_key, token.strip())
    s.flush()
    record(s, "harvest_source_registered", actor=user, target=f"harvest_source:{src.id}", ip=ip, kind=kind)
    return src


def save_spreadsheet(folder: Path, filename: str, stream: IO[bytes]) -> Path:
    """Keep an uploaded catalog spreadsheet in the instance's sources folder under a name of
    the portal's choosing (the uploader's name is never a path)."""
    suffix = Path(filename or "").suffix.lower()
    if suffix not in CATALOG_SUFFIXES:
        raise SourceSetupError(_("目录表须为 XLSX 或 CSV 文件"), {"catalog": _("文件类型不符")})
    import secrets
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"catalog-{secrets.token_hex(8)}{suffix}"
    with open(path, "wb") as out:
        shutil.copyfileobj(stream, out, 1024 * 1024)
    if path.stat().st_size == 0:
        path.unlink()
        raise SourceSetupError(_("上传的目录表是空文件"), {"catalog": _("空文件")})
    return path


def set_schedule(
    s: Session,
    user: User,
    src: HarvestSource,
    *,
    schedule: str,
    hour: int,
    weekday: int,
    enabled: bool,
    token: str = "",
    secret_key: str = "",
    ip: str | None = None,
) -> None:
    require(user, Action.BUREAU)
    if schedule not in SCHEDULES or not 0 <= hour <= 23 or not 0 <= weekday <= 6:
        raise SourceSetupError(_("采集计划无效"))
    src.schedule, src.schedule_hour, src.schedule_weekday, src.enabled = schedule, hour, weekday, enabled
    if token:
        src.token_sealed = seal_token(secret_key, token.strip())
    record(
        s,
        "harvest_schedule_set",
        actor=user,
        target=f"harvest_source:{src.id}",
        ip=ip,
        schedule=schedule,
        hour=hour,
        weekday=weekday,
        enabled=enabled,
        token_changed=bool(token),
    )


def run_by_hand(s: Session, user: User, src: HarvestSource, *, dry_run: bool, ip: str | None = None) -> Job:
    require(user, Action.BUREAU)
    job = queue_harvest(s, src, dry_run=dry_run, requested_by=user.email)
    record(
        s,
        "harvest_dry_run_queued" if dry_run else "harvest_run_queued",
        actor=user,
        target=f"harvest_source:{src.id}",
        ip=ip,
    )
    return job


# ---------------------------------------------------------------------------- when


def last_slot(src: HarvestSource, now: dt.datetime) -> dt.datetime | None:
    """The latest instant at or before `now` when the schedule says the source runs."""
    if src.schedule == "manual" or not src.enabled:
        return None
    local = clock.local(now)
    at = local.replace(hour=src.schedule_hour or 0, minute=0, second=0, microsecond=0)
    if at > local:
        at -= dt.timedelta(days=1)
    if src.schedule == "weekly":
        at -= dt.timedelta(days=(at.weekday() - (src.schedule_weekday or 0)) % 7)
    return at.astimezone(dt.UTC)


def cycle_days(s: Session, src: HarvestSource) -> int:
    """How often an update-cycle source runs: as often as its most frequent entry is updated."""
    cycles = s.scalars(
        select(Dataset.update_cycle).where(Dataset.source_id == src.id).group_by(Dataset.update_cycle)
    ).all()
    days = [CYCLE_DAYS[c.strip()] for c in cycles if c and c.strip() in CYCLE_DAYS]
    return min(days, default=UNKNOWN_CYCLE_DAYS)


def is_due(s: Session, src: HarvestSource, now: dt.datetime) -> bool:
    slot = last_slot(src, now)
    if slot is None:
        return False
    since = as_utc(src.last_queued_at or src.created_at)
    if slot <= since:
        return False  # this slot was run, or came before the source was registered
    return _cycle_allows(src, slot, cycle_days(s, src) if src.schedule == "cycle" else 0)


def queue_due_sources(s: Session, now: dt.datetime) -> list[Job]:
    """Queue a harvest for every source whose time has come (called every minute)."""
    queued = []
    for src in s.scalars(select(HarvestSource).where(HarvestSource.schedule != "manual")):
        if is_due(s, src, now):
            src.last_queued_at = now
            queued.append(queue_harvest(s, src, dry_run=False, requested_by="schedule"))
    return queued


def queue_harvest(s: Session, src: HarvestSource, *, dry_run: bool, requested_by: str) -> Job:
    """A harvest (or a dry run) of the source as a job; one at a time per source and kind."""
    return jobs.submit(
        s,
        "harvest",
        {"source": src.id, "dry_run": dry_run},
        key=f"harvest:{src.id}:{'dry' if dry_run else 'run'}",
        max_attempts=2,
        requested_by=requested_by,
    )


def next_run(s: Session, src: HarvestSource, now: dt.datetime) -> dt.datetime | None:
    """When the schedule will next queue the source (for the admin page), Beijing time."""
    if src.schedule == "manual" or not src.enabled:
        return None
    days = cycle_days(s, src) if src.schedule == "cycle" else 0  # asked once, not per hour probed
    probe = now
    for _hour in range(24 * 400):  # hour by hour; a year covers the longest cycle
        probe += dt.timedelta(hours=1)
        slot = last_slot(src, probe)
        if slot is not None and slot > now and _cycle_allows(src, slot, days):
            return clock.local(slot)
    return None


def _cycle_allows(src: HarvestSource, slot: dt.datetime, days: int) -> bool:
    """A by-cycle source runs at a slot once its cycle has passed since it last ran (an hour's
    grace: the slots fall at the same hour every day)."""
    if src.schedule != "cycle" or src.last_queued_at is None:
        return True
    return slot - as_utc(src.last_queued_at) >= dt.timedelta(days=days, hours=-1)


def runs_of(s: Session, src: HarvestSource, limit: int = 20) -> list[Job]:
    return list(
        s.scalars(
            select(Job)
            .where(Job.key.in_([f"harvest:{src.id}:run", f"harvest:{src.id}:dry"]))
            .order_by(Job.id.desc())
            .limit(limit)
        )
    )

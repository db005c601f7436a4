"""The job queue (portal/jobs.py, portal/worker.py) on the test's database (SQLite, or PostgreSQL
in the PostgreSQL run): mail sent after the commit and tried again while the server refuses; a
job whose `portal worker` is killed mid-way run again by the next worker, once; scheduled and
dry-run harvests with a controllable clock; the admin pages that run them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from portal import mail
from portal.catalog import schedules
from portal.context import PortalContext
from portal.models import Dataset, HarvestJob, HarvestSource, Job, OutboxMessage, User
from portal.search import SearchQuery
from portal.worker import tick
from tests.catalogs import entry, write_catalog, write_csv
from tests.helpers import post_form, smtp_server

BEIJING = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def smtp():
    with smtp_server() as server:
        yield server


def _ctx(settings, **changes) -> PortalContext:
    return PortalContext(dataclasses.replace(settings, **changes))


def _job(ctx, job_id: int) -> Job:
    with ctx.sessions() as s:
        return s.get_one(Job, job_id)


def test_mail_goes_after_the_commit_and_is_tried_again_while_the_server_refuses(settings, smtp):
    ctx = _ctx(settings, smtp_url=smtp.url, job_retry_seconds=30)
    smtp.refuse = 2
    with ctx.sessions() as s:
        message = mail.send(s, "li@example.cn", "验证邮箱", "链接：http://x/verify/abc")
        s.flush()
        assert smtp.connections == 0  # nothing leaves before the transaction commits
        s.commit()
        message_id = message.id
    with ctx.sessions() as s:
        job = s.scalar(select(Job).where(Job.kind == "mail"))
        kept = s.get_one(OutboxMessage, message_id)
        assert job.state == "queued" and job.attempts == 1 and "451" in job.error
        assert kept.sent_at is None and "451" in kept.error  # the bureau sees why in the outbox
    first_try = job.run_after.replace(tzinfo=dt.UTC) - dt.timedelta(seconds=30)

    assert tick(ctx, now=first_try + dt.timedelta(seconds=29)) == []  # its wait is not over
    assert tick(ctx, now=first_try + dt.timedelta(seconds=31)) == [job.id]  # refused again: waits 4×
    job = _job(ctx, job.id)
    assert job.state == "queued" and job.attempts == 2
    assert job.run_after.replace(tzinfo=dt.UTC) - first_try >= dt.timedelta(seconds=30 + 120)

    tick(ctx, now=first_try + dt.timedelta(hours=1))
    job = _job(ctx, job.id)
    assert job.state == "done" and job.attempts == 3 and job.error is None
    assert len(smtp.messages) == 1 and "verify/abc" in smtp.messages[0]
    tick(ctx, now=first_try + dt.timedelta(hours=2))
    assert len(smtp.messages) == 1  # sent once
    ctx.engine.dispose()


def test_a_mail_that_never_goes_is_kept_failed_with_its_error(settings, smtp):
    ctx = _ctx(settings, smtp_url=smtp.url, job_retry_seconds=1)
    smtp.refuse = 100
    with ctx.sessions.begin() as s:
        mail.send(s, "li@example.cn", "重设密码", "body")
    later = dt.datetime.now(dt.UTC)
    for _ in range(6):
        later += dt.timedelta(hours=7)
        tick(ctx, now=later)
    with ctx.sessions() as s:
        job = s.scalar(select(Job).where(Job.kind == "mail"))
        assert job.state == "failed" and job.attempts == 6 and "451" in job.error
        assert s.scalar(select(OutboxMessage)).body == "body"  # nothing lost
    ctx.engine.dispose()


def test_a_rolled_back_step_queues_no_job(settings, smtp):
    ctx = _ctx(settings, smtp_url=smtp.url)
    with ctx.sessions() as s:
        mail.send(s, "li@example.cn", "申请已同意", "body")
        s.rollback()
        s.commit()
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0
    assert smtp.connections == 0
    ctx.engine.dispose()


def _worker(settings, queue: str, redis_url: str = "") -> subprocess.Popen:
    env = {
        **os.environ,
        "PORTAL_INSTANCE": str(settings.instance_path),
        "PORTAL_DATABASE_URL": settings.database_url,
        "PORTAL_SEARCH_BACKEND": settings.search_backend,
        "PORTAL_QUEUE": queue,
        "PORTAL_REDIS_URL": redis_url,
        "PORTAL_SMTP_URL": settings.smtp_url,
        "PORTAL_JOB_LEASE_SECONDS": str(settings.job_lease_seconds),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "portal.cli", "worker", "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _redis_url() -> str:
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/11"
    try:
        redis.Redis.from_url(url).flushdb()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    return url


@pytest.mark.parametrize("queue", ["sqlite", "redis"])
def test_a_job_survives_a_killed_worker_and_runs_once(settings, smtp, queue):
    """A `portal worker` is SIGKILLed while its mail job waits for the server; the job is not
    lost: a new worker finds it by its expired lease and sends the message — once."""
    redis_url = _redis_url() if queue == "redis" else ""
    settings = dataclasses.replace(
        settings, queue=queue, redis_url=redis_url, smtp_url=smtp.url, job_lease_seconds=3
    )
    ctx = PortalContext(settings)
    smtp.stall = 1
    first = _worker(settings, queue, redis_url)
    try:
        with ctx.sessions.begin() as s:
            message = mail.send(s, "wang@example.cn", "授权已生效", "授权编号 DCF-2026-0001")
        assert smtp.stalled.wait(60), first.stderr.read1().decode() if first.poll() is not None else "no send"
        running = _job(ctx, 1)
        assert running.state == "running" and running.attempts == 1
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert smtp.messages == [] and _job(ctx, 1).state == "running"  # the dead worker's job waits
    time.sleep(3.5)  # its lease runs out
    second = _worker(settings, queue, redis_url)
    try:
        deadline = time.monotonic() + 60
        while _job(ctx, 1).state != "done" and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # nothing more arrives
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(20)
    job = _job(ctx, 1)
    assert job.state == "done" and job.attempts == 2
    assert len(smtp.messages) == 1 and "DCF-2026-0001" in smtp.messages[0]
    with ctx.sessions() as s:
        assert s.get_one(OutboxMessage, message.id).sent_at is not None
    ctx.engine.dispose()


# ---------------------------------------------------------------------------- scheduled sources


def _catalog(folder: Path) -> Path:
    write_csv(
        folder / "licences.csv",
        ["企业名称", "许可证号", "有效期至"],
        [["东昌府区甲公司", "JY1", "2027-01-01"]],
    )
    return write_catalog(
        folder / "catalog.csv",
        [
            entry("DCF-JOB-001", "食品经营许可信息", file="licences.csv"),
            entry("DCF-JOB-002", "企业年报名录", file="licences.csv", 更新周期="每日"),
        ],
    )


def _bureau(s) -> User:
    from tests import factories

    return s.scalar(select(User).where(User.is_bureau.is_(True))) or factories.user(s, n=90, bureau=True)


def _register(ctx, path: Path, **schedule) -> int:
    with ctx.sessions.begin() as s:
        bureau = _bureau(s)
        src = schedules.register(
            s, bureau, kind="spreadsheet", title="市场监管局目录", location=str(path), secret_key="k"
        )
        src.created_at = dt.datetime(2026, 12, 6, 12, tzinfo=BEIJING)  # after that day's 02:00
        schedules.set_schedule(s, bureau, src, hour=2, weekday=0, enabled=True, **schedule)
        return src.id


def _at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 12, day, hour, minute, tzinfo=BEIJING)


def _harvests(ctx) -> int:
    with ctx.sessions() as s:
        return s.scalar(select(func.count()).select_from(HarvestJob))


def test_a_daily_source_runs_at_its_hour_once(ctx, tmp_path):
    _register(ctx, _catalog(tmp_path / "catalog"), schedule="daily")
    tick(ctx, now=_at(7, 1, 59))
    assert _harvests(ctx) == 0
    tick(ctx, now=_at(7, 2, 0))
    assert _harvests(ctx) == 1
    with ctx.sessions() as s:
        assert {d.status for d in s.scalars(select(Dataset))} == {"published"}
        job = s.scalar(select(Job).where(Job.kind == "harvest"))
        assert job.state == "done" and job.requested_by == "schedule" and job.result["counts"]["created"] == 2
    tick(ctx, now=_at(7, 2, 1))
    tick(ctx, now=_at(7, 23, 0))
    assert _harvests(ctx) == 1  # once a day
    tick(ctx, now=_at(8, 2, 0))
    assert _harvests(ctx) == 2


def test_a_weekly_source_waits_for_its_day_and_a_manual_one_never_runs(ctx, tmp_path):
    weekly = _register(ctx, _catalog(tmp_path / "a"), schedule="weekly")  # Mondays at 02:00
    _register(ctx, _catalog(tmp_path / "b"), schedule="manual")
    for day in (2, 3, 4, 5, 6):  # Wednesday to Sunday
        tick(ctx, now=_at(day, 3))
    assert _harvests(ctx) == 0
    tick(ctx, now=_at(7, 3))  # Monday 7 December
    assert _harvests(ctx) == 1
    with ctx.sessions() as s:
        assert s.scalar(select(HarvestJob)).source_id == weekly


def test_by_update_cycle_a_source_runs_as_often_as_its_most_frequent_entry(ctx, tmp_path):
    source_id = _register(ctx, _catalog(tmp_path / "c"), schedule="cycle")
    tick(ctx, now=_at(7, 2))
    tick(ctx, now=_at(8, 2))
    assert _harvests(ctx) == 2  # one entry is updated 每日
    with ctx.sessions.begin() as s:
        for ds in s.scalars(select(Dataset)):
            ds.update_cycle = "每周"
        assert schedules.cycle_days(s, s.get_one(HarvestSource, source_id)) == 7
    for day in range(9, 15):
        tick(ctx, now=_at(day, 2))
    assert _harvests(ctx) == 2
    tick(ctx, now=_at(15, 2))
    assert _harvests(ctx) == 3


def test_a_dry_run_shows_what_would_change_and_publishes_nothing(ctx, tmp_path):
    from tests.helpers import files_of, table_counts

    source_id = _register(ctx, _catalog(tmp_path / "d"), schedule="manual")
    before_tables, before_files = table_counts(ctx.engine), files_of(ctx.settings.files_path)
    with ctx.sessions.begin() as s:
        schedules.run_by_hand(s, _bureau_of(s), s.get_one(HarvestSource, source_id), dry_run=True)
    with ctx.sessions() as s:
        job = s.scalar(select(Job).where(Job.kind == "harvest"))
        assert job.state == "done", job.error
        assert job.result["dry_run"] and job.result["counts"]["created"] == 2
        assert {e["source_id"] for e in job.result["entries"]} == {"DCF-JOB-001", "DCF-JOB-002"}
    after = table_counts(ctx.engine)
    changed = {t for t in after if after[t] != before_tables.get(t)}
    assert changed <= {"jobs", "audit_events"}, changed  # no dataset, version, harvest record, mail
    assert files_of(ctx.settings.files_path) == before_files
    assert ctx.search.search(SearchQuery(q="食品经营许可")).total == 0

    with ctx.sessions.begin() as s:  # the real run does what the dry run said
        schedules.run_by_hand(s, _bureau_of(s), s.get_one(HarvestSource, source_id), dry_run=False)
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Dataset).where(Dataset.status == "published")) == 2


def _bureau_of(s) -> User:
    return s.scalar(select(User).where(User.is_bureau.is_(True)))


def test_the_bureau_registers_a_source_and_runs_it_from_the_admin(app, client, auth, make_user, tmp_path):
    _, email, password = make_user(bureau=True)
    path = _catalog(tmp_path / "e")
    auth.login(email, password)
    with open(path, "rb") as catalog:
        response = post_form(
            client,
            "/admin/sources",
            {
                "title": "市场监管局目录表",
                "kind": "spreadsheet",
                "location": "",
                "token": "",
                "schedule": "daily",
                "hour": "3",
                "weekday": "0",
                "enabled": "y",
                "catalog": (catalog, "目录.csv"),
            },
            page="/admin/sources",
            content_type="multipart/form-data",
            follow_redirects=True,
        )
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "已登记采集来源" in page and "每天" in page
    ctx = app.extensions["portal"]
    with ctx.sessions() as s:
        src = s.scalar(select(HarvestSource))
        stored = Path(src.location)
        assert stored.parent == ctx.settings.instance_path / "sources" and stored.name != "目录.csv"
    url = f"/admin/sources/{src.id}"
    page = post_form(client, f"{url}/run", {"dry_run": "1"}, page=url, follow_redirects=True).get_data(
        as_text=True
    )
    # Per entry, in words: an uploaded catalog's local file names point at nothing the portal has.
    assert "试采集结果" in page and "DCF-JOB-001" in page and "数据文件不存在：licences.csv" in page
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Dataset)) == 0
    page = post_form(client, f"{url}/run", {}, page=url, follow_redirects=True).get_data(as_text=True)
    assert "逐条结果" in page
    jobs_page = client.get("/admin/jobs").get_data(as_text=True)
    assert "试采集（不发布）" in jobs_page and "已完成" in jobs_page


def test_sources_and_jobs_are_the_bureaus_only(client, auth, make_user):
    _, email, password = make_user(curator_of="dcf-scjgj")
    auth.login(email, password)
    assert client.get("/admin/sources").status_code == 403
    assert client.get("/admin/jobs").status_code == 403


def test_a_ckan_token_is_kept_sealed(ctx):
    with ctx.sessions.begin() as s:
        src = schedules.register(
            s,
            _bureau(s),
            kind="ckan",
            title="共享平台",
            location="https://share.example.cn/api/3/action",
            token="tok-secret-123",
            secret_key="the-portal-key",
        )
        assert "tok-secret-123" not in (src.token_sealed or "")
        assert schedules.unseal_token("the-portal-key", src.token_sealed) == "tok-secret-123"
        from harvest.sources import SourceError

        with pytest.raises(SourceError, match="无法解密"):
            schedules.unseal_token("another-key", src.token_sealed)


def test_the_days_reminders_are_queued_once_however_often_the_clock_ticks(ctx):
    for minute in range(5):
        tick(ctx, now=_at(7, 8, minute))
    tick(ctx, now=_at(7, 23, 59))
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.kind == "remind")) == 1
    tick(ctx, now=_at(8, 8))
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.kind == "remind")) == 2


def test_a_notice_written_without_a_job_is_still_sent(settings, smtp):
    """Grant notices are written inside a flush (licenses/follow.py), where no job can be queued
    with them: the next minute's tick finds them."""
    ctx = _ctx(settings, smtp_url=smtp.url)
    with ctx.sessions.begin() as s:
        s.add(OutboxMessage(to="holder@example.cn", subject="授权已终止", body="数据集已撤回"))
    tick(ctx)
    assert smtp.messages == []  # younger than a minute: its own job may still be on the way
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    tick(ctx, now=later)
    tick(ctx, now=later + dt.timedelta(minutes=1))
    assert len(smtp.messages) == 1 and "holder@example.cn" in smtp.messages[0]
    ctx.engine.dispose()


def test_a_licensed_zip_and_a_bundle_are_made_by_a_worker_not_the_request(app, portal_data, people):
    """With a real queue the request only queues the work: the holder sees a page that waits
    (202, Retry-After) until a worker made the file, then gets it — once."""
    import io
    import zipfile

    from portal.app import create_app
    from portal.worker import run_job
    from tests.helpers import download_link, granted, login

    granted(portal_data, people, fields=["企业名称", "所属街道"])
    settings = app.extensions["portal"].settings
    queued = create_app(
        {
            "instance": settings.instance_path,
            "database_url": settings.database_url,
            "search_backend": settings.search_backend,
            "queue": "sqlite",
        }
    )
    client = queued.test_client()
    first = client.get(download_link(client, people))
    assert first.status_code == 302 and "/prepared/" in first.headers["Location"]
    waiting = client.get(first.headers["Location"])
    assert (
        waiting.status_code == 202
        and waiting.headers["Retry-After"]
        and "正在准备" in waiting.get_data(as_text=True)
    )
    job_id = int(first.headers["Location"].rsplit("/", 1)[1])
    assert run_job(queued.extensions["portal"], job_id) == "done"
    ready = client.get(first.headers["Location"])
    assert ready.status_code == 200 and "data.csv" in zipfile.ZipFile(io.BytesIO(ready.get_data())).namelist()
    again = client.get(first.headers["Location"])
    assert again.status_code == 410 and "重新获取下载链接" in again.get_data(
        as_text=True
    )  # made for one download
    # Made, then the grant is revoked before the holder fetches it: not served, and removed.
    second = client.get(download_link(client, people))
    assert run_job(queued.extensions["portal"], int(second.headers["Location"].rsplit("/", 1)[1])) == "done"
    with portal_data.sessions.begin() as s:
        from portal.models import Grant, utcnow

        s.scalar(select(Grant)).revoked_at = utcnow()
    revoked = client.get(second.headers["Location"])
    assert revoked.status_code == 410 and "授权当前无效" in revoked.get_data(as_text=True)
    stranger = queued.test_client()
    login(stranger, people["stranger"][1], people["stranger"][2])
    assert stranger.get(first.headers["Location"]).status_code in (403, 404)

    table = (
        portal_data.sessions()
        .scalar(select(Dataset).where(Dataset.name == "371502-jty-0001"))
        .current_distributions[0]
        .tables[0]
    )
    url = f"/dataset/371502-jty-0001/bundle/{table.id}.zip"
    reader = queued.test_client()
    assert reader.get(url).status_code == 202
    with portal_data.sessions() as s:
        bundle_job = s.scalar(select(Job).where(Job.kind == "bundle"))
    assert run_job(queued.extensions["portal"], bundle_job.id) == "done"
    assert reader.get(url).status_code == 200
    queued.extensions["portal"].engine.dispose()

"""The `portal` command: init, harvest, demo, serve."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .config import Settings
from .messages import _

if TYPE_CHECKING:
    from harvest.run import Harvester, JobReport
    from harvest.sources import CatalogSource

    from .context import PortalContext


def _context(**overrides: object) -> PortalContext:
    from .context import PortalContext

    return PortalContext(Settings.load(overrides))


class _Commands(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        from .deployment import DeploymentMismatch

        try:
            return super().invoke(ctx)
        except (
            DeploymentMismatch
        ) as mismatch:  # a node set up unlike its portal: say what to set, no traceback
            raise click.ClickException(str(mismatch)) from mismatch


@click.group(cls=_Commands)
@click.option("--instance", envvar="PORTAL_INSTANCE", help="Instance folder (default ./instance).")
@click.pass_context
def main(ctx: click.Context, instance: str | None) -> None:
    """东昌府区公共数据开放平台 — the Dongchangfu District open-data portal."""
    from .logs import configure

    configure()
    ctx.obj = {"instance": instance} if instance else {}


@main.command()
@click.pass_obj
def init(obj: dict) -> None:
    """Create or upgrade the database (Alembic migrations)."""
    ctx = _context(**obj)
    click.echo(f"database ready: {ctx.engine.url.render_as_string(hide_password=True)}")


@main.command()
@click.option("--ckan", metavar="URL", help="A CKAN action API (the internal sharing platform).")
@click.option(
    "--token", envvar="PORTAL_CKAN_TOKEN", help="CKAN API token (also for private datasets and files)."
)
@click.option(
    "--catalog",
    metavar="PATH",
    type=click.Path(dir_okay=False),
    help="A catalog spreadsheet (XLSX, or CSV in UTF-8/GBK/GB18030).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the job report as one JSON object.")
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal)."
)
@click.pass_obj
def harvest(
    obj: dict, ckan: str | None, token: str | None, catalog: str | None, as_json: bool, progress: bool | None
) -> None:
    """Harvest the internal catalog into the three open classes."""
    from harvest.sources import SourceError, open_source

    if bool(ckan) == bool(catalog):
        raise click.UsageError("give exactly one of --ckan URL or --catalog PATH")
    ctx = _context(**obj)
    try:
        source = open_source(ckan=ckan, token=token, catalog=catalog, timeout=ctx.settings.http_timeout)
    except SourceError as exc:
        raise click.ClickException(str(exc)) from exc
    report = _run_with_progress(
        ctx.harvester(), source, sys.stderr.isatty() if progress is None else progress
    )
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        _print_report(report)
    if report.error:
        if not as_json:
            click.echo(_("错误：%(error)s", error=report.error), err=True)
        sys.exit(1)


def _run_with_progress(harvester: Harvester, source: CatalogSource, show: bool) -> JobReport:
    if not show:
        return harvester.run(source)
    from tqdm import tqdm

    bar = tqdm(total=0, unit="条", desc="采集 harvest", file=sys.stderr)

    def progress(done: int, total: int, ref: str) -> None:
        bar.total = total
        bar.set_postfix_str(ref[:30], refresh=False)
        bar.update(done - bar.n)

    try:
        return harvester.run(source, progress=progress)
    finally:
        bar.close()


def _print_report(report: JobReport) -> None:
    for e in report.entries:
        if e.action in ("held", "failed", "withdrawn"):
            click.echo(f"{e.action:9} {e.source_id}: {e.reason or ''}")
    counts = report.counts
    click.echo(
        "job {}: created {created}, updated {updated}, unchanged {unchanged}, withdrawn {withdrawn}, "
        "held {held}, failed {failed}".format(report.job_id, **counts)
    )


@main.group()
def users() -> None:
    """Accounts."""


@users.command("create-admin")
@click.option("--email", required=True)
@click.option("--name", default="大数据局管理员", show_default=True)
@click.password_option(help="At least 10 characters; asked for when not given.")
@click.pass_obj
def create_admin(obj: dict, email: str, name: str, password: str) -> None:
    """Make the first bureau (大数据局) account; the bureau then appoints curators."""
    from .accounts import AccountError
    from .accounts import create_admin as make

    ctx = _context(**obj)
    with ctx.sessions() as s:
        try:
            user = make(s, email, password, name)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
        s.commit()
        click.echo(f"bureau account {user.email} (id {user.id}) created")


@main.command()
@click.pass_obj
def reindex(obj: dict) -> None:
    """Rebuild the search index from the database (the index holds public datasets only)."""
    from tqdm import tqdm

    from .search.sync import reindex as rebuild

    ctx = _context(**obj)
    bar = tqdm(total=0, unit="项", desc="索引 reindex", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    n = rebuild(ctx.sessions, ctx.search, progress=progress)
    bar.close()
    where = (
        "PostgreSQL (portal_search.document)"
        if ctx.settings.search_backend == "postgres"
        else ctx.settings.index_path
    )
    click.echo(f"indexed {n} public datasets into {where}")


@main.command()
@click.pass_obj
def rescan(obj: dict) -> None:
    """Scan every stored version again for personal information with the current rules:
    datasets now found holding it are held (and leave search), replaced versions that are not
    clean are removed from storage. Run it after an upgrade that taught the scan new kinds."""
    from sqlalchemy import select
    from tqdm import tqdm

    from harvest import gate

    from .models import ClassificationEvent, Dataset
    from .search.sync import sync

    ctx = _context(**obj)
    with ctx.sessions() as s:
        ids = s.scalars(select(Dataset.id).where(Dataset.status.in_(("published", "held")))).all()
    changed = 0
    for ds_id in tqdm(ids, desc="复查 rescan", unit="项", file=sys.stderr):
        with ctx.sessions.begin() as s:
            ds = s.get_one(Dataset, ds_id)
            before = (ds.open_class, ds.status)
            if new := gate.rescan(s, ctx.storage, ds):
                changed += 1
                s.add(
                    ClassificationEvent(
                        dataset_id=ds.id,
                        from_class=before[0],
                        to_class=ds.open_class,
                        from_status=before[1],
                        to_status=new,
                        legal_basis=ds.legal_basis,
                        actor="portal rescan",
                        note=ds.hold_reason or _("复查未发现问题").source,
                    )
                )
    sync(ctx.sessions, ctx.search)
    click.echo(f"rescanned {len(ids)} datasets; {changed} changed status")


@main.command()
@click.pass_obj
def remind(obj: dict) -> None:
    """Send the reminders that fall due today (usage reports before and after their date), and
    forget the forms done more than 30 days ago; idempotent, meant for a daily cron job until the
    job queue runs it."""
    from datetime import timedelta

    from .deadlines import remind_all as send_reminders
    from .models import utcnow
    from .models.forms import forget_done_forms

    ctx = _context(**obj)
    with ctx.sessions.begin() as s:
        n = send_reminders(s, site_url=ctx.settings.base_url)
        forgotten = forget_done_forms(s, utcnow() - timedelta(days=30))
    click.echo(f"{n} reminders written to the outbox; {forgotten} done forms forgotten")


def _progress_bar() -> Callable[[str, int, int], None]:
    from tqdm import tqdm

    bars: dict = {}

    def progress(what: str, done: int, total: int) -> None:
        bar = bars.get(what) or bars.setdefault(what, tqdm(total=total, desc=what, file=sys.stderr))
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    return progress


@main.command("backup")
@click.argument("out", type=click.Path(dir_okay=False))
@click.pass_obj
def backup_cmd(obj: dict, out: str) -> None:
    """Write a consistent backup (database snapshot, data files, secret) to OUT (.tar or .tar.gz)."""
    from .backup import backup

    report = backup(_context(**obj), Path(out), progress=_progress_bar())
    click.echo(
        f"{out}: {sum(report.tables.values())} rows in {len(report.tables)} tables, "
        f"{report.files} files ({report.bytes / 2**20:.1f} MB)"
    )
    if report.missing_files:
        click.echo(
            f"warning: {len(report.missing_files)} files referenced by the snapshot were removed while "
            f"it was taken: {', '.join(report.missing_files[:5])}",
            err=True,
        )


@main.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@click.pass_obj
def restore_cmd(obj: dict, archive: str) -> None:
    """Restore ARCHIVE into this (empty) instance, then rebuild the search index."""
    from .backup import BackupError, restore
    from .search.sync import reindex as rebuild

    ctx = _context(**obj)
    try:
        manifest = restore(ctx, Path(archive), progress=_progress_bar())
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    n = rebuild(ctx.sessions, ctx.search)
    click.echo(
        f"restored the backup of {manifest['created_at']} ({manifest['database']}); indexed {n} public datasets"
    )


@main.group()
def deploy() -> None:
    """Production configuration files (docs/deploy.md)."""


@deploy.command("nginx")
@click.option("--listen", default="80", show_default=True, help="nginx's listen directive.")
@click.option(
    "--upstream",
    multiple=True,
    default=["127.0.0.1:8000"],
    show_default=True,
    help="gunicorn's address (PORTAL_BIND); repeat it for each node of a multi-machine portal.",
)
@click.option(
    "--standalone", is_flag=True, help="A complete nginx.conf (nginx -c FILE), not only the server block."
)
@click.option(
    "--run-dir",
    default="/run/portal-nginx",
    show_default=True,
    help="With --standalone: where nginx keeps its pid, logs and temporary files.",
)
@click.option(
    "--user",
    default=None,
    help="With --standalone: the account nginx's workers run as when started as "
    "root (one that can read the files folder, e.g. www-data).",
)
@click.pass_obj
def deploy_nginx(
    obj: dict, listen: str, upstream: tuple[str, ...], standalone: bool, run_dir: str, user: str | None
) -> None:
    """Print the nginx configuration for this instance: the server block to include in
    nginx's http block, or with --standalone a whole nginx.conf."""
    from .deploy import complete_nginx, nginx_server

    block = nginx_server(Settings.load(obj), listen=listen, upstream=list(upstream))
    click.echo(complete_nginx(block, run_dir=run_dir, user=user) if standalone else block)


@deploy.command("files-moved")
@click.pass_obj
def deploy_files_moved(obj: dict) -> None:
    """Record a new place for the data files, after copying them there (a bucket, a shared
    mount): checks that it holds every file the portal refers to first. Every node must then
    use the new place; a node still pointed at the old one does not start."""
    from .context import PortalContext
    from .deployment import already_the_portals_place, record_moved_files

    ctx = PortalContext(Settings.load(obj), files_moving=True)
    if already_the_portals_place(ctx.sessions, ctx.storage):
        click.echo("the portal's data files are already here: nothing to record")
        return
    missing = record_moved_files(ctx.sessions, ctx.storage)
    if missing:
        shown = "\n  ".join(missing[:10]) + ("\n  ..." if len(missing) > 10 else "")
        raise click.ClickException(
            f"{len(missing)} of the portal's files are not in the new place; nothing was changed. Copy them "
            f"(docs/deploy.md, section 5), then run this again. Missing:\n  {shown}"
        )
    click.echo(
        f"the portal's data files are now at {ctx.settings.files_url or ctx.settings.files_path}; "
        "start every node with the same setting"
    )


@deploy.command("change-secret-key")
@click.option("--yes", is_flag=True, help="Every node is stopped: go ahead without asking.")
@click.pass_obj
def deploy_change_secret_key(obj: dict, yes: bool) -> None:
    """Replace the portal's secret key (after a leak, or as a routine): every sealed bid is
    encrypted again under the new key and the database records it, in one transaction. Every
    node must be stopped first and get the new key before it starts again; everyone is signed
    out, and links already sent (password resets, licensed downloads) stop working."""
    import secrets as random

    from licenses.tenders import reseal_bids

    from .audit import record
    from .deployment import record_new_secret

    ctx = _context(**obj)  # checks the old key first: only the portal's own key can be replaced
    settings = ctx.settings
    if not yes:
        click.confirm(
            "Every node of this portal is stopped, and you will give each the new key before it starts?",
            abort=True,
        )
    old, new = settings.load_secret_key(), random.token_hex(32)
    with ctx.sessions.begin() as s:
        bids = reseal_bids(s, old, new)
        record_new_secret(s, new)
        record(s, "secret_key_changed", target="deployment", via="cli", bids_resealed=bids)
    key_file = settings.instance_path / "secret_key"
    from_environment = bool(os.environ.get("PORTAL_SECRET_KEY"))
    if not from_environment:
        key_file.write_text(new)
        key_file.chmod(0o600)
    click.echo(f"the secret key is changed; {bids} sealed bids encrypted again under it.")
    if from_environment:
        click.echo(f"Put it into portal.env on every node, replacing the old one:\nPORTAL_SECRET_KEY={new}")
    else:
        click.echo(
            f"It is in {key_file}. With more than one node, put it into portal.env on every node "
            "(PORTAL_SECRET_KEY), then start them."
        )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option(
    "--workers/--no-workers", default=True, help="Run the job queue's workers in this process (default)."
)
@click.pass_obj
def serve(obj: dict, host: str, port: int, workers: bool) -> None:
    """Serve the portal (a threaded server for one machine; see docs for production)."""
    from werkzeug.serving import run_simple

    from .app import create_app
    from .worker import start_in_process

    app = create_app(obj)
    stop_workers = start_in_process(app.extensions["portal"]) if workers else None
    click.echo(f"东昌府区公共数据开放平台: http://{host}:{port}/")
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        if stop_workers:
            stop_workers()


@main.command()
@click.option("--workers", default=2, show_default=True, help="Jobs run at once by this process (threads).")
@click.option(
    "--no-schedule",
    is_flag=True,
    help="Run jobs only; leave the minute-by-minute schedule to another worker.",
)
@click.pass_obj
def worker(obj: dict, workers: int, no_schedule: bool) -> None:
    """Run the portal's jobs (mail, harvests, reindexing, reminders) until stopped. Any number
    may run, on any machine that reaches the database and the queue (PORTAL_REDIS_URL)."""
    from .worker import run_worker

    ctx = _context(**obj)
    if ctx.queue.huey is None:
        raise click.ClickException("PORTAL_QUEUE=inline runs jobs where they are queued: no worker is needed")
    click.echo(f"portal worker: {workers} threads on the {ctx.queue.mode} queue", err=True)
    run_worker(ctx, workers, periodic=not no_schedule)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--serve/--no-serve", "then_serve", default=True, help="Serve the portal after the harvest.")
@click.option("--entries", default=520, show_default=True, help="How many catalog entries to generate.")
@click.pass_context
def demo(click_ctx: click.Context, host: str, port: int, then_serve: bool, entries: int) -> None:
    """Generate a realistic internal catalog of Dongchangfu District, harvest it, serve it."""
    from harvest.sources import SpreadsheetSource
    from portal.demo import generate_catalog

    obj = click_ctx.obj
    ctx = _context(**obj)
    folder = ctx.settings.instance_path / "demo-catalog"
    catalogs = generate_catalog(folder, entries=entries)
    click.echo(f"demo catalog: {len(catalogs)} department spreadsheets in {folder}")
    harvester = ctx.harvester()
    totals: dict[str, int] = {}
    for path in _progress_iter(catalogs):
        report = harvester.run(SpreadsheetSource(path))
        for k, v in report.counts.items():
            totals[k] = totals.get(k, 0) + v
    click.echo("harvest: " + ", ".join(f"{k} {v}" for k, v in totals.items()))
    from portal.demo import add_english_titles
    from portal.search.sync import sync

    if add_english_titles(ctx.sessions):  # the departments' English titles, as their console would set them
        sync(ctx.sessions, ctx.search)
    import secrets

    from portal.demo import demo_accounts_and_activity

    password = "Demo-" + secrets.token_urlsafe(9)
    accounts = demo_accounts_and_activity(ctx, password)
    if accounts:
        click.echo(f"demo accounts (password {password}): " + "; ".join(f"{e} ({r})" for e, r in accounts))
    if then_serve:
        click_ctx.invoke(serve, host=host, port=port, workers=True)


def _progress_iter(paths: list[Path]) -> Iterable[Path]:
    from tqdm import tqdm

    return tqdm(paths, unit="部门", desc="采集 harvest", file=sys.stderr, disable=not sys.stderr.isatty())


if __name__ == "__main__":
    main()

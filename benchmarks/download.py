"""Download throughput and server memory for a 1 GB file: the portal under gunicorn beside
nginx (sendfile on) serving the same file, on loopback, in the same run; and a slow client
(25 MB/s) that must get the whole file although it takes longer than the worker timeout.

    python benchmarks/download.py [--size-mb 1024] [--repeat 3] [--slow-rate 25]

Needs Debian's nginx (apt-get install nginx-light) and gunicorn (pip install gunicorn).
Results: benchmarks/results/download.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


def start_gunicorn(instance: Path, port: int, stderr=subprocess.DEVNULL, **settings: str) -> subprocess.Popen:
    """The portal as deployed (portal/gunicorn_config.py) on this instance and port, in a
    session of its own (stopped with its workers by killpg); `settings`: PORTAL_* variables."""
    env = {**os.environ, "PORTAL_INSTANCE": str(instance), "PORTAL_BIND": f"127.0.0.1:{port}", **settings}
    command = ["-m", "gunicorn", "-c", "python:portal.gunicorn_config", "--access-logfile", "/dev/null"]
    return subprocess.Popen(
        [sys.executable, *command, "portal.wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
    )


def make_instance(workdir: Path, size_mb: int) -> tuple[Path, str]:
    """An instance with one unconditional dataset whose CSV is ~size_mb, harvested for real."""
    from benchmarks._data import big_csv
    from harvest.sources import SpreadsheetSource
    from portal.config import Settings
    from portal.context import PortalContext
    from tests.catalogs import entry, write_catalog

    instance = workdir / "instance"
    if (instance / "ready").exists():
        return instance, (instance / "ready").read_text()
    shutil.rmtree(instance, ignore_errors=True)
    big_csv(workdir / "big.csv", size_mb * 2**20)
    catalog = write_catalog(
        workdir / "catalog.csv", [entry("371502-SCJ-9999", "市场主体检查记录", file="big.csv")]
    )
    ctx = PortalContext(Settings(instance_path=instance))
    print("harvesting the 1 GB dataset (conversion, formats)...", flush=True)
    report = ctx.harvester().run(SpreadsheetSource(catalog))
    assert report.counts["created"] == 1, report.as_dict()
    with ctx.sessions() as s:
        from sqlalchemy import select

        from portal.models import DataTable

        table = s.scalar(select(DataTable))
        url = f"/dataset/371502-scj-9999/download/{table.id}.csv"
    (instance / "ready").write_text(url)
    return instance, url


def rss_sampler(pids_of, stop: threading.Event, peaks: dict) -> None:
    while not stop.is_set():
        total = 0
        for pid in pids_of():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) // 1024
            except OSError:
                pass
        peaks["mb"] = max(peaks.get("mb", 0), total)
        time.sleep(0.1)


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid] + [int(p) for p in out]


def fetch(url: str, rate: str | None = None) -> tuple[float, int, int]:
    """(seconds, bytes, http status) with curl, as a user's client would download."""
    args = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}"]
    if rate:
        args += ["--limit-rate", rate]
    done = subprocess.run([*args, url], capture_output=True, text=True, timeout=900)
    status, size, seconds = done.stdout.split()
    return float(seconds), int(size), int(status)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--slow-rate",
        type=int,
        default=25,
        help="MB/s of the slow client (1 GB then takes ~42 s, past the 30 s worker timeout)",
    )
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "portal-bench-download")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if not shutil.which("nginx"):
        raise SystemExit("needs nginx: apt-get install nginx-light")
    instance, path = make_instance(args.workdir, args.size_mb)
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{instance / 'portal.db'}")
    with engine.connect() as conn:
        rel = conn.execute(text("SELECT csv_path FROM data_tables")).scalar()
    file_path = instance / "files" / rel
    size = file_path.stat().st_size

    portal_port, nginx_port, accel_port, front_port = free_port(), free_port(), free_port(), free_port()

    gunicorn = start_gunicorn(instance, portal_port, PORTAL_WORKERS="2")
    wait_for(f"http://127.0.0.1:{portal_port}/")  # one at a time: both would migrate the same database
    # The production path: nginx in front; the portal authorizes, nginx sends (X-Accel-Redirect).
    accel = start_gunicorn(instance, accel_port, PORTAL_WORKERS="2", PORTAL_X_ACCEL_PREFIX="/_files")
    # The front is the production configuration itself (deploy/nginx-portal.conf); beside it,
    # nginx serving the file directly, the yardstick.
    from portal.config import Settings
    from portal.deploy import nginx_server, standalone_nginx

    front_server = nginx_server(
        Settings(instance_path=instance), listen=f"127.0.0.1:{front_port}", upstream=f"127.0.0.1:{accel_port}"
    )
    direct_server = (
        f"server {{ listen 127.0.0.1:{nginx_port}; sendfile on; tcp_nopush on; "
        f"location = /file.csv {{ alias {file_path}; }} }}"
    )
    conf = standalone_nginx(args.workdir / "nginx", direct_server + "\n" + front_server)
    nginx = subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", str(conf.parent)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    results: dict = {"file_mb": size / 2**20}
    try:
        portal_url = f"http://127.0.0.1:{portal_port}{path}"
        nginx_url = f"http://127.0.0.1:{nginx_port}/file.csv"
        front_url = f"http://127.0.0.1:{front_port}{path}"
        wait_for(f"http://127.0.0.1:{accel_port}/")
        wait_for(nginx_url.replace("/file.csv", "/"))
        fetch(portal_url)  # warm the page cache, open the app's files
        runs: dict[str, list[float]] = {"portal": [], "nginx": [], "portal_behind_nginx": []}
        peaks: dict = {}
        stop = threading.Event()
        sampler = threading.Thread(target=rss_sampler, args=(lambda: children(gunicorn.pid), stop, peaks))
        sampler.start()
        for i in range(args.repeat):
            for name, url in (
                ("nginx", nginx_url),
                ("portal", portal_url),
                ("portal_behind_nginx", front_url),
            ):
                seconds, got, status = fetch(url)
                assert got == size and status == 200, (name, got, status)
                runs[name].append(size / 2**20 / seconds)
                print(f"  run {i + 1} {name:19}: {runs[name][-1]:.0f} MB/s", flush=True)
        stop.set()
        sampler.join()
        portal_mbps, nginx_mbps = statistics.median(runs["portal"]), statistics.median(runs["nginx"])
        front_mbps = statistics.median(runs["portal_behind_nginx"])
        results.update(
            portal_mb_s=portal_mbps,
            nginx_mb_s=nginx_mbps,
            ratio=portal_mbps / nginx_mbps,
            portal_behind_nginx_mb_s=front_mbps,
            ratio_behind_nginx=front_mbps / nginx_mbps,
            gunicorn_peak_rss_mb=peaks.get("mb"),
            runs=runs,
        )
        print(
            f"  => portal behind nginx (X-Accel-Redirect) {front_mbps:.0f} MB/s: {front_mbps / nginx_mbps:.2f}× nginx",
            flush=True,
        )
        print(
            f"  => portal {portal_mbps:.0f} MB/s vs nginx {nginx_mbps:.0f} MB/s: {portal_mbps / nginx_mbps:.2f}× "
            f"(target ≥ 0.9); gunicorn master + workers peak RSS {peaks.get('mb')} MB during the downloads",
            flush=True,
        )
        print(f"slow client at {args.slow_rate} MB/s (worker timeout 30 s)...", flush=True)
        seconds, got, status = fetch(portal_url, rate=f"{args.slow_rate}M")
        results["slow_client"] = {
            "rate_mb_s": args.slow_rate,
            "seconds": seconds,
            "bytes": got,
            "complete": got == size,
            "status": status,
        }
        print(
            f"  => {got / 2**20:.0f} of {size / 2**20:.0f} MB in {seconds:.0f} s, status {status}: "
            f"{'complete' if got == size else 'CUT SHORT'}",
            flush=True,
        )
    finally:
        for proc in (gunicorn, accel, nginx):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    out = ROOT / "benchmarks" / "results" / "download.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"saved {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

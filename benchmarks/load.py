"""Load on the production path: wrk against nginx in front of gunicorn (deploy/nginx-portal.conf),
on the demo catalog (~530 entries harvested for real), at 50 and 200 concurrent clients, on
SQLite and on PostgreSQL. Four mixes: search pages, dataset pages, the JSON APIs (CKAN and
the data API), and downloads of small files. Prints and saves throughput, p50/p99 and errors.

    python benchmarks/load.py [--seconds 15] [--clients 50 200] [--databases sqlite postgresql]
                              [--page-cache on off] [--nodes 1 2] [--mixes downloads ...]

After each server run, the downloads gunicorn answered (its access logs) are compared with the
downloads counted in the table once the counters are flushed: they must be equal.

Each mix is warmed up for 3 s at the largest client count before it is measured. Each database is measured with the page cache (portal/page_cache.py, anonymous answers in
Redis) on and off; with it on, "cached" tells what share of the mix's URLs a repeat request
got from the cache (downloads never are: their bytes stream). Search runs on Whoosh with
SQLite and on PostgreSQL full-text search with PostgreSQL, as production would.

With `--nodes 1 2`, PostgreSQL is also measured with two nodes behind the one nginx upstream,
as docs/deploy.md section 6 sets them up: two gunicorn masters (each with the worker count of
the single node) with instance folders of their own, one secret key, one files folder (on one
machine, the "shared mount" is simply the same folder), one Redis. On one machine both nodes
share its cores, so this measures what the second node and nginx's balancing cost or give on
the same hardware, not the gain of a second machine. SQLite is measured with one node only
(two machines cannot share a SQLite file).

Needs wrk and nginx (apt-get install wrk nginx-light), gunicorn; PostgreSQL at
postgresql+psycopg://postgres@127.0.0.1:5432 (a database `portal_load` is made and dropped).
The data API's per-address limit is raised for the run (every wrk client is 127.0.0.1).
Results: benchmarks/results/load.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.download import free_port  # noqa: E402

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
WORDS = ["药品", "交通", "企业", "学校", "公交", "医疗", "许可", "环境", "统计", "农业", "bus", "371502"]


def search_backend(database_url: str) -> str:
    return "postgres" if database_url.startswith("postgresql") else "whoosh"


def prepare(instance: Path, database_url: str) -> None:
    from harvest.sources import SpreadsheetSource
    from portal.config import Settings
    from portal.context import PortalContext
    from portal.demo import generate_catalog

    ctx = PortalContext(
        Settings(
            instance_path=instance, database_url=database_url, search_backend=search_backend(database_url)
        )
    )
    harvester = ctx.harvester()
    for path in generate_catalog(instance.parent / "catalogs", entries=520):
        harvester.run(SpreadsheetSource(path))
    ctx.engine.dispose()


def served_downloads(workdir: Path) -> int:
    """Downloads gunicorn answered with 200, from the access lines in each node's log (the
    portal's logging sends gunicorn.access to stderr, kept in node-<n>.log)."""
    pattern = re.compile(r'gunicorn\.access: .*"GET /dataset/[^ ]+/download/[^ ]+ HTTP/[\d.]+" 200 ')
    return sum(
        1 for log in workdir.glob("node-*.log") for line in log.open(encoding="utf-8") if pattern.search(line)
    )


def counted_downloads(instance: Path, database_url: str) -> int:
    """Downloads in the table once what the stopped servers left in Redis is flushed (a download
    is a read: its count waits in the counters, portal/counters.py)."""
    from sqlalchemy import func, select

    from portal.config import Settings
    from portal.context import PortalContext
    from portal.models import DailyCounter

    ctx = PortalContext(
        Settings(instance_path=instance, database_url=database_url, redis_url="redis://127.0.0.1:6379/8")
    )
    try:
        ctx.counters.flush()
        with ctx.sessions() as s:
            return int(
                s.scalar(
                    select(func.coalesce(func.sum(DailyCounter.count), 0)).where(
                        DailyCounter.kind == "download"
                    )
                )
            )
    finally:
        ctx.engine.dispose()


def mixes(base: str) -> dict[str, list[str]]:
    """Real URLs of each kind, read from the running portal's own API."""
    names = requests.get(f"{base}/api/3/action/package_list", timeout=30).json()["result"]
    packages = [
        requests.get(f"{base}/api/3/action/package_show", params={"id": n}, timeout=30).json()["result"]
        for n in names[:120]
    ]
    unconditional = [
        p for p in packages if {"key": "open_class", "value": "unconditional"} in p.get("extras", [])
    ]
    rnd = random.Random(7)
    from urllib.parse import urlsplit

    downloads = [
        urlsplit(r["url"]).path for p in unconditional for r in p["resources"] if r["format"] == "CSV"
    ]
    return {
        "search pages": [f"/search?q={w}" for w in WORDS]
        + [f"/search?q={w}&page=2" for w in WORDS[:4]]
        + ["/search"],
        "dataset pages": [f"/dataset/{p['name']}" for p in rnd.sample(packages, min(60, len(packages)))],
        "JSON API": [f"/api/3/action/package_search?q={w}&rows=10" for w in WORDS]
        + [f"/api/3/action/package_show?id={p['name']}" for p in packages[:20]]
        + [f"/api/data/{p['name']}?limit=50" for p in unconditional[:20]],
        "downloads": downloads[:60],
    }


def cached_share(base: str, paths: list[str]) -> float:
    """The share of the URLs a second request gets from the page cache."""
    hits = 0
    for path in paths:
        requests.get(base + path, timeout=30)
        hits += requests.get(base + path, timeout=30).headers.get("X-Page-Cache") == "hit"
    return hits / len(paths)


LUA = """
paths = {%s}
counter = math.random(1, #paths)
request = function()
  counter = counter %% #paths + 1
  return wrk.format("GET", paths[counter])
end
"""


def run_wrk(base: str, paths: list[str], clients: int, seconds: int, workdir: Path) -> dict:
    script = workdir / "paths.lua"
    from urllib.parse import quote

    script.write_text(LUA % ", ".join(json.dumps(quote(p, safe="/?=&%")) for p in paths))
    done = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            str(clients),
            "-d",
            f"{seconds}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            base,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    out = done.stdout
    if "Requests/sec" not in out:
        raise SystemExit(f"wrk failed: {done.stdout[-500:]} {done.stderr[-500:]}")

    def ms(label: str) -> float | None:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    requests_total = re.search(r"(\d+) requests in", out)
    return {
        "requests": int(requests_total.group(1)) if requests_total else 0,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "errors": (int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(map(int, sockets.groups())) if sockets else 0),
    }


def serve(instance: Path, database_url: str, workdir: Path, page_cache: bool, nodes: int = 1):
    from portal.config import Settings
    from portal.deploy import nginx_server, standalone_nginx

    app_ports, web_port = [free_port() for _ in range(nodes)], free_port()
    secret = Settings(instance_path=instance).load_secret_key()
    gunicorns = []
    import redis

    redis.Redis.from_url("redis://127.0.0.1:6379/8").flushdb()
    for old_log in workdir.glob("node-*.log"):  # a two-node run's second log must not count in the next run
        old_log.unlink()
    for i, app_port in enumerate(app_ports):
        # One env file for every node: only the bind address and the instance folder differ.
        env = {
            **os.environ,
            "PORTAL_INSTANCE": str(instance if i == 0 else workdir / f"instance-node-{i + 1}"),
            "PORTAL_FILES_PATH": str(instance / "files"),
            "PORTAL_SECRET_KEY": secret,
            "PORTAL_DATABASE_URL": database_url,
            "PORTAL_BIND": f"127.0.0.1:{app_port}",
            "PORTAL_WORKERS": "4",
            "PORTAL_THREADS": "16",
            "PORTAL_X_ACCEL_PREFIX": "/_files",
            "PORTAL_PROXIES": "1",
            "PORTAL_REDIS_URL": "redis://127.0.0.1:6379/8",
            "PORTAL_DATA_API_RATE": "1000000 per minute",
            "PORTAL_SEARCH_BACKEND": search_backend(database_url),
            "PORTAL_PAGE_CACHE_SECONDS": "60" if page_cache else "0",
            # Two nodes × 4 workers × (5 + 5) connections = 80, under PostgreSQL's default 100
            # (5 + 10 each would ask for 120: docs/deploy.md section 6); the same for one node.
            "PORTAL_DB_MAX_OVERFLOW": "5",
        }
        gunicorns.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-c",
                    "python:portal.gunicorn_config",
                    "--access-logfile",
                    "/dev/null",
                    "portal.wsgi:app",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=(workdir / f"node-{i + 1}.log").open("w"),
                start_new_session=True,
            )
        )  # the node's log, for errors seen under load
    conf = standalone_nginx(
        workdir / "nginx",
        nginx_server(
            Settings(instance_path=instance),
            listen=f"127.0.0.1:{web_port}",
            upstream=[f"127.0.0.1:{p}" for p in app_ports],
        ),
        worker_connections=2048,
    )
    nginx = subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", str(conf.parent)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{web_port}"
    for url in [f"http://127.0.0.1:{p}" for p in app_ports] + [base]:  # every node up, then nginx
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if requests.get(f"{url}/api/3/action/status_show", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.3)
        else:
            raise SystemExit(f"{url} did not start")
    return base, (nginx, *gunicorns)


def measure(
    results: dict,
    args: argparse.Namespace,
    database: str,
    instance: Path,
    url: str,
    workdir: Path,
    cache: str,
    nodes: int,
) -> None:
    base, procs = serve(instance, url, workdir, page_cache=cache == "on", nodes=nodes)
    try:
        for mix, paths in mixes(base).items():
            if args.mixes and mix not in args.mixes:
                continue
            cached = cached_share(base, paths)
            # Not measured: the first seconds after a start (each worker's first
            # connections and requests; portal.app.warm_up covers the costliest part).
            run_wrk(base, paths, max(args.clients), 3, workdir)
            for clients in args.clients:
                run = {
                    "database": database,
                    "page_cache": cache,
                    "nodes": nodes,
                    "mix": mix,
                    "clients": clients,
                    "urls": len(paths),
                    "cached": cached,
                    **run_wrk(base, paths, clients, args.seconds, workdir),
                }
                results["runs"].append(run)
                print(
                    f"[{database}, cache {cache}, {nodes} node{'s' if nodes > 1 else ''}] {mix:14} {clients:4} "
                    f"clients: {run['rps']:8.0f} req/s, p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms, "
                    f"errors {run['errors']} of {run['requests']}, cached {cached:.0%}",
                    flush=True,
                )
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--clients", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--page-cache", nargs="+", choices=["on", "off"], default=["on", "off"])
    parser.add_argument(
        "--nodes",
        type=int,
        nargs="+",
        choices=[1, 2],
        default=[1, 2],
        help="app nodes behind nginx (2: PostgreSQL only)",
    )
    parser.add_argument(
        "--mixes", nargs="+", choices=["search pages", "dataset pages", "JSON API", "downloads"], default=None
    )
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "portal-bench-load")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/load.json")
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            raise SystemExit(f"needs {tool}: apt-get install wrk nginx-light")
    results: dict = {"seconds": args.seconds, "runs": []}
    for database in args.databases:
        workdir = args.workdir / database
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        instance = workdir / "instance"
        if database == "postgresql":
            from sqlalchemy import create_engine, text

            admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text("DROP DATABASE IF EXISTS portal_load WITH (FORCE)"))
                conn.execute(text("CREATE DATABASE portal_load"))
            url = f"{PG_SERVER}/portal_load"
        else:
            url = f"sqlite:///{instance / 'portal.db'}"
        print(f"[{database}] harvesting the demo catalog...", flush=True)
        prepare(instance, url)
        for cache in args.page_cache:
            for nodes in args.nodes:
                if nodes > 1 and database != "postgresql":
                    continue  # two machines cannot share a SQLite file
                before = counted_downloads(instance, url)
                measure(results, args, database, instance, url, workdir, cache, nodes)
                check = {
                    "database": database,
                    "page_cache": cache,
                    "nodes": nodes,
                    "served": served_downloads(workdir),
                    "counted": counted_downloads(instance, url) - before,
                }
                results.setdefault("download_counts", []).append(check)
                print(
                    f"[{database}, cache {cache}, {nodes} node(s)] downloads served {check['served']}, "
                    f"counted {check['counted']}",
                    flush=True,
                )
        if database == "postgresql":
            with admin.connect() as conn:
                conn.execute(text("DROP DATABASE IF EXISTS portal_load WITH (FORCE)"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()

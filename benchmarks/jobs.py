"""Job queue throughput (portal/jobs.py, portal/worker.py): how many jobs a second `portal worker`
processes take through, on both storages — Huey's SQLite file with the SQLite database (one
machine, nothing to run) and Redis with PostgreSQL (production, any number of machines).

Each job is a real `mail` job with no mail server configured (it claims its row, finds the
message, records it kept in the outbox and finishes: two transactions), so the figure is the
queue's own cost per job: hand-over, claim, finish. Jobs are written in batches of 100 per
transaction, as a harvest's notices are.

    python benchmarks/jobs.py [--jobs 2000] [--workers 2] [--threads 4]

Needs Redis on 127.0.0.1:6379 (db 12 is flushed) and PostgreSQL at
postgresql+psycopg://postgres@127.0.0.1:5432 (a database `portal_queue_bench` is made and
dropped). Results: benchmarks/results/jobs.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/12"


def run(
    storage: str, database_url: str, instance: Path, jobs_wanted: int, workers: int, threads: int
) -> dict:
    from sqlalchemy import func, select

    from portal import mail
    from portal.config import Settings
    from portal.context import PortalContext
    from portal.models import Job

    overrides = {"instance": instance, "database_url": database_url, "queue": storage}
    if storage == "redis":
        import redis

        redis.Redis.from_url(REDIS).flushdb()
        overrides["redis_url"] = REDIS
    ctx = PortalContext(Settings.load(overrides))
    env = {
        **os.environ,
        "PORTAL_INSTANCE": str(instance),
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_QUEUE": storage,
        "PORTAL_REDIS_URL": overrides.get("redis_url", ""),
        "PORTAL_SECRET_KEY": ctx.settings.load_secret_key(),
    }
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "portal.cli",
                "worker",
                "--workers",
                str(threads),
                *(["--no-schedule"] if i else []),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for i in range(workers)
    ]
    time.sleep(3)  # the workers are up and polling
    try:
        started = time.perf_counter()
        for batch in range(0, jobs_wanted, 100):
            with ctx.sessions.begin() as s:
                for i in range(batch, min(batch + 100, jobs_wanted)):
                    mail.send(s, f"user{i}@example.cn", "基准测试", "队列吞吐量")
        queued = time.perf_counter() - started
        while True:
            with ctx.sessions() as s:
                done = s.scalar(select(func.count()).select_from(Job).where(Job.state == "done"))
            if done >= jobs_wanted:
                break
            if time.perf_counter() - started > 600:
                raise SystemExit(f"{storage}: only {done} of {jobs_wanted} jobs done in 10 minutes")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        for p in processes:
            os.killpg(p.pid, signal.SIGTERM)
        for p in processes:
            p.wait(30)
        ctx.engine.dispose()
    return {
        "storage": storage,
        "database": "postgresql" if database_url.startswith("postgresql") else "sqlite",
        "jobs": jobs_wanted,
        "queued_per_second": round(jobs_wanted / queued),
        "done_per_second": round(jobs_wanted / elapsed),
        "seconds": round(elapsed, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="`portal worker` processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    args = parser.parse_args()
    from sqlalchemy import create_engine, text

    results = []
    with tempfile.TemporaryDirectory(prefix="queue-bench-") as tmp:
        print(
            f"SQLite queue + SQLite database: {args.jobs} jobs, {args.workers} workers × {args.threads} threads …"
        )
        results.append(run("sqlite", "", Path(tmp) / "sqlite", args.jobs, args.workers, args.threads))
        print(json.dumps(results[-1], ensure_ascii=False))
        server = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
        with server.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS portal_queue_bench WITH (FORCE)"))
            conn.execute(text("CREATE DATABASE portal_queue_bench"))
        try:
            print(f"Redis queue + PostgreSQL database: {args.jobs} jobs …")
            results.append(
                run(
                    "redis",
                    f"{PG_SERVER}/portal_queue_bench",
                    Path(tmp) / "redis",
                    args.jobs,
                    args.workers,
                    args.threads,
                )
            )
            print(json.dumps(results[-1], ensure_ascii=False))
        finally:
            with server.connect() as conn:
                conn.execute(text("DROP DATABASE IF EXISTS portal_queue_bench WITH (FORCE)"))
            server.dispose()
    out = ROOT / "benchmarks" / "results" / "jobs.json"
    out.write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%d %H:%M"),
                "workers": args.workers,
                "threads": args.threads,
                "runs": results,
            },
            ensure_ascii=False,
            indent=2,
        )
        + "\n"
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()

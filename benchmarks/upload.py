"""Upload throughput and server memory for a 1 GB data file a department gives in the console:
the portal's chunked upload (8 MiB chunks, portal/catalog/uploads.py) through nginx and gunicorn,
beside nginx alone writing the same file (a WebDAV PUT to disk), on loopback, in the same run.
Both clients send from the file without copying it whole (requests streams the
file to nginx; the portal's chunks are views of the mapped file). The gunicorn worker's peak resident memory (VmHWM) is read before and after: flat means the
file never sits in memory.

    python benchmarks/upload.py [--size-mb 1024] [--repeat 3]

Needs Debian's nginx (apt-get install nginx-light, with its dav module) and gunicorn.
Results: benchmarks/results/upload.json.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.download import free_port, start_gunicorn, wait_for  # noqa: E402
from portal.catalog.uploads import CHUNK_BYTES  # noqa: E402

CURATOR, PASSWORD = "curator@example.cn", "Upload-bench-2026"


def prepare(instance: Path, size_mb: int) -> Path:
    """An instance with one harvested dataset and its curator; a CSV of `size_mb` to upload."""
    from harvest.sources import SpreadsheetSource
    from portal import accounts
    from portal.config import Settings
    from portal.context import PortalContext
    from portal.demo import CATALOG_HEADER
    from portal.models import Department, utcnow

    source = instance.parent / "source"
    source.mkdir(parents=True)
    (source / "shops.csv").write_text("店名,街道\n甲超市,柳园街道\n", encoding="utf-8")
    row = {
        "信息资源代码": "DCF-BENCH-001",
        "信息资源名称": "超市名录",
        "信息资源提供方": "东昌府区市场监督管理局",
        "信息资源提供方代码": "dcf-scjgj",
        "开放类型": "无条件开放",
        "法律依据": "《中华人民共和国数据安全法》第三十八条",
        "数据文件": "shops.csv",
    }
    (source / "catalog.csv").write_text(
        ",".join(CATALOG_HEADER) + "\n" + ",".join(row.get(h, "") for h in CATALOG_HEADER) + "\n",
        encoding="utf-8",
    )
    ctx = PortalContext(Settings.load({"instance": instance, "queue": "inline"}))
    ctx.harvester().run(SpreadsheetSource(source / "catalog.csv"))
    with ctx.sessions.begin() as s:
        user = accounts.register(
            s, accounts.Registration(email=CURATOR, password=PASSWORD, name="基准测试", kind="citizen")
        )
        user.email_verified_at = utcnow()
        user.curator_department = s.query(Department).filter_by(code="dcf-scjgj").one()
    ctx.engine.dispose()
    big = instance.parent / "big.csv"
    line = "甲超市,柳园街道,2026-12-01,13800000000\n".encode()
    with open(big, "wb") as out:
        out.write("店名,街道,日期,电话\n".encode())
        block = line * (4 * 1024 * 1024 // len(line))
        while out.tell() < size_mb * 1024 * 1024:
            out.write(block)
    return big


def serve(instance: Path, work: Path) -> tuple[str, str, str, list[subprocess.Popen]]:
    from portal.config import Settings
    from portal.deploy import nginx_server, standalone_nginx

    app_port, web_port, dav_port = free_port(), free_port(), free_port()
    gunicorn = start_gunicorn(
        instance,
        app_port,
        stderr=(work / "gunicorn.log").open("w"),
        PORTAL_WORKERS="1",
        PORTAL_THREADS="4",
        PORTAL_PROXIES="1",
        PORTAL_QUEUE="sqlite",  # the check waits for a worker: the upload alone is measured
    )
    dav_root = work / "dav"
    dav_root.mkdir()
    dav = f"""
server {{
    listen 127.0.0.1:{dav_port};
    client_max_body_size 0;
    client_body_buffer_size 1m;
    location / {{ root {dav_root}; dav_methods PUT; create_full_put_path on; }}
}}
"""
    server = nginx_server(
        Settings(instance_path=instance), listen=f"127.0.0.1:{web_port}", upstream=f"127.0.0.1:{app_port}"
    )
    conf = standalone_nginx(work / "nginx", server + dav)
    nginx = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(conf.parent)], start_new_session=True)
    wait_for(f"http://127.0.0.1:{app_port}/api/3/action/status_show")
    wait_for(f"http://127.0.0.1:{web_port}/api/3/action/status_show")
    # gunicorn without nginx as well, to tell the two parts' costs apart.
    return (
        f"http://127.0.0.1:{web_port}",
        f"http://127.0.0.1:{dav_port}",
        f"http://127.0.0.1:{app_port}",
        [nginx, gunicorn],
    )


def worker_pids(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def signed_in(base: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    page = session.get(f"{base}/login").text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    answer = session.post(f"{base}/login", data={**fields, "email": CURATOR, "password": PASSWORD})
    answer.raise_for_status()
    page = session.get(f"{base}/console/datasets/dcf-bench-001/upload").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return session, token


def upload_through_portal(base: str, big: Path) -> float:
    session, token = signed_in(base)
    headers = {"X-CSRFToken": token}
    started = time.perf_counter()
    upload = session.post(
        f"{base}/console/datasets/dcf-bench-001/uploads",
        json={"filename": "超市名录.csv", "size": big.stat().st_size},
        headers=headers,
    ).json()
    offset = 0
    # The file mapped, each chunk a view of it: the client copies no more than requests does
    # when it streams the whole file to nginx.
    with open(big, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        view, size = memoryview(mapped), len(mapped)
        while offset < size:
            chunk = view[offset : offset + upload["chunk"]]
            answer = session.put(f"{base}{upload['url']}?offset={offset}", data=chunk, headers=headers)
            chunk.release()
            answer.raise_for_status()
            offset = answer.json()["received"]
        view.release()
    session.post(f"{base}{upload['finish']}", headers=headers).raise_for_status()
    return time.perf_counter() - started


def upload_to_nginx(dav: str, big: Path, n: int) -> float:
    started = time.perf_counter()
    with open(big, "rb") as f:
        requests.put(f"{dav}/copy-{n}.csv", data=f).raise_for_status()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("nginx"):
        raise SystemExit("needs nginx (apt-get install nginx-light)")
    with tempfile.TemporaryDirectory(prefix="upload-bench-") as tmp:
        work = Path(tmp)
        instance = work / "instance"
        print(f"preparing an instance and a {args.size_mb} MB file …", flush=True)
        big = prepare(instance, args.size_mb)
        size_mb = big.stat().st_size / 1024 / 1024
        base, dav, direct, processes = serve(instance, work)
        try:
            [worker] = worker_pids(processes[1].pid)
            before = peak_rss_mb(worker)
            portal_times, nginx_times, direct_times = [], [], []
            for n in range(args.repeat):
                # Each upload starts with the disk's write-back done (os.sync): on this machine the
                # disk, not the page cache, takes the second gigabyte.
                os.sync()
                nginx_times.append(upload_to_nginx(dav, big, n))
                print(f"  nginx alone   run {n + 1}: {size_mb / nginx_times[-1]:7.1f} MB/s", flush=True)
                os.sync()
                portal_times.append(upload_through_portal(base, big))
                print(f"  portal+nginx  run {n + 1}: {size_mb / portal_times[-1]:7.1f} MB/s", flush=True)
                os.sync()
                direct_times.append(upload_through_portal(direct, big))
                print(f"  portal alone  run {n + 1}: {size_mb / direct_times[-1]:7.1f} MB/s", flush=True)
                shutil.rmtree(work / "dav", ignore_errors=True)
                (work / "dav").mkdir()
                for part in instance.rglob("*.part"):  # the portal's parts of this round
                    part.unlink()
            after = peak_rss_mb(worker)
        finally:
            for p in processes:
                os.killpg(p.pid, signal.SIGTERM)
            for p in processes:
                p.wait(30)
    nginx_rate, portal_rate = (
        size_mb / statistics.median(nginx_times),
        size_mb / statistics.median(portal_times),
    )
    results = {
        "file_mb": round(size_mb),
        "chunk_mb": CHUNK_BYTES // (1024 * 1024),
        "nginx_alone_mb_s": round(nginx_rate, 1),
        "portal_through_nginx_mb_s": round(portal_rate, 1),
        "portal_without_nginx_mb_s": round(size_mb / statistics.median(direct_times), 1),
        "ratio": round(portal_rate / nginx_rate, 2),
        "worker_peak_rss_mb_before": round(before, 1),
        "worker_peak_rss_mb_after": round(after, 1),
        "runs": args.repeat,
        "when": time.strftime("%Y-%m-%d %H:%M"),
    }
    print(json.dumps(results, ensure_ascii=False, indent=2))
    out = ROOT / "benchmarks" / "results" / "upload.json"
    out.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()

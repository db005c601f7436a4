"""Two machines, as docs/deploy.md section 6 sets them up: two gunicorn masters with instance
folders of their own behind one nginx upstream, sharing PostgreSQL (and its search), Redis and
an S3-protocol store (moto), with one secret key from one environment file. Node B spells the
database's address differently from node A, as two machines' env files may.

Only on PostgreSQL: two nodes on one SQLite file with Whoosh index folders of their own is not
a supported setup (the CI's PostgreSQL run has it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
import requests

from portal.config import Settings
from portal.deploy import nginx_server, standalone_nginx
from tests.helpers import PG_URL, ROOT, free_port, hidden_fields, need_nginx, wait_for

pytestmark = pytest.mark.skipif(not PG_URL, reason="two nodes share PostgreSQL: run on the PostgreSQL pass")
REDIS_URL = "redis://127.0.0.1:6379/8"


@pytest.fixture
def files_store(bucket, s3_endpoint) -> dict:
    return {"files_url": f"s3://{bucket[1]}/portal", "files_options": {"endpoint_url": s3_endpoint}}


def node_env(settings: Settings, s3_endpoint: str, name: str, port: int, database_url: str) -> dict:
    """One portal.env for both machines; only the bind address and the instance folder differ."""
    return {
        **os.environ,
        "PORTAL_INSTANCE": str(settings.instance_path.parent / name),
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_SECRET_KEY": settings.load_secret_key(),
        "PORTAL_FILES_URL": settings.files_url,
        "PORTAL_FILES_OPTIONS": json.dumps({"endpoint_url": s3_endpoint}),
        "PORTAL_SEARCH_BACKEND": "postgres",
        "PORTAL_REDIS_URL": REDIS_URL,
        "PORTAL_PROXIES": "1",
        "PORTAL_BIND": f"127.0.0.1:{port}",
        "PORTAL_WORKERS": "2",
        "PORTAL_THREADS": "4",
    }


@pytest.fixture
def two_nodes(app, settings, s3_endpoint, tmp_path, nginx_or_skip):
    redis.Redis.from_url(REDIS_URL).flushdb()
    ports = {"a": free_port(), "b": free_port()}
    urls = {"a": settings.database_url, "b": settings.database_url.replace("127.0.0.1", "localhost")}
    envs = {n: node_env(settings, s3_endpoint, f"node-{n}", ports[n], urls[n]) for n in ports}
    nodes = {
        n: subprocess.Popen(
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
            env=envs[n],
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"node-{n}.log").open("w"),
            start_new_session=True,
        )  # a log file, not a pipe: nobody would drain it
        for n in ports
    }
    web_port = free_port()
    conf = standalone_nginx(
        tmp_path / "nginx",
        nginx_server(
            settings, listen=f"127.0.0.1:{web_port}", upstream=[f"127.0.0.1:{p}" for p in ports.values()]
        ),
    )
    nginx = subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", str(conf.parent)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for n, proc in nodes.items():
            wait_for(f"http://127.0.0.1:{ports[n]}/api/3/action/status_show", proc)
        wait_for(f"http://127.0.0.1:{web_port}/api/3/action/status_show", nginx)
        yield {
            "web": f"http://127.0.0.1:{web_port}",
            "a": f"http://127.0.0.1:{ports['a']}",
            "b": f"http://127.0.0.1:{ports['b']}",
            "env": envs,
            "procs": nodes,
        }
    finally:
        for proc in (nginx, *nodes.values()):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)


@pytest.fixture
def nginx_or_skip():
    need_nginx()


def log_in(
    session: requests.Session, page_from: str, post_to: str, email: str, password: str
) -> requests.Response:
    form = hidden_fields(session.get(f"{page_from}/login", timeout=10).text)
    return session.post(f"{post_to}/login", data={**form, "email": email, "password": password}, timeout=10)


def harvest_on(node_env: dict, tmp_path) -> None:
    """The harvest runs on node A, as the crontab of docs/deploy.md runs it."""
    from tests.catalogs import PHARMACIES, entry, write_catalog, write_csv

    header, rows = PHARMACIES
    write_csv(tmp_path / "src/p.csv", header, rows, "gbk")
    catalog = write_catalog(
        tmp_path / "src/scj.csv", [entry("371502-SCJ-0001", "药品零售企业名录", file="p.csv")]
    )
    done = subprocess.run(
        [str(Path(sys.executable).parent / "portal"), "harvest", "--catalog", str(catalog), "--no-progress"],
        cwd=ROOT,
        env=node_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_two_nodes_are_one_portal(two_nodes, make_user, tmp_path):
    web, a, b = two_nodes["web"], two_nodes["a"], two_nodes["b"]
    _, email, password = make_user()

    # A login page served by node A, posted to node B: one secret key, so the form's token holds.
    reader = requests.Session()
    assert log_in(reader, a, b, email, password).url.endswith("/account")
    assert email in reader.get(f"{a}/account", timeout=10).text  # the session B made is good on A
    # …and through nginx, whichever node answers each request (the 6 of 6 that failed).
    for _ in range(6):
        through = requests.Session()
        assert log_in(through, web, web, email, password).url.endswith("/account")

    # Anonymous search before the harvest: nothing, and the answer is cached in the shared Redis.
    search = f"{web}/api/3/action/package_search?q=药品"
    assert requests.get(search, timeout=10).json()["result"]["count"] == 0
    assert requests.get(search, timeout=10).headers["X-Page-Cache"] == "hit"

    harvest_on(two_nodes["env"]["a"], tmp_path)

    # On node B at once: the cache was dropped (B spells the database's address otherwise, and
    # still shares A's cache), the search finds it, the page and the download work.
    for node in (a, b):
        answer = requests.get(f"{node}/api/3/action/package_search?q=药品", timeout=10)
        assert answer.json()["result"]["count"] == 1, node
    page = requests.get(f"{b}/dataset/371502-scj-0001", timeout=10)
    assert page.status_code == 200 and "药品零售企业名录" in page.text
    download = _download_link(page.text)
    bodies = set()
    for node in (a, b):
        sent = requests.get(
            f"{node}{download}", timeout=10
        )  # redirected to the store's signed URL and fetched
        assert sent.status_code == 200 and len(sent.content) > 100, (node, sent.status_code)
        bodies.add(sent.content)
    assert len(bodies) == 1  # the same bytes from either node: one store

    # Node A dies mid-traffic: nginx sends its share to B; no reader sees a failure.
    failures: list[str] = []
    answered = [0]
    stop = threading.Event()

    def read() -> None:
        paths = ["/", "/search?q=药品", "/dataset/371502-scj-0001", "/api/3/action/package_search?q=药品"]
        i = 0
        while not stop.is_set():
            path = paths[i % len(paths)]
            i += 1
            try:
                status = requests.get(f"{web}{path}", timeout=15).status_code
            except requests.RequestException as exc:
                failures.append(f"{path}: {exc}")
                continue
            answered[0] += 1
            if status != 200:
                failures.append(f"{path}: {status}")

    readers = [threading.Thread(target=read) for _ in range(4)]
    for t in readers:
        t.start()
    time.sleep(1.5)
    os.killpg(two_nodes["procs"]["a"].pid, signal.SIGKILL)  # the master and its workers, no goodbye
    before = answered[0]
    time.sleep(3)
    stop.set()
    for t in readers:
        t.join(timeout=30)
    assert answered[0] > before + 10, "nothing was answered after the kill"
    assert failures == []


def _download_link(html: str) -> str:
    import re

    links = re.findall(r'href="(/dataset/371502-scj-0001/download/[^"]+\.csv)"', html)
    assert links, "no CSV download link on the dataset page"
    return links[0]

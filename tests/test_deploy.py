"""The production path, as docs/deploy.md sets it up: Debian's nginx with deploy/nginx-portal.conf
in front of gunicorn (several workers) on loopback, the database of this test run (PostgreSQL
in CI), Redis for rate limits, files sent by nginx after the portal authorized them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest
import requests
from sqlalchemy import select

from portal.config import Settings
from portal.deploy import nginx_server, standalone_nginx
from portal.models import Dataset
from tests.helpers import ROOT, free_port, need_nginx, wait_for


@contextmanager
def _production(settings, tmp_path, workers: int = 3, threads: int | None = None):
    """nginx in front of gunicorn as deployed; yields nginx's address and gunicorn's port."""
    need_nginx()
    app_port, web_port = free_port(), free_port()
    env = {
        **os.environ,
        "PORTAL_INSTANCE": str(settings.instance_path),
        "PORTAL_DATABASE_URL": settings.database_url,
        "PORTAL_BIND": f"127.0.0.1:{app_port}",
        "PORTAL_WORKERS": str(workers),
        "PORTAL_X_ACCEL_PREFIX": "/_files",
        "PORTAL_PROXIES": "1",
        "PORTAL_REDIS_URL": "redis://127.0.0.1:6379/9",
        "PORTAL_SEARCH_BACKEND": settings.search_backend,
        **({"PORTAL_THREADS": str(threads)} if threads else {}),
    }
    env.pop("PORTAL_WORKER_CONNECTIONS", None)  # as deployed: gunicorn_config's own choice
    gunicorn = subprocess.Popen(
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
        stderr=(tmp_path / "gunicorn.log").open("w"),
        start_new_session=True,
    )  # a file: a pipe nobody drains would block the workers' logging
    conf = standalone_nginx(
        tmp_path / "nginx",
        nginx_server(
            Settings.load({"instance": settings.instance_path}),
            listen=f"127.0.0.1:{web_port}",
            upstream=f"127.0.0.1:{app_port}",
        ),
    )
    nginx = subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", str(conf.parent)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{web_port}"
    try:
        wait_for(f"http://127.0.0.1:{app_port}/api/3/action/status_show", gunicorn)
        wait_for(f"{base}/api/3/action/status_show", nginx)
        yield base, app_port
    finally:
        for proc in (nginx, gunicorn):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


@pytest.fixture
def production(portal_data, settings, tmp_path):
    with _production(settings, tmp_path) as (base, _):
        yield base


def table_of(ctx, name: str):
    with ctx.sessions() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == name))
        table = ds.current_distributions[0].tables[0]
        return table.id, table.formats["csv"]["path"]


def test_nginx_sends_authorized_files_and_the_portal_answers_the_rest(production, portal_data):
    base = production
    home = requests.get(f"{base}/", timeout=10)
    assert home.status_code == 200 and "东昌府区公共数据开放平台" in home.text
    assert requests.get(f"{base}/static/portal.css", timeout=10).status_code == 200

    table_id, relative = table_of(portal_data, "371502-scj-0001")
    url = f"{base}/dataset/371502-scj-0001/download/{table_id}.csv"
    response = requests.get(url, timeout=10)
    on_disk = portal_data.storage.local_path(relative).read_bytes()
    assert response.status_code == 200 and response.content == on_disk
    assert response.headers["Server"] == "nginx"  # the bytes came from nginx
    assert "X-Accel-Redirect" not in response.headers
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]  # the portal's headers kept
    part = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=10)
    assert part.status_code == 206 and part.content == on_disk[10:20]

    # The files location is internal: no way around the portal's checks.
    assert requests.get(f"{base}/_files/{relative}", timeout=10).status_code == 404
    _, conditional_csv = table_of(portal_data, "371502-scj-0002")
    assert requests.get(f"{base}/_files/{conditional_csv}", timeout=10).status_code == 404
    conditional = table_of(portal_data, "371502-scj-0002")[0]
    assert (
        requests.get(f"{base}/dataset/371502-scj-0002/download/{conditional}.csv", timeout=10).status_code
        == 404
    )

    for _ in range(6):  # whichever worker answers, it searches the same index (Whoosh or PostgreSQL)
        api = requests.get(
            f"{base}/api/3/action/package_search", params={"q": "药品 企业"}, timeout=10
        ).json()
        found = {d["name"] for d in api["result"]["results"]}
        assert "371502-scj-0001" in found and "371502-scj-0003" not in found
    rows = requests.get(f"{base}/api/data/371502-scj-0001", timeout=10).json()
    assert len(rows["records"]) == 3

    # A very long search (600 Chinese characters, 5 KB encoded) passes nginx and gunicorn and gets
    # the portal's own 414 page; one nginx will not read gets its static page, not a bare one.
    long = requests.get(f"{base}/search", params={"q": "药店" * 300}, timeout=10)
    assert (
        long.status_code == 414
        and "东昌府区公共数据开放平台" in long.text
        and "Request Line" not in long.text
    )
    huge = requests.get(f"{base}/search", params={"q": "药" * 12000}, timeout=10)
    assert huge.status_code == 414 and "暂时无法访问" in huge.text


class _FromAddress(requests.adapters.HTTPAdapter):
    """Connect from another loopback address (Linux answers on all of 127/8): another client."""

    def __init__(self, ip: str):
        self.ip = ip
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.ip, 0)
        return super().init_poolmanager(*args, **kwargs)


def _client(ip: str) -> requests.Session:
    session = requests.Session()
    session.mount("http://", _FromAddress(ip))
    return session


def _failed_login(base: str, client: requests.Session, headers: dict | None = None) -> int:
    from tests.helpers import hidden_fields

    form = hidden_fields(client.get(f"{base}/login", timeout=10).text)
    return client.post(
        f"{base}/login",
        data={**form, "email": "x@example.cn", "password": "wrong-password"},
        headers=headers or {},
        timeout=10,
    ).status_code


def test_clients_are_told_apart_behind_the_proxy(production):
    """Rate limits count per client address as nginx saw it (X-Forwarded-For, one proxy
    trusted), in Redis, across workers: one client's login attempts do not lock out another,
    and a forged X-Forwarded-For does not escape the limit."""
    import redis

    redis.Redis.from_url("redis://127.0.0.1:6379/9").flushdb()
    base = production
    first, second = _client("127.0.0.2"), _client("127.0.0.3")
    statuses = [_failed_login(base, first) for _ in range(12)]
    assert statuses[:10] == [200] * 10 and statuses[10:] == [429, 429]  # three workers, one count
    assert _failed_login(base, first, {"X-Forwarded-For": "203.0.113.7"}) == 429
    assert _failed_login(base, second) == 200


def test_a_busy_worker_leaves_new_requests_to_a_free_one(portal_data, settings, tmp_path):
    """Two workers of one thread each. A client that sends half a form holds one worker's only
    thread (the form is read before the portal can answer). Every request after it is answered
    by the other worker: a worker with no free thread takes no connection to queue behind it
    (gunicorn's default let a busy worker take up to 1,000 and keep them waiting)."""
    with _production(settings, tmp_path, workers=2, threads=1) as (base, app_port):
        slow = socket.create_connection(("127.0.0.1", app_port), timeout=10)
        try:
            slow.sendall(
                b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
                b"email=a"
            )
            time.sleep(1)  # the first worker's thread is now waiting for the rest of the form
            answers = [
                requests.get(f"{base}/api/3/action/status_show", timeout=10).status_code for _ in range(12)
            ]
            assert answers == [200] * 12
        finally:
            slow.close()

"""What an operator meets: HTTPS that cannot be half set up, one gunicorn control socket per
instance."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_with_https_on_a_plain_http_request_gets_a_page_that_says_so_not_a_csrf_error(settings):
    from portal.app import create_app

    app = create_app(
        {
            "instance": settings.instance_path,
            "database_url": settings.database_url,
            "search_backend": settings.search_backend,
            "https": True,
            "TESTING": True,
        }
    )
    plain = app.test_client()  # (Flask's test client speaks https when PREFERRED_URL_SCHEME is https)
    page = plain.get("/login", base_url="http://localhost")
    html = page.get_data(as_text=True)
    assert page.status_code == 400 and "https://localhost/login" in html
    assert (
        "PORTAL_" not in html and "X-Forwarded-Proto" not in html
    )  # the operator's fix is in the log, not public
    posted = plain.post(
        "/login", data={"email": "a@example.cn", "password": "x"}, base_url="http://localhost"
    )
    assert posted.status_code == 400 and "HTTPS" in posted.get_data(as_text=True)
    assert "CSRF" not in posted.get_data(as_text=True)
    secure = app.test_client().get("/login", base_url="https://localhost")
    assert secure.status_code == 200 and 'name="csrf_token"' in secure.get_data(as_text=True)
    app.extensions["portal"].engine.dispose()


def test_each_instance_has_its_own_gunicorn_control_socket(tmp_path):
    def socket_of(instance: Path) -> str:
        env = {**os.environ, "PORTAL_INSTANCE": str(instance)}
        env.pop("PORTAL_CONTROL_SOCKET", None)
        return subprocess.run(
            [sys.executable, "-c", "import portal.gunicorn_config as c; print(c.control_socket)"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    first, second = socket_of(tmp_path / "node-a"), socket_of(tmp_path / "node-b")
    assert first != second and first == str(tmp_path / "node-a" / "gunicorn.ctl")
    deep = tmp_path / ("x" * 120)
    assert len(socket_of(deep).encode()) < 108  # a Unix socket's path limit


def test_deploy_nginx_standalone_prints_a_whole_configuration_nginx_accepts(settings, tmp_path):
    import shutil

    import pytest

    if not shutil.which("nginx"):
        pytest.skip("nginx is not installed here (CI installs it)")
    run = tmp_path / "run"
    run.mkdir()
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "portal.cli",
            "--instance",
            str(settings.instance_path),
            "deploy",
            "nginx",
            "--standalone",
            "--run-dir",
            str(run),
            "--listen",
            "127.0.0.1:18099",
            "--upstream",
            "10.0.0.11:8000",
            "--upstream",
            "10.0.0.12:8000",
            "--user",
            "www-data",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    conf = tmp_path / "nginx.conf"
    conf.write_text(made.stdout)
    assert "server 10.0.0.11:8000 max_fails=2" in made.stdout and "server 10.0.0.12:8000" in made.stdout
    assert "proxy_next_upstream error timeout" in made.stdout
    assert made.stdout.startswith(
        "user www-data;"
    )  # workers that can read a files folder readable by one group
    checked = subprocess.run(["nginx", "-t", "-c", str(conf)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_the_postgresql_pool_of_each_process_is_set_by_the_operator(settings):
    """Nodes × workers × connections must fit PostgreSQL's max_connections (docs/deploy.md)."""
    import pytest

    from portal.config import Settings
    from portal.db import make_engine

    if not settings.database_url.startswith("postgresql"):
        pytest.skip("a pool of PostgreSQL connections: the PostgreSQL run")
    loaded = Settings.load({"database_url": settings.database_url, "db_pool_size": 3, "db_max_overflow": 2})
    engine = make_engine(loaded.database_url, loaded.db_pool_size, loaded.db_max_overflow)
    assert (engine.pool.size(), engine.pool._max_overflow) == (3, 2)  # type: ignore[attr-defined]
    engine.dispose()

"""Production configuration rendered from the files in deploy/ (kept in the repo, used as
written by the CI test that starts nginx and gunicorn): see docs/deploy.md."""

from __future__ import annotations

from pathlib import Path

from . import PROJECT_ROOT
from .config import Settings

DEPLOY = PROJECT_ROOT / "deploy"


def nginx_server(settings: Settings, listen: str = "80", upstream: str | list[str] = "127.0.0.1:8000") -> str:
    """deploy/nginx-portal.conf with this instance's folders filled in; `upstream` may name
    several nodes (one gunicorn each), which nginx balances and fails over between."""
    text = (DEPLOY / "nginx-portal.conf").read_text(encoding="utf-8")
    nodes = [upstream] if isinstance(upstream, str) else list(upstream)
    servers = ";\n    server ".join(
        f"{n} max_fails=2 fail_timeout=10s" if len(nodes) > 1 else n for n in nodes
    )
    values = {
        "listen": listen,
        "upstream": servers,
        "static": str(Path(PROJECT_ROOT / "static").resolve()),
        "files": str(Path(settings.files_path).resolve()),
    }
    for key, value in values.items():
        text = text.replace("{{ " + key + " }}", value)
    return text


def complete_nginx(
    server_block: str,
    run_dir: str = "/run/portal-nginx",
    worker_connections: int = 1024,
    user: str | None = None,
) -> str:
    """A whole nginx.conf around the server block, for a machine without a distribution's
    nginx layout (no systemd, a container): `nginx -c <this file>`. Logs, pid and temporary
    files go to `run_dir`, which must exist and be writable by nginx. `user`: the account nginx's
    workers run as when it is started as root (without it, nginx's default `nobody`, which
    cannot read a files folder made readable to one group only, docs/deploy.md section 1)."""
    temp = " ".join(
        f"{kind}_temp_path {run_dir}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        (f"user {user};\n" if user else "")
        + f"worker_processes auto;\npid {run_dir}/nginx.pid;\nerror_log {run_dir}/error.log;\n"
        f"events {{ worker_connections {worker_connections}; }}\n"
        f"http {{\n    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n"
        f"    access_log {run_dir}/access.log;\n    {temp}\n\n{server_block}\n}}\n"
    )


def standalone_nginx(folder: Path, servers: str, worker_connections: int = 256) -> Path:
    """A whole nginx.conf around server blocks, with every path inside `folder`, for running
    Debian's nginx beside the portal on loopback (the deploy test, the benchmarks). As root,
    its workers run as root so they can read files in a private temp folder."""
    import os

    folder.mkdir(parents=True, exist_ok=True)
    temp = " ".join(
        f"{kind}_temp_path {folder}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = folder / "nginx.conf"
    conf.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"worker_processes 2; pid {folder}/nginx.pid; error_log {folder}/error.log; daemon off;\n"
        f"events {{ worker_connections {worker_connections}; }}\n"
        f"http {{ include /etc/nginx/mime.types; access_log off; {temp}\n{servers}\n}}\n"
    )
    return conf

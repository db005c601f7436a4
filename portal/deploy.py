"""Production configuration rendered from the files in deploy/ (kept in the repo, used as
written by the CI test that starts nginx and gunicorn): see docs/deploy.md."""
from __future__ import annotations

from pathlib import Path

from . import PROJECT_ROOT
from .config import Settings

DEPLOY = PROJECT_ROOT / "deploy"


def nginx_server(settings: Settings, listen: str = "80", upstream: str = "127.0.0.1:8000") -> str:
    """deploy/nginx-portal.conf with this instance's folders filled in."""
    text = (DEPLOY / "nginx-portal.conf").read_text(encoding="utf-8")
    values = {"listen": listen, "upstream": upstream, "static": str(Path(PROJECT_ROOT / "static").resolve()),
              "files": str(Path(settings.files_path).resolve())}
    for key, value in values.items():
        text = text.replace("{{ " + key + " }}", value)
    return text


def standalone_nginx(folder: Path, servers: str, worker_connections: int = 256) -> Path:
    """A whole nginx.conf around server blocks, with every path inside `folder`, for running
    Debian's nginx beside the portal on loopback (the deploy test, the benchmarks). As root,
    its workers run as root so they can read files in a private temp folder."""
    import os

    folder.mkdir(parents=True, exist_ok=True)
    temp = " ".join(f"{kind}_temp_path {folder}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = folder / "nginx.conf"
    conf.write_text(("user root;\n" if os.geteuid() == 0 else "")
                    + f"worker_processes 2; pid {folder}/nginx.pid; error_log {folder}/error.log; daemon off;\n"
                    f"events {{ worker_connections {worker_connections}; }}\n"
                    f"http {{ include /etc/nginx/mime.types; access_log off; {temp}\n{servers}\n}}\n")
    return conf

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

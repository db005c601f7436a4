"""Logging, configured once for every process of the portal: the web app (create_app), the
CLI (portal …) and gunicorn (its error and access logs, through gunicorn_config's
logconfig_dict). One line per record on stderr, in the portal's time zone, at the level of
PORTAL_LOG_LEVEL (INFO by default) — systemd's journal or the container runtime keeps it."""

from __future__ import annotations

import logging.config
import os

FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"


def config(level: str | None = None) -> dict:
    """The dictConfig of the portal's logging (also gunicorn's: its loggers propagate to root)."""
    level = (level or os.environ.get("PORTAL_LOG_LEVEL") or "INFO").upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"portal": {"format": FORMAT}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "portal", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
            "werkzeug": {"level": "WARNING" if level != "DEBUG" else "DEBUG"},
        },
    }


_configured = False


def configure(level: str | None = None) -> None:
    """Once per process (a second call changes nothing): tests and tools that set up their own
    logging first keep it."""
    global _configured
    if _configured or logging.getLogger().handlers:
        _configured = True
        return
    logging.config.dictConfig(config(level))
    _configured = True

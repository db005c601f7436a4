"""Small helpers shared by the views."""
from __future__ import annotations

from flask import current_app, g
from sqlalchemy.orm import Session

from .app import PortalContext


def portal() -> PortalContext:
    return current_app.extensions["portal"]


def db() -> Session:
    """One session per request, closed at teardown."""
    if "db" not in g:
        g.db = portal().sessions()
    return g.db

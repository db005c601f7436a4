"""Small helpers shared by the views."""
from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Response, current_app, flash, g, redirect, send_file, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as WerkzeugResponse

from .context import PortalContext


def portal() -> PortalContext:
    return current_app.extensions["portal"]


def db() -> Session:
    """One session per request, closed at teardown."""
    if "db" not in g:
        g.db = portal().sessions()
    return g.db


def send_stored_file(path: Path, **kwargs: Any) -> Response:
    """A stored file, already authorized by the caller: sent by the portal (send_file: Range,
    ETag, 304), or — with PORTAL_X_ACCEL_PREFIX behind nginx — handed to nginx with
    X-Accel-Redirect, so the bytes go out at nginx's speed from its internal location. nginx
    aliases the local files folder only: with an object store the portal sends local files
    (bundles, copies) itself."""
    prefix = portal().settings.x_accel_prefix
    root = portal().storage.root
    if not prefix or root is None:
        return send_file(path, **kwargs)
    relative = path.resolve().relative_to(root).as_posix()
    response = send_file(path, **kwargs)  # the headers (type, disposition, ETag) as the portal would send them
    response.direct_passthrough = False
    response.set_data(b"")
    response.headers["X-Accel-Redirect"] = prefix.rstrip("/") + "/" + quote(relative)
    for header in ("Content-Length", "Content-Range", "Accept-Ranges", "Last-Modified"):
        response.headers.pop(header, None)  # nginx sets them from the file itself
    response.status_code = 200
    return response


def back(url: str) -> str:
    """Where this request goes back to when a domain rule refuses it (portal/views/errors.py);
    without it, the page the form was on."""
    g.back = url
    return url


def tell(message: object, category: str = "message") -> None:
    """Show a message on the next page, in the reader's language (a flash keeps text only)."""
    flash(str(message), category)


def done(message: object = None, to: str | None = None) -> WerkzeugResponse:
    """The view's work succeeded: commit (mail queued in the transaction goes out after it),
    tell the person, and go on to `to` (default: where `back` points)."""
    db().commit()
    if message:
        tell(message)
    return redirect(to or g.get("back") or url_for("catalog.home"))

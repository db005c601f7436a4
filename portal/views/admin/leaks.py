"""A leaked licensed file traced to its grant (issue 21, item 5; Zhoucun measures Art. 15: no
passing to third parties). The bureau uploads the file; the answer is on the same page: the
grant(s) it names with the evidence of each layer, or that no grant matches
(licenses/fingerprint.py). Every check, readable or not, is in the audit trail with the file's
sha256 and its outcome."""

from __future__ import annotations

import hashlib

from flask import current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from licenses import fingerprint

from ...audit import record
from ...messages import Message, _, source
from ...web import db, portal
from . import bp


@bp.route("/leaks", methods=["GET", "POST"])
def leaks() -> ResponseReturnValue:
    if request.method == "GET":
        return _page()
    s = db()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _refused(_("请选择要核查的文件"))
    data = upload.stream.read(fingerprint.MAX_BYTES + 1)
    name = upload.filename[:200]
    try:
        finding = fingerprint.identify(s, portal().storage, data, name)
    except fingerprint.UnreadableFile as exc:
        s.rollback()
        message = exc.message if isinstance(exc.message, Message) else _("文件无法读取")
        _audit(name, hashlib.sha256(data).hexdigest(), "unreadable", unreadable=source(message))
        return _refused(message)
    _audit(
        name,
        finding.sha256,
        "named" if finding.named else "none",
        target=f"grant:{finding.named[0].grant.id}" if finding.named else None,
        named={c.grant.licence_number: c.confidence for c in finding.named},
        compared=finding.compared,
    )
    return _page(finding=finding, name=name)


def _audit(name: str, sha256: str, outcome: str, target: str | None = None, **detail: object) -> None:
    s = db()
    record(
        s,
        "leak_checked",
        actor=current_user,
        target=target,
        ip=request.remote_addr,
        file=name,
        sha256=sha256,
        outcome=outcome,
        **detail,
    )
    s.commit()


def _refused(message: Message) -> ResponseReturnValue:
    return _page(error=message), 400


def _page(**context: object) -> str:
    return render_template(
        "admin/leaks.html",
        **({"finding": None, "error": None} | context),
        limit_mb=_limit_mb(),
        max_columns=fingerprint.MAX_COLUMNS,
        max_cells=f"{fingerprint.MAX_CELLS:,}",
        xlsx_cells=f"{fingerprint.XLSX_CELLS:,}",
        cell_chars=fingerprint.CELL_CHARS,
    )


def _limit_mb() -> int:
    """The real limit: the smaller of the portal's request limit and the page's own."""
    request_limit = current_app.config.get("MAX_CONTENT_LENGTH") or fingerprint.MAX_BYTES
    return (min(int(request_limit), fingerprint.MAX_BYTES) - 64 * 1024) // (
        1024 * 1024
    )  # less the form's own bytes

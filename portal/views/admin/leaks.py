"""A leaked licensed file traced to its grant (issue 21, item 5; Zhoucun measures Art. 15: no
passing to third parties). The bureau uploads the file; the answer is on the same page: the
grant(s) it names with the evidence of each layer, or that no grant matches
(licenses/fingerprint.py). Every check is in the audit trail."""

from __future__ import annotations

from flask import render_template, request
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
        return render_template("admin/leaks.html", finding=None, error=None, limit_mb=_limit_mb())
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
        record(
            s,
            "leak_checked",
            actor=current_user,
            ip=request.remote_addr,
            file=name,
            unreadable=source(exc.message),
        )
        s.commit()
        return _refused(exc.message if isinstance(exc.message, Message) else _("文件无法读取"))
    record(
        s,
        "leak_checked",
        actor=current_user,
        target=f"grant:{finding.named[0].grant.id}" if finding.named else None,
        ip=request.remote_addr,
        file=name,
        sha256=finding.sha256,
        named={c.grant.licence_number: c.confidence for c in finding.named},
        compared=finding.compared,
    )
    s.commit()
    return render_template("admin/leaks.html", finding=finding, error=None, name=name, limit_mb=_limit_mb())


def _refused(message: Message) -> ResponseReturnValue:
    return render_template("admin/leaks.html", finding=None, error=message, limit_mb=_limit_mb()), 400


def _limit_mb() -> int:
    return fingerprint.MAX_BYTES // (1024 * 1024)

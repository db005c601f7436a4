"""The data sandbox on the web and the API: the holder's editor (schema and data dictionary
beside it), each query's page with its checked output, release requests and the output's
download; the department's and the bureau's oversight. Thin: the rules are in
licenses/sandbox.py and licenses/disclosure.py."""

from __future__ import annotations

from flask import Blueprint, Response, abort, g, jsonify, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from licenses import notify, sandbox_output
from licenses import sandbox as svc
from licenses.errors import LicenceError

from ..authz import Action, can, require, requires
from ..catalog.bundle import by_name
from ..forms import Form, checked
from ..messages import _
from ..models import Grant, SandboxQuery, SandboxRelease
from ..web import back, db, done, portal

bp = Blueprint("sandbox", __name__)


def _reasons() -> dict[str, object]:
    return {
        "small": _("记录数少于门槛"),
        "dominance": _("单一或两个主体占比过高"),
        "differencing": _("与先前发布的结果相减可推出少量记录"),
        "secondary": _("为防止由合计相减推出而一并隐藏"),
    }


def _hidden(q: SandboxQuery) -> dict[tuple[int, int], object]:
    """Each suppressed cell of the holder's output, with why, in words."""
    words = _reasons()
    return {(r, c): words.get(why, why) for r, c, why in (q.result or {}).get("suppressed", [])}


def _site() -> str:
    """The licence's address in an output: the portal's configured one, never a request's Host."""
    return portal().settings.base_url


def _grant(grant_id: int) -> Grant:
    grant = db().get(Grant, grant_id) or abort(404)
    require(current_user, Action.HOLD_GRANT, grant)
    return grant


def _own_query(query_id: int) -> SandboxQuery:
    query = db().get(SandboxQuery, query_id) or abort(404)
    if query.user_id != current_user.id:
        abort(404)
    return query


@bp.get("/sandbox")
@requires(Action.ACCOUNT)
def home() -> ResponseReturnValue:
    return render_template("sandbox/home.html", grants=svc.sandbox_grants(db(), current_user))


@bp.get("/sandbox/<int:grant_id>")
@requires(Action.HOLD_GRANT)
def editor(grant_id: int) -> ResponseReturnValue:
    grant = _grant(grant_id)
    svc.in_force(current_user, grant)
    tables = svc.tables(grant)
    if not tables:
        raise LicenceError(_("数据文件暂不可用"))
    chosen = next((t for t in tables if str(t.table.id) == request.args.get("table")), tables[0])
    fields = chosen.item.fields_approved
    columns = [c for c in chosen.table.schema if fields is None or c["name"] in fields]
    recent = [q for q in grant_queries(grant) if q.table_id == chosen.table.id][:20]
    info = svc.prepared(db(), portal().storage, chosen)
    db().commit()  # the preparing job, if one was queued
    return render_template(
        "sandbox/editor.html",
        grant=grant,
        tables=tables,
        chosen=chosen,
        columns=columns,
        kinds={c.name: c for c in info.columns} if info else None,
        dictionary=by_name(chosen.item.dataset),
        recent=recent,
        sql=(request.args.get("sql") or svc.example_sql(chosen, info))[:10_000],
    )


def grant_queries(grant: Grant) -> list[SandboxQuery]:
    from sqlalchemy import select

    return list(
        db().scalars(
            select(SandboxQuery).where(SandboxQuery.grant_id == grant.id).order_by(SandboxQuery.id.desc())
        )
    )


@bp.post("/sandbox/<int:grant_id>")
@requires(Action.HOLD_GRANT)
def submit(grant_id: int) -> ResponseReturnValue:
    checked(Form())
    grant = _grant(grant_id)
    back(url_for("sandbox.editor", grant_id=grant.id))
    st = svc.find_table(grant, request.form.get("table", type=int) or 0)
    query = svc.submit(db(), current_user, grant, st, request.form.get("sql", ""), ip=request.remote_addr)
    return done(to=url_for("sandbox.query", query_id=query.id))


@bp.get("/sandbox/queries/<int:query_id>")
@requires(Action.HOLD_GRANT)
def query(query_id: int) -> ResponseReturnValue:
    q = _own_query(query_id)
    return render_template(
        "sandbox/query.html", q=q, message=svc.message_of(q), full=svc.released_in_full(q), hidden=_hidden(q)
    )


@bp.post("/sandbox/queries/<int:query_id>/release")
@requires(Action.HOLD_GRANT)
def request_release(query_id: int) -> ResponseReturnValue:
    checked(Form())
    q = _own_query(query_id)
    back(url_for("sandbox.query", query_id=q.id))
    svc.request_release(db(), current_user, q, request.form.get("reason", ""), ip=request.remote_addr)
    notify.release_requested(db(), q, _site())
    return done(_("已提交发布申请，提供部门审核后会通知您。"))


@bp.get("/sandbox/queries/<int:query_id>/output.zip")
@requires(Action.HOLD_GRANT)
def output(query_id: int) -> ResponseReturnValue:
    q = _own_query(query_id)
    back(url_for("sandbox.query", query_id=q.id))
    body, name = sandbox_output.output_zip(db(), q, _site(), current_user, ip=request.remote_addr)
    db().commit()
    response = Response(body, mimetype="application/zip")
    response.headers.set("Content-Disposition", "attachment", filename=name)
    response.headers["Cache-Control"] = "private, no-store"
    return response


# ---------------------------------------------------------------- the department and the bureau


@bp.get("/console/sandbox")
@requires(Action.OVERSEE_SANDBOX)
def oversight() -> ResponseReturnValue:
    return render_template(
        "sandbox/oversight.html",
        releases=svc.pending_releases(db(), current_user),
        queries=svc.overseen_queries(db(), current_user),
    )


@bp.get("/console/sandbox/queries/<int:query_id>")
@requires(Action.OVERSEE_SANDBOX)
def overseen(query_id: int) -> ResponseReturnValue:
    q = db().get(SandboxQuery, query_id) or abort(404)
    require(current_user, Action.OVERSEE_SANDBOX, q)
    return render_template(
        "sandbox/overseen.html",
        q=q,
        message=svc.message_of(q),
        reasons=_reasons(),
        may_decide=can(current_user, Action.DECIDE_RELEASE, q.releases[0]) if q.releases else False,
    )


@bp.post("/console/sandbox/releases/<int:release_id>")
@requires(Action.DECIDE_RELEASE)
def decide(release_id: int) -> ResponseReturnValue:
    checked(Form())
    release = db().get(SandboxRelease, release_id) or abort(404)
    back(url_for("sandbox.overseen", query_id=release.query_id))
    approve = request.form.get("decision") == "approve"
    svc.decide_release(
        db(), current_user, release, approve, request.form.get("note", ""), ip=request.remote_addr
    )
    notify.release_decided(db(), release, _site())
    return done(_("已同意发布。") if approve else _("已拒绝发布。"), to=url_for("sandbox.oversight"))


# ------------------------------------------------------------------------------------ the API


def _as_json(q: SandboxQuery) -> dict:
    out: dict = {
        "id": q.id,
        "status": q.status,
        "sql": q.sql,
        "dataset": q.dataset.name,
        "licence_number": q.grant.licence_number,
        "message": str(svc.message_of(q) or "") or None,
        "url": url_for("sandbox.api_query", query_id=q.id, _external=True),
    }
    if q.status == "done" and q.result:
        out["result"] = q.result
        out["released_in_full"] = svc.released_in_full(q)
        out["download"] = url_for("sandbox.output", query_id=q.id, _external=True)
    return out


@bp.post("/api/sandbox/<int:grant_id>/queries")
@requires(Action.HOLD_GRANT)
def api_submit(grant_id: int) -> ResponseReturnValue:
    """`{"sql": "SELECT …", "table": <id, optional>}` with the holder's token: 202 and the
    query's address; the answer is there when the job is done."""
    grant = _grant(grant_id)
    if not g.get("signed_in_by_token"):
        abort(401, description=_("请使用 API 令牌（Authorization: Bearer …）；网页上请使用数据沙箱页面"))
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("sql"), str):
        raise LicenceError(_('请求体须为 JSON：{"sql": "SELECT …"}'))
    tables = svc.tables(grant)
    table_id = body.get("table") or (tables[0].table.id if tables else 0)
    st = svc.find_table(grant, table_id if isinstance(table_id, int) else 0)
    q = svc.submit(db(), current_user, grant, st, body["sql"], ip=request.remote_addr)
    db().commit()
    return jsonify(_as_json(q)), 202, {"Location": url_for("sandbox.api_query", query_id=q.id)}


@bp.get("/api/sandbox/queries/<int:query_id>")
@requires(Action.HOLD_GRANT)
def api_query(query_id: int) -> ResponseReturnValue:
    q = _own_query(query_id)
    return jsonify(_as_json(q))

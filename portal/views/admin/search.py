"""Search: the synonym list — the everyday words people type and the official words of the
catalog they stand for (portal/search/synonyms.py). A change reaches every process's searches
within seconds, this one's at once."""

from __future__ import annotations

from flask import abort, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from ...forms import SynonymForm, checked
from ...messages import _
from ...models import SearchSynonym
from ...search import synonyms
from ...web import back, db, done, portal
from . import bp


@bp.route("/synonyms", methods=["GET", "POST"])
def synonym_list() -> ResponseReturnValue:
    s = db()
    if request.method == "POST":
        back(url_for("admin.synonym_list"))
        form = checked(SynonymForm())
        row = synonyms.add(
            s,
            current_user,
            form.term.data,
            synonyms.split_expansions(form.expansions.data),
            ip=request.remote_addr,
        )
        response = done(
            _("已保存：搜索「%(term)s」也查找「%(words)s」。", term=row.term, words="、".join(row.expansions))
        )
        portal().synonyms.invalidate()
        return response
    q = request.args.get("q", "").strip()[:50]
    rows = synonyms.entries(s)
    if q:
        key = q.lower()
        rows = [r for r in rows if key in r.term or any(key in e for e in r.expansions or [])]
    return render_template("admin/synonyms.html", rows=rows, q=q, form=SynonymForm(formdata=None))


@bp.post("/synonyms/<int:synonym_id>/remove")
def remove_synonym(synonym_id: int) -> ResponseReturnValue:
    s = db()
    row = s.get(SearchSynonym, synonym_id) or abort(404)
    back(url_for("admin.synonym_list"))
    term = row.term
    synonyms.remove(s, current_user, row, ip=request.remote_addr)
    response = done(_("已删除同义词「%(term)s」。", term=term))
    portal().synonyms.invalidate()
    return response

"""The bureau's content: topics (专题) with their datasets picked from the public catalog,
pages (notices, guide, FAQ, terms, privacy) with their versions, and the review of showcase
entries (approve, or reject with reasons; the submitter is told)."""

from __future__ import annotations

from flask import abort, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from ... import content
from ... import feedback as feedback_svc
from ...forms import PageForm, ShowcaseReviewForm, TopicForm, checked
from ...labels import label
from ...messages import _
from ...models import PAGE_KINDS, Page, ShowcaseItem, Topic
from ...web import back, db, done
from . import bp


def _picked() -> list[str]:
    return [n for n in request.form.getlist("datasets") if n][: content.MAX_TOPIC_DATASETS]


@bp.get("/topics")
def topic_list() -> ResponseReturnValue:
    s = db()
    rows = content.all_topics(s)
    return render_template(
        "admin/topics.html", topics=rows, counts=content.public_count(s, [t.id for t in rows])
    )


@bp.route("/topics/new", methods=["GET", "POST"])
@bp.route("/topics/<int:topic_id>", methods=["GET", "POST"])
def topic_edit(topic_id: int | None = None) -> ResponseReturnValue:
    s = db()
    topic = (s.get(Topic, topic_id) or abort(404)) if topic_id is not None else None
    here = url_for("admin.topic_edit", topic_id=topic_id) if topic else url_for("admin.topic_edit")
    if request.method == "POST" and "find" not in request.form:
        back(here)
        form = checked(TopicForm())
        saved = content.save_topic(
            s,
            current_user,
            topic,
            content.TopicInput(
                slug=form.slug.data or "",
                title=form.title.data or "",
                title_en=form.title_en.data or "",
                description=form.description.data or "",
                description_en=form.description_en.data or "",
                position=form.position.data or 0,
                published=bool(form.published.data),
                datasets=_picked(),
            ),
        )
        return done(_("专题「%(title)s」已保存。", title=saved.title), to=url_for("admin.topic_list"))
    if request.method == "POST":  # the picker's search: the form again, as typed, with results
        form = TopicForm()
        names = _picked()
    else:
        form = TopicForm(formdata=None, obj=topic)
        names = [link.dataset.name for link in topic.links] if topic else []
    q = request.form.get("q", "").strip()[:100]
    return render_template(
        "admin/topic_edit.html",
        topic=topic,
        form=form,
        picked=content.datasets_named(s, names, public_only=False),
        results=content.find_public(s, q),
        q=q,
    )


@bp.get("/pages")
def page_list() -> ResponseReturnValue:
    return render_template("admin/pages.html", pages=content.all_pages(db()), kinds=PAGE_KINDS)


@bp.route("/pages/new", methods=["GET", "POST"])
@bp.route("/pages/<int:page_id>", methods=["GET", "POST"])
def page_edit(page_id: int | None = None) -> ResponseReturnValue:
    s = db()
    page = (s.get(Page, page_id) or abort(404)) if page_id is not None else None
    form = PageForm() if request.method == "POST" else PageForm(formdata=None, obj=page)
    form.kind.choices = [(k, label("page_kind", k)) for k in PAGE_KINDS]  # type: ignore[misc]  # a lazy Message label
    if request.method == "GET" and page is None:
        form.kind.data = request.args.get("kind", "notice")
    if request.method == "POST":
        back(url_for("admin.page_edit", page_id=page_id) if page else url_for("admin.page_edit"))
        checked(form)
        saved = content.save_page(
            s,
            current_user,
            page,
            content.PageInput(
                kind=form.kind.data or "",
                title=form.title.data or "",
                title_en=form.title_en.data or "",
                body=form.body.data or "",
                body_en=form.body_en.data or "",
                published=bool(form.published.data),
            ),
        )
        return done(
            _("页面「%(title)s」已保存。", title=saved.title), to=url_for("admin.page_edit", page_id=saved.id)
        )
    return render_template("admin/page_edit.html", page=page, form=form)


@bp.get("/showcase")
def showcase_review() -> ResponseReturnValue:
    s = db()
    reviewed = s.scalars(
        select(ShowcaseItem)
        .where(ShowcaseItem.status != "pending")
        .order_by(ShowcaseItem.id.desc())
        .limit(50)
    ).all()
    return render_template(
        "admin/showcase.html",
        pending=feedback_svc.pending_showcase(s),
        reviewed=reviewed,
        form=ShowcaseReviewForm(formdata=None),
    )


@bp.post("/showcase/<int:item_id>/<any(approve, reject):decision>")
def showcase_decide(item_id: int, decision: str) -> ResponseReturnValue:
    s = db()
    item = s.get(ShowcaseItem, item_id) or abort(404)
    back(url_for("admin.showcase_review"))
    reason = checked(ShowcaseReviewForm()).reason.data or ""
    feedback_svc.review_showcase(s, current_user, item, decision == "approve", reason)
    if decision == "approve":
        return done(_("「%(title)s」已通过审核，现已公开。", title=item.title))
    return done(_("「%(title)s」不予展示，已通知提交者。", title=item.title))

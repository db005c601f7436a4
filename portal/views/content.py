"""The bureau's content, public side: topics (专题), notices (公告) and the single pages (guide,
FAQ, terms, privacy), in the reader's language. Thin: the rules are in portal/content.py."""

from __future__ import annotations

from flask import Blueprint, abort, g, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from .. import content
from ..authz import public
from ..models import SINGLE_PAGES, Page, Topic
from ..page_cache import cacheable
from ..web import db

bp = Blueprint("content", __name__)


@bp.get("/topics")
@public
@cacheable
def topics() -> ResponseReturnValue:
    s = db()
    rows = content.published_topics(s)
    return render_template(
        "content/topics.html", topics=rows, counts=content.public_count(s, [t.id for t in rows])
    )


@bp.get("/topics/<slug>")
@public
@cacheable
def topic(slug: str) -> ResponseReturnValue:
    s = db()
    row = s.scalar(select(Topic).where(Topic.slug == slug, Topic.published.is_(True))) or abort(404)
    return render_template("content/topic.html", topic=row, datasets=content.topic_datasets(s, row))


@bp.get("/notices")
@public
@cacheable
def notices() -> ResponseReturnValue:
    return render_template("content/notices.html", notices=content.notices(db()))


@bp.get("/notices/<int:page_id>")
@public
@cacheable
def notice(page_id: int) -> ResponseReturnValue:
    page = db().get(Page, page_id)
    if page is None or page.kind != "notice" or not page.published:
        abort(404)
    return _page(page)


@bp.get("/pages/<kind>")
@public
@cacheable
def single(kind: str) -> ResponseReturnValue:
    if kind not in SINGLE_PAGES:
        abort(404)
    return _page(content.single_page(db(), kind) or abort(404))


def _page(page: Page) -> ResponseReturnValue:
    title, body, fell_back = content.in_language(page, g.get("lang", "zh"))
    return render_template("content/page.html", page=page, title=title, body=body, fell_back=fell_back)

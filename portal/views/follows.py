"""Follow and be told: follow buttons, the person's follows and favourites, how notices reach
them; Atom feeds of the newest datasets, of each department and domain, and of each dataset's
history. Thin: the rules are in portal/follows.py."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlsplit

from feedgen.feed import FeedGenerator
from flask import Blueprint, Response, abort, g, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal import catalog
from portal import follows as svc

from ..authz import Action, public, requires
from ..forms import Form, checked
from ..messages import _
from ..models import Dataset, Department, Distribution, Follow
from ..page_cache import cacheable
from ..web import back, db, done, kept_part, part_generation, portal

bp = Blueprint("follows", __name__)
FEED_ENTRIES = 50


def _back_to(kind: str, target: str) -> str:
    if kind == "dataset":
        return url_for("catalog.dataset", name=target)
    if kind == "department":
        return url_for("catalog.department", code=target)
    if kind == "domain":
        return url_for("catalog.domain", name=target)
    return f"{url_for('catalog.search')}?{target}"


@bp.post("/follow")
@requires(Action.FOLLOW)
def follow() -> ResponseReturnValue:
    checked(Form())
    kind, target = request.form.get("kind", ""), request.form.get("target", "")
    back(_back_to(kind, target) if kind in svc.FOLLOW_KINDS else url_for("follows.mine"))
    svc.follow(db(), current_user, kind, target, portal().search)
    return done(_("已关注。有变化时将通知您（可在“我的关注”中选择通知方式）。"))


@bp.post("/follows/<int:follow_id>/delete")
@requires(Action.FOLLOW)
def unfollow(follow_id: int) -> ResponseReturnValue:
    checked(Form())
    followed = db().get(Follow, follow_id) or abort(404)
    back(_local_back(url_for("follows.mine")))
    svc.unfollow(db(), current_user, followed)
    return done(_("已取消关注。"))


@bp.post("/dataset/<name>/favourite")
@requires(Action.FOLLOW)
def favourite(name: str) -> ResponseReturnValue:
    checked(Form())
    ds = catalog.get_public_dataset(db(), name) or abort(404)
    back(_local_back(url_for("catalog.dataset", name=name)))
    on = request.form.get("on") == "1"
    svc.set_favourite(db(), current_user, ds, on)
    return done(_("已收藏。") if on else _("已取消收藏。"))


def _local_back(default: str) -> str:
    """Back to the page the button was on, if it is a path of this site: no scheme, no host, no
    control character and no backslash (a browser reads a slash, a tab and a slash, or a slash
    and a backslash, as the start of another site's address)."""
    to = request.form.get("back", "")
    if not to.startswith("/") or any(c < " " or c == "\\" for c in to):
        return default
    parts = urlsplit(to)
    return default if parts.scheme or parts.netloc or to.startswith("//") else to


@bp.get("/account/follows")
@requires(Action.FOLLOW)
def mine() -> ResponseReturnValue:
    s = db()
    return render_template(
        "accounts/follows.html",
        follows=svc.follows_of(s, current_user),
        favourites=svc.favourites_of(s, current_user),
        choices=svc.MAIL_CHOICES,
    )


@bp.post("/account/follows/mail")
@requires(Action.FOLLOW)
def notice_mail() -> ResponseReturnValue:
    checked(Form())
    back(url_for("follows.mine"))
    svc.set_notice_mail(current_user, request.form.get("choice", ""))
    return done(_("已保存通知方式。"))


# ------------------------------------------------------------------------- Atom feeds


def _feed(title: str, link: str, self_link: str) -> FeedGenerator:
    feed = FeedGenerator()
    feed.id(self_link)
    feed.title(title)
    feed.link(href=link, rel="alternate")
    feed.link(href=self_link, rel="self")
    feed.language("zh-CN")
    feed.author({"name": str(_("东昌府区公共数据开放平台"))})
    return feed


def _when(instant: dt.datetime | None) -> dt.datetime:
    instant = instant or dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    return instant if instant.tzinfo else instant.replace(tzinfo=dt.UTC)


def _dataset_entries(feed: FeedGenerator, datasets: list[Dataset]) -> None:
    for ds in reversed(datasets):  # feedgen puts the last added first
        entry = feed.add_entry()
        link = url_for("catalog.dataset", name=ds.name, _external=True)
        entry.id(link)
        entry.title(ds.title)
        entry.link(href=link)
        entry.summary(ds.summary or ds.title)
        entry.updated(_when(ds.updated_at))
        entry.published(_when(ds.created_at))
        entry.category(term=ds.open_class or "", label=str(_class(ds.open_class)))
        entry.author({"name": ds.department.name})
    feed.updated(max([_when(d.updated_at) for d in datasets], default=_when(None)))


def _class(code: str | None) -> object:
    from ..labels import label

    return label("open_class", code or "")


def _atom(feed: FeedGenerator) -> Response:
    return Response(feed.atom_str(pretty=True), mimetype="application/atom+xml")


def _newest(**where: object) -> list[Dataset]:
    query = catalog.public_datasets().options(selectinload(Dataset.department))
    if "department_id" in where:
        query = query.where(Dataset.department_id == where["department_id"])
    if "domain" in where:
        query = query.where(Dataset.domain == where["domain"])
    return list(
        db().scalars(query.order_by(Dataset.updated_at.desc(), Dataset.id.desc()).limit(FEED_ENTRIES))
    )


@bp.get("/feeds/datasets.atom")
@public
@cacheable
def feed_newest() -> ResponseReturnValue:
    feed = _feed(
        str(_("东昌府区公共数据开放平台：最新数据集")),
        url_for("catalog.datasets", sort="newest", _external=True),
        request.url,
    )
    _dataset_entries(feed, _newest())
    return _atom(feed)


@bp.get("/feeds/department/<code>.atom")
@public
@cacheable
def feed_department(code: str) -> ResponseReturnValue:
    dept = db().scalar(select(Department).where(Department.code == code)) or abort(404)
    feed = _feed(
        str(_("%(name)s：最新数据集", name=dept.name)),
        url_for("catalog.department", code=code, _external=True),
        request.url,
    )
    _dataset_entries(feed, _newest(department_id=dept.id))
    return _atom(feed)


@bp.get("/feeds/domain/<name>.atom")
@public
@cacheable
def feed_domain(name: str) -> ResponseReturnValue:
    if not catalog.domain_is_public(db(), name):
        abort(404)
    feed = _feed(
        str(_("%(name)s领域：最新数据集", name=name)),
        url_for("catalog.domain", name=name, _external=True),
        request.url,
    )
    _dataset_entries(feed, _newest(domain=name))
    return _atom(feed)


@bp.get("/dataset/<name>/history.atom")
@public
@cacheable
def feed_history(name: str) -> ResponseReturnValue:
    """A dataset's versions, newest first: each file as it was published, with its date."""
    ds = catalog.get_public_dataset(db(), name) or abort(404)
    link = url_for("catalog.dataset", name=name, _external=True)
    feed = _feed(str(_("「%(title)s」更新记录", title=ds.title)), link, request.url)
    versions: list[Distribution] = catalog.history(ds)[:FEED_ENTRIES]
    for version in reversed(versions):
        entry = feed.add_entry()
        entry.id(f"{link}#version-{version.id}")
        entry.title(str(_("%(file)s（%(state)s）", file=version.source_name, state=_version_state(version))))
        entry.link(href=f"{link}#history")
        entry.updated(_when(version.superseded_at or version.fetched_at))
        entry.published(_when(version.fetched_at))
        entry.summary(
            str(_("采集于 %(when)s，SHA-256 %(sha)s", when=_local(version.fetched_at), sha=version.sha256))
        )
    feed.updated(max([_when(v.fetched_at) for v in versions], default=_when(ds.updated_at)))
    return _atom(feed)


def _version_state(version: Distribution) -> object:
    return _("已被新版本替代") if version.superseded_at else _("当前版本")


def _local(instant: dt.datetime) -> str:
    from .. import clock

    return f"{clock.local(instant):%Y-%m-%d %H:%M}"


@dataclass(frozen=True)
class Followed:
    """A follow as its button needs it (templates/_follow.html: the unfollow link)."""

    id: int


@bp.app_context_processor
def _follow_helpers() -> dict:
    """What the follow buttons ask (templates/_follow.html): only for a signed-in reader."""

    def marks() -> svc.ReaderMarks:
        # Once per request, and kept per person at the generation of public changes (a follow
        # or a favourite moves it): a page with follow buttons reads no row for them.
        if "reader_marks" not in g:
            g.reader_marks = kept_part(
                part_generation(),
                ("reader marks", current_user.id),
                lambda: svc.marks_of(db(), current_user),
                size=lambda m: 256 + 256 * len(m.follows) + 32 * len(m.favourites),
            )
        return g.reader_marks

    def follow_of(kind: str, target: str) -> Followed | None:
        found = marks().follow_id(kind, target) if current_user.is_authenticated else None
        return Followed(found) if found is not None else None

    def is_favourite(ds: Dataset) -> bool:
        return current_user.is_authenticated and ds.id in marks().favourites

    def saved_search(args: object) -> str:
        return svc.saved_search(args.to_dict(flat=False))  # type: ignore[attr-defined]  # a MultiDict

    return {"follow_of": follow_of, "is_favourite": is_favourite, "saved_search": saved_search}

"""Follow and be told (issue 20, item 1).

A person follows a dataset, a department, a domain or a saved search. What changes reaches
them as a notice on /account/notices and, by their choice, a mail at once, a weekly digest or
no mail:
- a followed dataset: a new version of its files, a change of its columns, a new open class,
  leaving public view (paused, or no longer open) and coming back, an error report answered;
- a followed department, domain or saved search: a public dataset it did not have before.

Changes are found by comparing, not by hooking every path that makes them: a dataset's
followers were last told its state (FollowedState); the `follows` job compares the state now
with it, tells, and records the new state. So a harvest, a console upload, a bureau's decision
and a reclassification all reach followers the same way. The job is queued by any flush that
touches a dataset, a file version or an answer to an error report (one queued at a time), and
once an hour as a catch-up (a saved search depends on the search index, which follows the
database within a sync).

A notice never says more than the follower could see: a dataset leaving public view is named by
the title the follower saw, with no reason beyond "paused" or "no longer open".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode

from sqlalchemy import event, func, inspect, select
from sqlalchemy.orm import Session, UOWTransaction

from portal import clock, mail
from portal.authz import Action, require
from portal.catalog import domain_is_public, public_datasets
from portal.errors import DomainError
from portal.labels import label
from portal.messages import Message, _, bilingual
from portal.models import (
    FOLLOW_KINDS,
    PUBLIC_CLASSES,
    Dataset,
    Department,
    Distribution,
    ErrorReport,
    Favourite,
    Follow,
    FollowedState,
    Job,
    OutboxMessage,
    User,
    utcnow,
)
from portal.models.jobs import QUEUED
from portal.search import FACETS, SearchBackend, SearchQuery

MAIL_CHOICES = ("instant", "weekly", "off")
MOST_FOLLOWS = 200
SEARCH_MATCHES = 500  # a saved search is watched over its newest matches


class FollowError(DomainError):
    """A message for the person following."""


# ------------------------------------------------------------------------- saved searches


def saved_search(args: dict[str, list[str]]) -> str:
    """A search as a canonical query string (words and filters, sorted): two ways of typing the
    same search are one follow. Paging and sorting are not part of what is followed."""
    kept: list[tuple[str, str]] = []
    q = " ".join((args.get("q") or [""])[0].split())[:200]
    if q:
        kept.append(("q", q))
    for facet in FACETS:
        kept += [(facet, v[:200]) for v in sorted(set(args.get(facet) or [])) if v]
    return urlencode(kept)


def search_label(target: str) -> str:
    args = parse_qs(target)
    parts = [(args.get("q") or [""])[0]] + [v for f in FACETS for v in args.get(f, [])]
    return " · ".join(p for p in parts if p)[:500]


def _search_query(target: str) -> SearchQuery:
    args = parse_qs(target)
    return SearchQuery(
        q=(args.get("q") or [""])[0],
        filters={f: args[f] for f in FACETS if args.get(f)},
        sort="newest",
        start=0,
        rows=SEARCH_MATCHES,
    )


# ------------------------------------------------------------------------- following


def _public_ids(session: Session, kind: str, target: str, search: SearchBackend | None) -> list[int]:
    """The public datasets a department, domain or saved search has now."""
    query = public_datasets().with_only_columns(Dataset.id)
    if kind == "department":
        query = query.join(Department, Department.id == Dataset.department_id).where(
            Department.code == target
        )
    elif kind == "domain":
        query = query.where(Dataset.domain == target)
    else:
        if search is None:
            return []
        names = [h.name for h in search.search(_search_query(target)).hits]
        query = query.where(Dataset.name.in_(names))
    return sorted(session.scalars(query))


def _describe(session: Session, kind: str, target: str) -> str:
    """What is followed, in words; refuses what cannot be followed (not public, no such thing)."""
    if kind == "dataset":
        ds = session.scalar(public_datasets().where(Dataset.name == target))
        if ds is None:
            raise FollowError(_("数据不存在"))
        return ds.title
    if kind == "department":
        dept = session.scalar(select(Department).where(Department.code == target))
        if dept is None:
            raise FollowError(_("没有这个部门"))
        return dept.name
    if kind == "domain":
        if not domain_is_public(session, target):
            raise FollowError(_("没有这个领域"))
        return target
    if not target:
        raise FollowError(_("请先输入关键词或选择筛选条件，再关注这个搜索"))
    return search_label(target)


def follow(
    session: Session, user: User, kind: str, target: str, search: SearchBackend | None = None
) -> Follow:
    """Follow something; following it again is the same follow."""
    require(user, Action.FOLLOW)
    if kind not in FOLLOW_KINDS:
        raise FollowError(_("无法关注"))
    target = saved_search(parse_qs(target)) if kind == "search" else target.strip()
    if len(target) > 500:
        raise FollowError(_("这个搜索太长，无法关注，请减少关键词或筛选条件"))
    existing = session.scalar(
        select(Follow).where(Follow.user_id == user.id, Follow.kind == kind, Follow.target == target)
    )
    if existing is not None:
        return existing
    count = session.scalar(select(func.count()).select_from(Follow).where(Follow.user_id == user.id))
    if (count or 0) >= MOST_FOLLOWS:
        raise FollowError(_("最多关注 %(n)s 项，请先取消一些关注", n=MOST_FOLLOWS))
    followed = Follow(user_id=user.id, kind=kind, target=target, label=_describe(session, kind, target))
    if kind == "dataset":
        ds = session.scalar(select(Dataset).where(Dataset.name == target))
        if ds is not None and session.get(FollowedState, ds.id) is None:
            session.add(_snapshot(session, ds))
    else:
        followed.known = _public_ids(session, kind, target, search)
    session.add(followed)
    return followed


def unfollow(session: Session, user: User, followed: Follow) -> None:
    require(user, Action.FOLLOW, followed)
    session.delete(followed)


def following(session: Session, user: User, kind: str, target: str) -> Follow | None:
    if kind == "search":
        target = saved_search(parse_qs(target))
    return session.scalar(
        select(Follow).where(Follow.user_id == user.id, Follow.kind == kind, Follow.target == target)
    )


@dataclass(frozen=True)
class ReaderMarks:
    """What a person follows ((kind, target) → the follow's id) and keeps as favourites (dataset
    ids): the follow and favourite buttons of every page they see, read in one go."""

    follows: dict[tuple[str, str], int]
    favourites: frozenset[int]

    def follow_id(self, kind: str, target: str) -> int | None:
        if kind == "search":
            target = saved_search(parse_qs(target))
        return self.follows.get((kind, target))


def marks_of(session: Session, user: User) -> ReaderMarks:
    follows = session.execute(select(Follow.kind, Follow.target, Follow.id).where(Follow.user_id == user.id))
    favourites = session.scalars(select(Favourite.dataset_id).where(Favourite.user_id == user.id))
    return ReaderMarks({(kind, target): id_ for kind, target, id_ in follows}, frozenset(favourites))


def follows_of(session: Session, user: User) -> list[Follow]:
    return list(
        session.scalars(
            select(Follow).where(Follow.user_id == user.id).order_by(Follow.kind, Follow.id.desc())
        )
    )


def set_favourite(session: Session, user: User, ds: Dataset, on: bool) -> None:
    require(user, Action.FOLLOW)
    kept = session.get(Favourite, (user.id, ds.id))
    if on and kept is None:
        if not ds.is_public:
            raise FollowError(_("数据不存在"))
        session.add(Favourite(user_id=user.id, dataset_id=ds.id))
    elif not on and kept is not None:
        session.delete(kept)


def favourites_of(session: Session, user: User) -> list[Dataset]:
    """The person's favourites that are public now (one out of view comes back with it)."""
    return list(
        session.scalars(
            public_datasets()
            .join(Favourite, Favourite.dataset_id == Dataset.id)
            .where(Favourite.user_id == user.id)
            .order_by(Favourite.created_at.desc())
        )
    )


def is_favourite(session: Session, user: User, ds: Dataset) -> bool:
    return session.get(Favourite, (user.id, ds.id)) is not None


def set_notice_mail(user: User, choice: str) -> None:
    require(user, Action.FOLLOW)
    if choice not in MAIL_CHOICES:
        raise FollowError(_("无法识别的选项"))
    user.notice_mail = choice


# ------------------------------------------------------------------------- telling


def _snapshot(session: Session, ds: Dataset) -> FollowedState:
    answered = session.scalar(
        select(func.count())
        .select_from(ErrorReport)
        .where(ErrorReport.dataset_id == ds.id, ErrorReport.answered_at.is_not(None))
    )
    public = ds.is_public
    return FollowedState(
        dataset_id=ds.id,
        public=public,
        open_class=ds.open_class,
        files_fingerprint=ds.files_fingerprint,
        columns=_columns(ds) if public else [],
        answered_reports=answered or 0,
        checked_at=utcnow(),
    )


def _columns(ds: Dataset) -> list[list[str]]:
    return [
        [t.sheet or "", str(c.get("name")), str(c.get("type", ""))]
        for t in ds.served_tables
        for c in t.schema
        if isinstance(c, dict)
    ]


def _class_words(code: str | None) -> Message | str:
    return label("open_class", code or "")


def _dataset_events(was: FollowedState, now: FollowedState, title: str) -> list[Message]:
    """What followers should hear, from what they were last told and the state now."""
    if was.public and not now.public:
        if now.open_class not in PUBLIC_CLASSES:
            return [_("数据集「%(title)s」已不再开放", title=title)]
        return [_("数据集「%(title)s」暂停公开，处理完成后将恢复", title=title)]
    if not now.public:
        return []
    events: list[Message] = []
    if not was.public:
        events.append(_("数据集「%(title)s」已恢复公开", title=title))
    if was.public and was.open_class != now.open_class:
        events.append(
            _(
                "数据集「%(title)s」的开放类型由「%(was)s」改为「%(now)s」",
                title=title,
                was=_class_words(was.open_class),
                now=_class_words(now.open_class),
            )
        )
    if was.files_fingerprint != now.files_fingerprint and now.files_fingerprint:
        events.append(_("数据集「%(title)s」发布了新版本数据", title=title))
    if was.public and was.columns != now.columns:
        events.append(_columns_changed(was, now, title))
    if now.answered_reports > was.answered_reports:
        events.append(_("数据集「%(title)s」有纠错得到答复，答复公开在数据集页面", title=title))
    return events


def _columns_changed(was: FollowedState, now: FollowedState, title: str) -> Message:
    before = {c[1] for c in was.columns}
    after = {c[1] for c in now.columns}
    added, removed = sorted(after - before), sorted(before - after)
    return _(
        "数据集「%(title)s」的字段有变化：新增 %(added)s；删除 %(removed)s；其余字段类型可能有变化",
        title=title,
        added="、".join(added) or "—",
        removed="、".join(removed) or "—",
    )


def _tell(session: Session, user: User, subject: str, body: str) -> int:
    """A notice, and a mail if the person chose mail at once. Written in the transaction that
    records what followers were told (FollowedState, Follow.known): a job that dies before it
    commits tells nothing and runs again; one that committed is not repeated."""
    if user.notice_mail == "instant":
        mail.send(session, user.email, subject[:300], body)
    else:
        mail.notice(session, user.email, subject[:300], body)
    return 1


def _body(user: User, messages: list[Message], link: str) -> str:
    changes = "\n\n".join(bilingual(m) for m in messages)
    why = bilingual(_("您关注了它。在“我的关注”中可取消关注或选择通知方式。"))
    return f"{user.name}，您好：\n\n{changes}\n\n{link}\n\n{why}\n"


def _check_dataset(session: Session, ds: Dataset, base_url: str) -> int:
    was = session.get(FollowedState, ds.id, with_for_update=True)
    now = _snapshot(session, ds)
    if was is None:
        session.add(now)
        return 0
    followers = session.scalars(
        select(Follow).where(Follow.kind == "dataset", Follow.target == ds.name)
    ).all()
    told = 0
    title = followers[0].label if followers else ds.title
    messages = _dataset_events(was, now, title)
    for f in followers if messages else ():
        user = session.get_one(User, f.user_id)
        body = _body(user, messages, f"{base_url}/dataset/{ds.name}")
        told += _tell(session, user, f"关注的数据集有变化 · {title}", body)
    for column in ("public", "open_class", "files_fingerprint", "columns", "answered_reports", "checked_at"):
        setattr(was, column, getattr(now, column))
    return told


def _check_group(session: Session, followed: Follow, search: SearchBackend | None, base_url: str) -> int:
    if followed.kind == "search" and search is None:
        return 0
    ids = _public_ids(session, followed.kind, followed.target, search)
    new = sorted(set(ids) - set(followed.known or []))
    followed.known = ids
    if not new:
        return 0
    datasets = session.scalars(select(Dataset).where(Dataset.id.in_(new)).order_by(Dataset.id)).all()
    user = session.get_one(User, followed.user_id)
    lines = "\n".join(f"- {d.title}：{base_url}/dataset/{d.name}" for d in datasets[:50])
    message = _("您关注的「%(what)s」有 %(n)s 个新数据集", what=followed.label, n=len(datasets))
    body = f"{user.name}，您好：\n\n{bilingual(message)}\n\n{lines}\n"
    return _tell(session, user, f"关注的新数据集 · {followed.label}", body)


def check(session: Session, search: SearchBackend | None, base_url: str) -> dict:
    """The `follows` job: tell followers what changed since they were last told."""
    followed = session.scalars(
        select(Dataset).where(Dataset.name.in_(select(Follow.target).where(Follow.kind == "dataset")))
    ).all()
    told = sum(_check_dataset(session, ds, base_url) for ds in followed)
    for f in session.scalars(select(Follow).where(Follow.kind != "dataset")).all():
        told += _check_group(session, f, search, base_url)
    return {"datasets": len(followed), "notices": told}


def digest(session: Session, now: dt.datetime) -> int:
    """The weekly digest: one mail per person who chose it, with the notices since the last."""
    sent = 0
    for user in session.scalars(select(User).where(User.notice_mail == "weekly")).all():
        waiting = session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.to == user.email,
                OutboxMessage.channel == "notice",
                OutboxMessage.digested_at.is_(None),
            )
            .order_by(OutboxMessage.id)
        ).all()
        if not waiting:
            continue
        items = "\n\n".join(
            f"{clock.local(m.created_at):%Y-%m-%d %H:%M} {m.subject}\n{m.body}" for m in waiting
        )
        mail.send(
            session,
            user.email,
            f"关注动态周报 · {clock.local(now):%Y-%m-%d}",
            f"{user.name}，您好：\n\n{bilingual(_('本周您关注的内容有 %(n)s 条动态', n=len(waiting)))}\n\n{items}",
            channel="mail",
        )
        for m in waiting:
            m.digested_at = now
        sent += 1
    return sent


# ------------------------------------------------------------------------- the job's trigger


def _touches_followed(session: Session) -> bool:
    for obj in session.dirty:
        state = inspect(obj)
        if isinstance(obj, Dataset) and any(
            state.attrs[a].history.has_changes() for a in ("status", "open_class", "files_fingerprint")
        ):
            return True
        if isinstance(obj, ErrorReport) and state.attrs.answered_at.history.has_changes():
            return True
    return any(isinstance(obj, Dataset | Distribution) for obj in session.new)


def queue_check(session: Session, key: str | None = None) -> None:
    """Queue a `follows` job unless one is waiting to run (it will see this change too)."""
    with session.no_autoflush:
        if session.scalar(select(Follow.id).limit(1)) is None:
            return
        if key is None and session.scalar(
            select(Job.id).where(Job.kind == "follows", Job.state == QUEUED).limit(1)
        ):
            return
        if key is not None and session.scalar(select(Job.id).where(Job.key == key).limit(1)):
            return
    session.add(Job(kind="follows", payload={}, key=key, max_attempts=3, requested_by="follows"))


@event.listens_for(Session, "before_flush")
def _changes_reach_followers(session: Session, _context: UOWTransaction, _instances: object) -> None:
    if any(isinstance(obj, Job) and obj.kind == "follows" for obj in session.new):
        return
    if _touches_followed(session):
        queue_check(session)

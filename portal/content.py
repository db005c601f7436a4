"""The bureau's content, as rules: topics (专题) that gather datasets, shown with only the
datasets public at the moment of reading; pages it writes (notices, guide, FAQ, terms,
privacy) in both languages, in Markdown without raw HTML, every saved version kept and
audited; and what a dataset page shows beside the data — related datasets and the approved
showcase entries that use it."""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import rjieba
from markdown_it import MarkdownIt
from markupsafe import Markup
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from .audit import record
from .authz import Action, require
from .catalog import public_datasets
from .errors import DomainError
from .messages import Message, _
from .models import (
    PAGE_KINDS,
    SINGLE_PAGES,
    Dataset,
    FieldDescription,
    Page,
    PageVersion,
    ShowcaseDataset,
    ShowcaseItem,
    Topic,
    TopicDataset,
    User,
    utcnow,
)

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,58}[a-z0-9]$")
RELATED = 6
MAX_TOPIC_DATASETS = 200


class ContentError(DomainError):
    """A topic or a page the bureau cannot save as written."""


# -- Markdown ------------------------------------------------------------------------------

_LINK = re.compile(r"^(https?://[^\s/]|/(?![/\\])|#)", re.IGNORECASE)


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.disable("image")  # no pictures fetched from elsewhere on the portal's pages
    md.validateLink = lambda url: bool(_LINK.match(url.strip()))  # type: ignore[method-assign]  # markdown-it's hook
    return md


_MD = _markdown()


def render_markdown(text: str | None) -> Markup:
    """The bureau's Markdown as HTML: raw HTML is shown as text, links go to http(s) or a page
    of the portal only (anything else stays text)."""
    return Markup(_MD.render(text or ""))  # markdown-it escapes all text (html off)


# -- Topics --------------------------------------------------------------------------------


@dataclass
class TopicInput:
    slug: str
    title: str
    title_en: str
    description: str
    description_en: str
    position: int
    published: bool
    datasets: list[str]


def published_topics(session: Session) -> list[Topic]:
    return list(
        session.scalars(select(Topic).where(Topic.published.is_(True)).order_by(Topic.position, Topic.id))
    )


def all_topics(session: Session) -> list[Topic]:
    return list(session.scalars(select(Topic).order_by(Topic.position, Topic.id)))


def topic_datasets(session: Session, topic: Topic) -> list[Dataset]:
    """The topic's datasets that are public now, in the bureau's order: a dataset withdrawn,
    held or no longer open leaves the page by itself, and comes back if it is public again."""
    return list(
        session.scalars(
            public_datasets()
            .join(TopicDataset, TopicDataset.dataset_id == Dataset.id)
            .where(TopicDataset.topic_id == topic.id)
            .order_by(TopicDataset.position, Dataset.id)
            .options(selectinload(Dataset.department))
        )
    )


def public_count(session: Session, topic_ids: list[int]) -> dict[int, int]:
    if not topic_ids:
        return {}
    rows = session.execute(
        public_datasets()
        .join(TopicDataset, TopicDataset.dataset_id == Dataset.id)
        .where(TopicDataset.topic_id.in_(topic_ids))
        .with_only_columns(TopicDataset.topic_id, func.count())
        .group_by(TopicDataset.topic_id)
    )
    return {topic_id: n for topic_id, n in rows}


def find_public(session: Session, q: str, limit: int = 30) -> list[Dataset]:
    """Public datasets whose title, name or department matches: the picker's results."""
    q = (q or "").strip()[:100]
    if not q:
        return []
    like = f"%{q.replace('%', '').replace('_', '')}%"
    return list(
        session.scalars(
            public_datasets()
            .where(or_(Dataset.title.ilike(like), Dataset.name.ilike(like), Dataset.summary.ilike(like)))
            .order_by(Dataset.title)
            .limit(limit)
            .options(selectinload(Dataset.department))
        )
    )


def datasets_named(session: Session, names: list[str], public_only: bool = True) -> list[Dataset]:
    wanted = list(dict.fromkeys(n.strip() for n in names if n and n.strip()))[:MAX_TOPIC_DATASETS]
    if not wanted:
        return []
    query = public_datasets() if public_only else select(Dataset)
    found = {d.name: d for d in session.scalars(query.where(Dataset.name.in_(wanted)))}
    return [found[n] for n in wanted if n in found]


def _text(value: str | None, least: int, most: int, message: Message) -> str:
    value = (value or "").strip()
    if not least <= len(value) <= most:
        raise ContentError(message)
    return value


def save_topic(session: Session, user: User, topic: Topic | None, data: TopicInput) -> Topic:
    """Create or change a topic. New datasets are picked from the public catalog; those the
    topic already had stay linked even while not public (they are not shown meanwhile)."""
    require(user, Action.BUREAU)
    slug = (data.slug or "").strip().lower()
    if not SLUG.match(slug):
        raise ContentError(_("标识须为 3–60 个小写字母、数字或连字符"))
    clash = session.scalar(select(Topic.id).where(Topic.slug == slug))
    if clash is not None and (topic is None or clash != topic.id):
        raise ContentError(_("标识「%(slug)s」已被其他专题使用", slug=slug))
    if topic is None:
        topic = Topic()
        session.add(topic)
    topic.slug = slug
    topic.title = _text(data.title, 2, 200, _("请填写专题名称（2–200 字）"))
    topic.title_en = (data.title_en or "").strip()[:200] or None
    topic.description = (data.description or "").strip()[:5000]
    topic.description_en = (data.description_en or "").strip()[:5000] or None
    topic.position, topic.published, topic.updated_at = data.position, data.published, utcnow()
    _link_datasets(session, topic, data.datasets)
    session.flush()
    record(
        session,
        "topic_saved",
        actor=user,
        target=f"topic:{slug}",
        published=topic.published,
        datasets=[link.dataset_id for link in topic.links],
    )
    return topic


def _link_datasets(session: Session, topic: Topic, names: list[str]) -> None:
    had = {link.dataset.name: link.dataset for link in topic.links}
    public = {d.name: d for d in datasets_named(session, names)}
    wanted = [n for n in dict.fromkeys(names) if n in public or n in had][:MAX_TOPIC_DATASETS]
    unknown = [n for n in names if n and n not in public and n not in had]
    if unknown:
        raise ContentError(_("以下数据集不存在或未公开：%(names)s", names="、".join(unknown[:5])))
    topic.links = [
        TopicDataset(dataset_id=(public.get(n) or had[n]).id, position=i) for i, n in enumerate(wanted)
    ]


# -- Pages ---------------------------------------------------------------------------------


@dataclass
class PageInput:
    kind: str
    title: str
    title_en: str
    body: str
    body_en: str
    published: bool


def single_page(session: Session, kind: str) -> Page | None:
    return session.scalar(
        select(Page).where(Page.kind == kind, Page.published.is_(True)).order_by(Page.id).limit(1)
    )


def notices(session: Session, limit: int = 50) -> list[Page]:
    return list(
        session.scalars(
            select(Page)
            .where(Page.kind == "notice", Page.published.is_(True))
            .order_by(Page.published_at.desc(), Page.id.desc())
            .limit(limit)
        )
    )


def latest_notice(session: Session) -> Page | None:
    found = notices(session, limit=1)
    return found[0] if found else None


def all_pages(session: Session) -> list[Page]:
    return list(session.scalars(select(Page).order_by(Page.kind, Page.published_at.desc(), Page.id.desc())))


def save_page(session: Session, user: User, page: Page | None, data: PageInput) -> Page:
    """Create or change a page; every save is kept as a version and audited."""
    require(user, Action.BUREAU)
    kind = page.kind if page is not None else data.kind
    if kind not in PAGE_KINDS:
        raise ContentError(_("请选择页面类型"))
    if page is None and kind in SINGLE_PAGES:
        existing = session.scalar(select(Page.id).where(Page.kind == kind))
        if existing is not None:
            raise ContentError(_("该页面已存在，请编辑现有页面"))
    if page is None:
        page = Page(kind=kind, published_at=utcnow())
        session.add(page)
    page.title = _text(data.title, 2, 200, _("请填写中文标题（2–200 字）"))
    page.title_en = (data.title_en or "").strip()[:200] or None
    page.body = _text(data.body, 2, 50000, _("请填写中文正文"))
    page.body_en = (data.body_en or "").strip()[:50000] or None
    page.published, page.updated_at, page.updated_by_id = data.published, utcnow(), user.id
    page.versions.append(
        PageVersion(
            title=page.title,
            title_en=page.title_en,
            body=page.body,
            body_en=page.body_en,
            edited_by_id=user.id,
        )
    )
    session.flush()
    record(session, "page_saved", actor=user, target=f"page:{page.id}", kind=kind, published=page.published)
    return page


def in_language(page: Page, lang: str) -> tuple[str, Markup, bool]:
    """The page's title and body in the reader's language, and whether it fell back to
    Chinese because the English is missing."""
    if lang == "en":
        if page.title_en and page.body_en:
            return page.title_en, render_markdown(page.body_en), False
        return page.title, render_markdown(page.body), True
    return page.title, render_markdown(page.body), False


# -- Beside a dataset ----------------------------------------------------------------------

# Words nearly every title of the catalog holds: they relate nothing.
_COMMON = frozenset(
    {"东昌府区", "东昌府", "东昌", "聊城市", "聊城", "数据", "信息", "名录", "目录", "情况", "统计", "列表"}
)


def _words(title: str) -> set[str]:
    return {w for w in rjieba.cut(title or "") if len(w) >= 2 and w not in _COMMON and not w.isdigit()}


# The ranking of each dataset's neighbours, per process: (database, dataset, its creation) →
# (computed at, ids best first). Only ids are kept: each render asks which of them are public
# now, so a dataset withdrawn a second ago is never shown; a new neighbour appears within
# RANKING_SECONDS.
RANKING_SECONDS = 600
RANKING_LIMIT = 5000
_rankings: dict[tuple[str, int, str], tuple[float, list[int]]] = {}


def related_datasets(session: Session, ds: Dataset, limit: int = RELATED) -> list[Dataset]:
    """Up to `limit` public datasets near this one, scored by the same domain (3), the same
    department (2), each shared column name (1.5, up to 4) and each shared title word (2).
    The ranking is computed with bounded queries (at most 200 candidates) and kept per
    process; a render costs one query for the few ids ranked first."""
    bind = session.get_bind()
    key = (str(bind.engine.url), ds.id, str(ds.created_at))
    kept = _rankings.get(key)
    if kept is None or time.monotonic() - kept[0] > RANKING_SECONDS:
        if len(_rankings) >= RANKING_LIMIT:
            _rankings.clear()
        kept = _rankings[key] = (time.monotonic(), _rank(session, ds))
    ranked = kept[1][: limit * 3]
    if not ranked:
        return []
    found = {
        d.id: d for d in session.scalars(public_datasets().where(Dataset.id.in_(ranked), Dataset.id != ds.id))
    }
    return [found[i] for i in ranked if i in found][:limit]


def _rank(session: Session, ds: Dataset) -> list[int]:
    words = _words(ds.title)
    columns = set(
        session.scalars(select(FieldDescription.name).where(FieldDescription.dataset_id == ds.id).limit(50))
    ) | {c.get("name") for t in ds.served_tables for c in (t.schema or []) if c.get("name")}
    base = public_datasets().with_only_columns(
        Dataset.id, Dataset.title, Dataset.domain, Dataset.department_id
    )
    near = [Dataset.department_id == ds.department_id]
    if ds.domain:
        near.append(Dataset.domain == ds.domain)
    near += [Dataset.title.contains(w) for w in sorted(words, key=len, reverse=True)[:3]]
    candidates = {
        row.id: row for row in session.execute(base.where(or_(*near), Dataset.id != ds.id).limit(200))
    }
    shared: Counter[int] = Counter()
    if columns:
        shared.update(
            dict(
                session.execute(
                    select(FieldDescription.dataset_id, func.count())
                    .where(
                        FieldDescription.name.in_(sorted(columns)[:50]), FieldDescription.dataset_id != ds.id
                    )
                    .group_by(FieldDescription.dataset_id)
                    .order_by(func.count().desc())
                    .limit(50)
                ).all()
            )
        )
        missing = [i for i in shared if i not in candidates]
        if missing:
            candidates.update({r.id: r for r in session.execute(base.where(Dataset.id.in_(missing)))})
    scores = {i: _score(ds, row, words, shared[i]) for i, row in candidates.items()}
    return [i for i, score in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])) if score > 0][:30]


def _score(ds: Dataset, row: Any, words: set[str], shared_columns: int) -> float:
    score = 3.0 if ds.domain and row.domain == ds.domain else 0.0
    score += 2.0 if row.department_id == ds.department_id else 0.0
    score += 1.5 * min(shared_columns, 4)
    return score + 2.0 * sum(1 for w in words if w in row.title)


def showcase_for(session: Session, ds: Dataset, limit: int = 10) -> list[ShowcaseItem]:
    """Approved showcase entries that use this dataset, newest first."""
    return list(
        session.scalars(
            select(ShowcaseItem)
            .join(ShowcaseDataset, ShowcaseDataset.showcase_id == ShowcaseItem.id)
            .where(
                ShowcaseDataset.dataset_id == ds.id,
                ShowcaseItem.status == "approved",
                ShowcaseItem.hidden.is_(False),
            )
            .order_by(ShowcaseItem.id.desc())
            .limit(limit)
        )
    )


def home_context(session: Session) -> dict[str, Any]:
    """What templates/content/_home.html shows: the newest notice and the first topics."""
    return {"latest_notice": latest_notice(session), "home_topics": published_topics(session)[:6]}


def dataset_context(session: Session, ds: Dataset) -> dict[str, Any]:
    """What templates/dataset/_related.html and _showcase.html show (one call from the view)."""
    return {"related": related_datasets(session, ds), "showcase_entries": showcase_for(session, ds)}

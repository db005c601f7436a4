"""The bureau's own content: topics (专题) that gather datasets, and the pages it writes —
notices (公告), the user guide, the FAQ, the terms and the privacy policy — each in Chinese and
English, with every earlier version kept."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, utcnow
from .catalog import Dataset

PAGE_KINDS = ("notice", "guide", "faq", "terms", "privacy")
SINGLE_PAGES = ("guide", "faq", "terms", "privacy")  # one page each, at /pages/<kind>


class Topic(Base):
    """A theme the bureau curates (专题): a page of its chosen datasets, of which only those
    public at the moment of reading are shown."""

    __tablename__ = "topics"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(default=0)
    published: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    links: Mapped[list[TopicDataset]] = relationship(
        order_by="TopicDataset.position", cascade="all, delete-orphan"
    )


class TopicDataset(Base):
    __tablename__ = "topic_datasets"

    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id"), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(default=0)

    dataset: Mapped[Dataset] = relationship()


class Page(Base):
    """A page the bureau writes in the admin: a dated notice, or one of the single pages
    (guide, faq, terms, privacy). Bodies are Markdown, rendered without raw HTML."""

    __tablename__ = "pages"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)  # PAGE_KINDS
    title: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    body_en: Mapped[str | None] = mapped_column(Text)
    published: Mapped[bool] = mapped_column(default=True)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)  # a notice's date
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    versions: Mapped[list[PageVersion]] = relationship(
        order_by="PageVersion.id.desc()", cascade="all, delete-orphan"
    )


class PageVersion(Base):
    """A page as it was saved: the edit history."""

    __tablename__ = "page_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    body_en: Mapped[str | None] = mapped_column(Text)
    edited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    edited_at: Mapped[datetime] = mapped_column(default=utcnow)

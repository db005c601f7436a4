"""The bureau's synonym list for search (portal/search/synonyms.py edits it, the engines read it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class SearchSynonym(Base):
    """An everyday word people search with, and the official words it stands for: a query
    holding `term` also finds what any of `expansions` finds (打疫苗 → 预防接种)."""

    __tablename__ = "search_synonyms"

    id: Mapped[int] = mapped_column(primary_key=True)
    term: Mapped[str] = mapped_column(String(50), unique=True)  # NFKC, lower case, single spaces
    expansions: Mapped[list] = mapped_column(default=list)  # ["预防接种", …]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: seeded with the table

"""The bureau's synonym list: everyday words people search with (打疫苗, 户口, 景点) and the
official words of the catalog they stand for (预防接种, 户籍, 旅游景区).

The list lives in the database (`search_synonyms`, seeded by migration 0013 with common
public-service aliases), so a change made at /admin/synonyms reaches every process: each
reads the whole list again at most every `CachedSynonyms.seconds` (the process that made the
change at once). Both engines apply it when they read a query (portal/search/plan.py).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..audit import record
from ..authz import Action, require
from ..errors import DomainError
from ..messages import _
from ..models import SearchSynonym, User
from .plan import normalize_key
from .text import tokenize

log = logging.getLogger(__name__)
MAX_LENGTH = 50
MAX_EXPANSIONS = 10
_SEPARATORS = re.compile(r"[,，、;；\n]+")


class SynonymError(DomainError):
    """An entry of the synonym list the bureau cannot add as written."""


def split_expansions(text: str) -> list[str]:
    """The official words as typed: one per line, or separated by 、，; (a space stays inside
    a phrase, as in "bus routes")."""
    return list(dict.fromkeys(normalize_key(p) for p in _SEPARATORS.split(text or "") if p.strip()))


def table(session: Session) -> dict[str, list[str]]:
    """The list as the engines read it: term → its official words."""
    return {row.term: list(row.expansions or []) for row in session.scalars(select(SearchSynonym))}


def entries(session: Session) -> list[SearchSynonym]:
    return list(session.scalars(select(SearchSynonym).order_by(SearchSynonym.term)))


def add(
    session: Session, user: User, term: str, expansions: Sequence[str], ip: str | None = None
) -> SearchSynonym:
    """Add an everyday word with its official words, or give a listed word new ones."""
    require(user, Action.BUREAU)
    key = normalize_key(term)
    wanted = [e for e in dict.fromkeys(normalize_key(e) for e in expansions) if e]
    if len(key) < 2 or len(key) > MAX_LENGTH or not tokenize(key):
        raise SynonymError(_("检索词须为 2–%(max)s 个字，且含文字或数字", max=MAX_LENGTH))
    if not wanted:
        raise SynonymError(_("请填写「%(term)s」对应的规范用词", term=key))
    if len(wanted) > MAX_EXPANSIONS:
        raise SynonymError(_("规范用词最多 %(max)s 个", max=MAX_EXPANSIONS))
    for word in wanted:
        if word == key:
            raise SynonymError(_("规范用词不能与检索词相同：%(word)s", word=word))
        if len(word) > MAX_LENGTH or not tokenize(word):
            raise SynonymError(
                _("规范用词须为不超过 %(max)s 个字的词语：%(word)s", max=MAX_LENGTH, word=word)
            )
    row = session.scalar(select(SearchSynonym).where(SearchSynonym.term == key))
    if row is None:
        row = SearchSynonym(term=key, expansions=wanted, created_by_id=user.id)
        session.add(row)
        record(session, "search_synonym_added", actor=user, target=f"synonym:{key}", ip=ip, expansions=wanted)
    else:
        before = list(row.expansions or [])
        if before == wanted:
            raise SynonymError(_("「%(term)s」已在同义词表中，未改变", term=key))
        row.expansions = wanted
        record(
            session,
            "search_synonym_changed",
            actor=user,
            target=f"synonym:{key}",
            ip=ip,
            before=before,
            expansions=wanted,
        )
    session.flush()
    return row


def remove(session: Session, user: User, row: SearchSynonym, ip: str | None = None) -> None:
    require(user, Action.BUREAU)
    record(
        session,
        "search_synonym_removed",
        actor=user,
        target=f"synonym:{row.term}",
        ip=ip,
        expansions=list(row.expansions or []),
    )
    session.delete(row)
    session.flush()


class CachedSynonyms:
    """The list for one process's searches, read again from the database at most every
    `seconds` (and at once after `invalidate()`, which this process's own edits call)."""

    def __init__(self, sessions: sessionmaker[Session], seconds: float = 5.0) -> None:
        self.sessions, self.seconds = sessions, seconds
        self._value: Mapping[str, Sequence[str]] = {}
        self._at = float("-inf")
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        self._at = float("-inf")

    def __call__(self) -> Mapping[str, Sequence[str]]:
        if time.monotonic() - self._at <= self.seconds:
            return self._value
        with self._lock:
            if time.monotonic() - self._at > self.seconds:
                try:
                    with self.sessions() as s:
                        self._value = table(s)
                except SQLAlchemyError:  # the database away for a moment: search on with the last list
                    log.warning("search synonyms could not be read; using the last list", exc_info=True)
                self._at = time.monotonic()
        return self._value

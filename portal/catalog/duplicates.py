"""Likely duplicate catalog entries across departments (Art. 15: the bureau finds them, the
departments merge them): similar titles and similar fields."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from portal.models import Dataset, Distribution
from portal.search.text import tokenize

# Words every title shares here; they say nothing about what a dataset holds.
COMMON = {"东昌", "东昌府", "东昌府区", "聊城", "聊城市", "信息", "数据", "名录", "情况", "统计", "年"}


@dataclass
class Pair:
    a: Dataset
    b: Dataset
    score: float
    title_score: float
    field_score: float


def _words(title: str) -> set[str]:
    return {w for w in tokenize(re.sub(r"\d{4}年", "", title)) if w not in COMMON and not w.isdigit()}


def _jaccard(x: set, y: set) -> float:
    return len(x & y) / len(x | y) if x and y else 0.0


def likely_duplicates(session: Session, threshold: float = 0.6, limit: int = 200) -> list[Pair]:
    datasets = session.scalars(
        select(Dataset)
        .where(Dataset.status != "withdrawn")
        .options(
            selectinload(Dataset.department),
            selectinload(Dataset.distributions).selectinload(Distribution.tables),
        )
    ).all()
    words = {d.id: _words(d.title) for d in datasets}
    fields = {
        d.id: {f["name"] for dist in d.current_distributions for t in dist.tables for f in t.schema}
        for d in datasets
    }
    by_word: dict[str, list[Dataset]] = defaultdict(list)
    for d in datasets:
        for w in words[d.id]:
            by_word[w].append(d)
    seen, pairs = set(), []
    for d in datasets:
        for w in words[d.id]:
            if len(by_word[w]) > 200:  # too common to point at a duplicate
                continue
            for other in by_word[w]:
                key = (min(d.id, other.id), max(d.id, other.id))
                if other.department_id == d.department_id or key in seen:
                    continue
                seen.add(key)
                title_score = _jaccard(words[d.id], words[other.id])
                field_score = _jaccard(fields[d.id], fields[other.id])
                score = (
                    0.6 * title_score + 0.4 * field_score
                    if fields[d.id] and fields[other.id]
                    else title_score
                )
                if score >= threshold:
                    pairs.append(Pair(d, other, score, title_score, field_score))
    return sorted(pairs, key=lambda p: -p.score)[:limit]

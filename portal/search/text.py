"""Words for the index and for queries, made the same way on both sides.

Chinese is segmented with rjieba (jieba's algorithm and dictionary, in Rust: 27× faster
than jieba here, which is what lets 100,000 datasets index within a minute). The index uses
search mode, which also emits the shorter words inside long ones (东昌府区 → 东昌, 东昌府,
东昌府区), so 药品 finds 药品零售企业名录. A query is cut in precise mode (公交车 stays one
word) and portal/search/plan.py lets each word match by itself or by its sub-words. Latin
words are lower-cased and Porter-stemmed; digits stay as they are, so catalog codes like
371502-SLJ-0001 match by their parts.

Titles are also indexed as character bigrams (`#公交`, `#交线` …, marked so they never meet a
word): the fallback when a query's word is not among the index's words (网约 finds 网约车).
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import rjieba
from markupsafe import Markup, escape
from whoosh.lang.porter import stem

_LATIN = re.compile(r"^[a-z]+$")
_WORD = re.compile(r"\w", re.UNICODE)
# Latin letters and digits, possibly joined into a code: COVID-19, 371502-SLJ-0001, v2.1
_CODE = re.compile(r"[0-9A-Za-z]+(?:[-_./][0-9A-Za-z]+)*")
# Runs of Chinese characters (CJK unified ideographs and extension A)
HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
BIGRAM_MARK = "#"  # never part of a word: tokenize() keeps only tokens of letters and digits


def normalize(text: str | None) -> str:
    return unicodedata.normalize("NFKC", text or "")


def tokenize(text: str | None, compounds: bool = True, search: bool = True) -> list[str]:
    """Words of a text. `compounds` adds whole codes (371502-slj-0001) beside their parts;
    queries leave them out, so "SLJ-0001" finds 371502-SLJ-0001 by its parts. `search`
    (the index) cuts Chinese in search mode, with the sub-words of long words; queries cut
    it in precise mode (plan.py adds the sub-words as alternatives)."""
    if not text:
        return []
    text = normalize(text)
    words: list[str] = []
    start = 0
    for m in _CODE.finditer(text):
        _chinese(text[start : m.start()], words, search)
        parts = re.split(r"[-_./]", m.group().lower())
        words.extend(stem(p) if _LATIN.match(p) else p for p in parts)
        if compounds and len(parts) > 1:
            words.append(m.group().lower())  # the whole code too, for exact look-ups
        start = m.end()
    _chinese(text[start:], words, search)
    return words


def _chinese(text: str, words: list[str], search: bool = True) -> None:
    if text.strip():
        cut = rjieba.cut_for_search(text) if search else rjieba.cut(text)
        words.extend(t for t in (w.strip() for w in cut) if t and _WORD.search(t))


def sub_words(word: str) -> list[str]:
    """The shorter dictionary words inside a word (search mode): 公交车 → 公交."""
    return [w for w in rjieba.cut_for_search(word) if w != word and len(w) > 1]


def bigrams(text: str | None) -> list[str]:
    """Character bigrams of the Chinese runs of a text, marked: 网约车 → #网约, #约车."""
    out: list[str] = []
    for run in HAN_RUN.findall(normalize(text)):
        out.extend(BIGRAM_MARK + run[i : i + 2] for i in range(len(run) - 1))
    return out


def highlight(text: str, terms: list[str]) -> Markup:
    """Escape, then mark every occurrence of a query word (case-insensitive)."""
    if not text or not terms:
        return escape(text or "")
    lowered = text.lower()
    marks = np.zeros(len(text) + 1, dtype=np.int8)
    for term in terms:
        if len(term) < 1:
            continue
        start = lowered.find(term)
        while start != -1:
            marks[start] += 1
            marks[start + len(term)] -= 1
            start = lowered.find(term, start + len(term))
    inside = np.cumsum(marks)[: len(text)] > 0
    out, i = [], 0
    while i < len(text):
        j = i
        while j < len(text) and inside[j] == inside[i]:
            j += 1
        chunk = escape(text[i:j])
        out.append(Markup(f"<mark>{chunk}</mark>") if inside[i] else chunk)
        i = j
    return Markup("").join(out)

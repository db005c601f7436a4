"""What a query asks for, the same for both engines: clauses, each with its alternatives.

A query is cut into words (precise mode); each word is a clause that a dataset matches by
the word itself or by the sub-words that make it up (search mode), so 公交车 finds 公交线路信息
and 养老院 finds 养老服务机构名录:

    公交车 养老院  →  (公交车 | 公交) & (养老院 | 养老)

A stretch of the query that is an entry of the synonym list (the bureau's, in the database)
is one clause with the official words as alternatives:

    打疫苗        →  (打 & 疫苗) | 预防接种 | (预防 & 接种)

Filler words of questions (哪里, 怎么, 查询, where, how …) are left out unless nothing else
is left. The engines first want every clause (`strict`). When that finds nothing, each
clause may also match by the character bigrams of its words in titles (the character
fallback: 网约 finds 网约车), a clause by any one of its words (天气预报: 天气), and a dataset
needs only one clause (`loose`, OR): those that match more clauses come first, then by score.
Numbers of four digits or more (a year, a part of a catalog code) stay required: 2025 公交车站
牌 is about 2025, and a catalog code that does not exist finds nothing rather than the whole
catalog by its district prefix 371502.

Terms carry a weight: 1 for a word and the synonym list's words, less for a sub-word, less
again for a bigram; both engines add up the weighted contributions of the terms a dataset
holds (Whoosh exactly; PostgreSQL's ts_rank as it can).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .text import BIGRAM_MARK, HAN_RUN, bigrams, normalize, sub_words, tokenize

SUB_WORD_WEIGHT = 0.5
BIGRAM_WEIGHT = 0.3

# Words of questions, not of what is asked for. Only dropped when something else is left.
STOP_WORDS_ZH = frozenset(
    [
        "的",
        "了",
        "和",
        "与",
        "及",
        "或",
        "在",
        "是",
        "有",
        "被",
        "把",
        "让",
        "从",
        "对",
        "向",
        "为",
        "我",
        "我们",
        "你",
        "您",
        "他",
        "她",
        "想",
        "想要",
        "要",
        "需要",
        "哪里",
        "哪儿",
        "哪",
        "哪些",
        "哪个",
        "哪家",
        "在哪",
        "在哪里",
        "在哪儿",
        "什么",
        "怎么",
        "怎样",
        "怎么样",
        "如何",
        "可以",
        "能",
        "能否",
        "能不能",
        "吗",
        "呢",
        "吧",
        "啊",
        "呀",
        "一下",
        "看看",
        "查",
        "查询",
        "查找",
        "查看",
        "找",
        "找找",
        "搜",
        "搜索",
        "请问",
        "附近",
        "相关",
        "关于",
        "去",
        "到",
        "给",
        "都",
        "也",
        "还",
        "就",
        "最近",
        "多少",
        "几",
        "个",
        "所有",
        "全部",
        "一些",
        "有没有",
        "没有",
        "怎么办",
        "地方",
        "哪里有",
        "数据",
        "资料",
        "信息",
        "情况",
        "一览",
        "大全",
        "本地",
        "我市",
        "我区",
        "聊城",
        "聊城市",
        "东昌府",
        "东昌府区",
        "的话",
        "下载",
        "表格",
        "最新",
        "今年",
    ]
)
STOP_WORDS_EN = frozenset(
    tokenize(
        " ".join(
            [
                "a",
                "an",
                "the",
                "of",
                "in",
                "on",
                "at",
                "for",
                "to",
                "and",
                "or",
                "with",
                "by",
                "from",
                "near",
                "about",
                "where",
                "what",
                "which",
                "who",
                "whom",
                "how",
                "when",
                "can",
                "could",
                "i",
                "me",
                "my",
                "we",
                "our",
                "you",
                "your",
                "is",
                "are",
                "be",
                "get",
                "find",
                "list",
                "show",
                "any",
                "all",
                "do",
                "does",
                "did",
                "please",
                "there",
                "here",
                "some",
                "data",
                "dataset",
                "datasets",
                "information",
                "info",
                "want",
                "need",
                "look",
                "looking",
                "search",
            ]
        )
    )
)
STOP_WORDS = STOP_WORDS_ZH | STOP_WORDS_EN
_LATIN_KEY = re.compile(r"[0-9a-z]")


@dataclass(frozen=True)
class Term:
    word: str
    weight: float = 1.0


@dataclass(frozen=True)
class All:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Any:
    parts: tuple[Node, ...]


Node = Term | All | Any


def all_of(parts: Iterable[Node]) -> Node | None:
    parts = tuple(dict.fromkeys(parts))
    return None if not parts else parts[0] if len(parts) == 1 else All(parts)


def any_of(parts: Iterable[Node | None]) -> Node | None:
    kept = tuple(dict.fromkeys(p for p in parts if p is not None))
    return None if not kept else kept[0] if len(kept) == 1 else Any(kept)


def terms(node: Node | None) -> dict[str, float]:
    """Every term of a node with its weight (the largest where a term appears twice)."""
    out: dict[str, float] = {}

    def walk(n: Node) -> None:
        if isinstance(n, Term):
            out[n.word] = max(out.get(n.word, 0.0), n.weight)
        else:
            for p in n.parts:
                walk(p)

    if node is not None:
        walk(node)
    return out


@dataclass
class Plan:
    clauses: list[Node] = field(default_factory=list)  # every one must match
    required: list[Node] = field(default_factory=list)  # relaxed, these still must (numbers: years, codes)
    relaxed: list[Node] = field(default_factory=list)  # relaxed, one of these: the rest, with their fallback

    @property
    def strict(self) -> Node | None:
        return all_of(self.clauses)

    @property
    def loose(self) -> Node | None:
        """Relaxed: the required clauses and any other; None when nothing could be relaxed."""
        if not self.relaxed:
            return None
        return all_of([*self.required, any_of(self.relaxed)])  # type: ignore[list-item]

    def highlights(self, relaxed: bool = False) -> list[str]:
        """The words to mark in titles and summaries, longest first."""
        nodes = [*self.required, *self.relaxed] if relaxed else self.clauses
        words = {w.removeprefix(BIGRAM_MARK) for n in nodes for w in terms(n)}
        longer = {w for w in words if len(w) > 1 or not HAN_RUN.fullmatch(w)}  # not every 打 of a page
        return sorted(longer or words, key=lambda w: (-len(w), w))


def word_node(word: str) -> Node:
    """A query word: itself, or the sub-words that make up most of it (公交车 → 公交;
    中华人民共和国 → 中华 & 人民 & 共和国)."""
    if len(word) < 3 or not HAN_RUN.fullmatch(word):
        return Term(word)
    subs = sorted(set(sub_words(word)), key=len, reverse=True)
    cover, i = [], 0
    while i < len(word):
        part = next((s for s in subs if word.startswith(s, i)), None)
        if part:
            cover.append(part)
            i += len(part)
        else:
            i += 1
    if not cover or 2 * sum(map(len, cover)) < len(word):
        return Term(word)
    return Any((Term(word), all_of(Term(s, SUB_WORD_WEIGHT) for s in cover)))  # type: ignore[arg-type]


def _phrase(text: str) -> Node | None:
    """Every word of a phrase (of the synonym list), each as word_node."""
    return all_of(word_node(w) for w in dict.fromkeys(tokenize(text, compounds=False, search=False)))


def _spans(text: str, synonyms: Mapping[str, Sequence[str]]) -> list[tuple[int, int, str]]:
    """Where entries of the synonym list occur: longest first, not overlapping; a Latin
    entry only as a whole word."""
    taken = [False] * len(text)
    found = []
    for key in sorted(synonyms, key=len, reverse=True):
        if not key:
            continue
        start = text.find(key)
        while start != -1:
            end = start + len(key)
            latin_edge = (_LATIN_KEY.match(key[0]) and start > 0 and _LATIN_KEY.match(text[start - 1])) or (
                _LATIN_KEY.match(key[-1]) and end < len(text) and _LATIN_KEY.match(text[end])
            )
            if not latin_edge and not any(taken[start:end]):
                found.append((start, end, key))
                taken[start:end] = [True] * (end - start)
            start = text.find(key, start + 1)
    return sorted(found)


def normalize_key(text: str) -> str:
    return " ".join(normalize(text).lower().split())


def make_plan(q: str, synonyms: Mapping[str, Sequence[str]] | None = None) -> Plan:
    """The clauses of a query. `synonyms`: normalized entry → its official words."""
    text = normalize_key(q)
    pieces: list[
        tuple[str, Node | None, list[str]]
    ] = []  # (the query's text, its clause if a synonym, words)
    at = 0
    spans = _spans(text, synonyms or {})
    for start, end, key in spans:
        pieces.append((text[at:start], None, []))
        own = tokenize(key, compounds=False, search=False)
        official = [w for e in synonyms[key] for w in tokenize(e, compounds=False, search=False)]  # type: ignore[index]
        pieces.append(
            (
                key,
                any_of([all_of(Term(w) for w in own), *(_phrase(e) for e in synonyms[key])]),  # type: ignore[index]
                own + official,
            )
        )
        at = end
    pieces.append((text[at:], None, []))
    clauses: list[tuple[str, Node, list[str]]] = []
    for piece, clause, words in pieces:
        if clause is not None:
            clauses.append((piece, clause, words))
            continue
        if len(piece) == 1 and HAN_RUN.fullmatch(piece) and len(pieces) > 1:
            continue  # one character left beside an entry of the list: 户口本 → 户口 (+本)
        for word in tokenize(piece, compounds=False, search=False):
            node = word_node(word)
            clauses.append((word, node, [w for w in terms(node)]))
    wanted = [c for c in clauses if c[0] not in STOP_WORDS] or clauses
    plan = Plan()
    seen = set()
    for word, clause, words in wanted:
        if clause in seen:
            continue
        seen.add(clause)
        plan.clauses.append(clause)
        if word.isdigit() and len(word) >= 4:  # a year or a part of a catalog code: never dropped
            plan.required.append(clause)
            continue
        # Relaxed, any one word of the clause will do (天气预报: 天气), or its characters (网约:
        # 网约车). Not the parts of the official words: 行政处罚 is not 行政.
        parts = [Term(w, SUB_WORD_WEIGHT) for w in dict.fromkeys(words) if len(w) > 1]
        fallback = [Term(b, BIGRAM_WEIGHT) for b in dict.fromkeys(bigrams(word))]
        relaxed = any_of([clause, *parts, *fallback])
        if relaxed is not None:  # never None: the clause itself is in the list
            plan.relaxed.append(relaxed)
    return plan

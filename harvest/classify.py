"""Classification rules (rules.md 1, design "Classification rules").

Plain functions: the catalog's words in, a class or a reason to hold out.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from portal.models import OpenClass

_WORDS = {
    OpenClass.UNCONDITIONAL: {"无条件开放", "无条件开放类", "无条件", "unconditional", "open"},
    OpenClass.CONDITIONAL: {"有条件开放", "有条件开放类", "有条件", "conditional"},
    OpenClass.NOT_OPEN: {"不予开放", "不予开放类", "不开放", "非开放", "not_open", "not open", "not-open", "closed"},
}
_LOOKUP = {word: cls for cls, words in _WORDS.items() for word in words}

# What departments write when there is no basis: not a basis.
_EMPTY_BASIS = re.compile(r"^[\s\-—–_/\\.。无空暂缺略nN/aA]*$|^(无|暂无|空|none|null|n/a|na)$", re.IGNORECASE)


def parse_open_class(raw: str | None) -> OpenClass | None:
    """无条件开放 / 有条件开放 / 不予开放 or unconditional / conditional / not_open; anything
    else is unknown (None), and unknown is never opened."""
    if raw is None:
        return None
    word = re.sub(r"\s+", " ", str(raw)).strip().lower()
    return _LOOKUP.get(word)


def has_legal_basis(text: str | None) -> bool:
    return bool(text and text.strip() and not _EMPTY_BASIS.match(text.strip()))


@dataclass(frozen=True)
class Classification:
    open_class: OpenClass | None
    hold_reason: str | None  # None: may go ahead (publish, or keep internal if not open)


def classify(raw_open_class: str | None, legal_basis: str | None) -> Classification:
    open_class = parse_open_class(raw_open_class)
    if open_class is None:
        shown = (raw_open_class or "").strip()
        reason = (f"开放类型未知「{shown}」，待部门确认 / unknown open class {shown!r}" if shown
                  else "未填写开放类型，待部门确认 / open class missing")
        return Classification(None, reason)
    if open_class is not OpenClass.UNCONDITIONAL and not has_legal_basis(legal_basis):
        return Classification(open_class, f"{open_class.label_zh}缺少法律法规或国家有关文件依据 / "
                                          f"{open_class.value} without a legal basis")
    return Classification(open_class, None)

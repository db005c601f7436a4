"""Why a dataset is held, as codes with a message table.

Whatever holds a dataset (or fails a harvest entry) is kept as details: JSON objects with a
`code` and the facts of the case (file, sheet, column, kind, rows, the words of a message).
`explain()` puts one into words — what was found, where, and what fixes it — in the reader's
language, when it is shown (the console, the harvest report, the CLI's JSON). The Chinese
one-line `summary()` is what the record keeps (`Dataset.hold_reason`, the report's reason).

A new reason to hold is a new code here, with its words and its fix; nothing looks for
words inside stored text.
"""

from __future__ import annotations

from collections.abc import Callable

from portal.messages import Joined, Message, _

from .pii import KIND_LABELS


def kind_label(kind: str) -> Message | str:
    return KIND_LABELS.get(kind, kind)


# ------------------------------------------------------------------ making details


def detail(code: str, **facts: object) -> dict:
    return {"code": code, **facts}


# What the publication gate finds in the files; a hold made only of these is the gate's to
# lift when the files change (rescan, masking). Anything else waits for the department or the bureau.
GATE_CODES = frozenset({"personal", "bad_rows", "beyond_header", "empty", "unscanned"})


def held_by_gate(details: list[dict] | None) -> bool:
    return bool(details) and all(d.get("code") in GATE_CODES for d in details or [])


def hold_fields(details: list[dict]) -> tuple[str, list[dict]]:
    """(hold_reason, hold_details) for a dataset held for these reasons."""
    return summary(details), details


def from_message(code: str, message: Message | str, **facts: object) -> dict:
    """A detail whose words came with the refusal (a dead link, a broken row, a bad basis)."""
    if isinstance(message, Message):
        return {"code": code, "message": message.as_json(), **facts}
    return {"code": code, "text": str(message), **facts}


# ------------------------------------------------------------------ the message table

_FIX_PERSONAL = _(
    "在部门控制台为该列选择脱敏方式（部分遮蔽或删除该列），或在源文件中删除、脱敏后重新报送；"
    "确需提供的，改为有条件开放并写明法律依据"
)
_FIX_FILE = _("检查目录中的数据文件路径或链接，并确认文件可以打开，下次采集时重新获取")
_FIX_CONVERSION = _("检查数据文件（编码、格式、是否损坏），重新导出后报送")
_FIX_CATALOG_ROW = _("在目录中补齐或更正该条目后重新报送")
_FIX_BASIS = _("在控制台重新分类并写明法律依据，或在目录中补充法律依据后重新报送")
_FIX_CLASS = _("在控制台选择开放类型，或在目录中填写无条件开放、有条件开放或不予开放")

FIXES: dict[str, Message | None] = {
    "personal": _FIX_PERSONAL,
    "personal_metadata": _("从目录的该项中删除个人信息后重新报送（目录内容与数据一同公开）"),
    "bad_rows": _("在源文件中补齐或删除这些行（常见原因：行内多了逗号、少了单元格、合并单元格）后重新报送"),
    "beyond_header": _("为这些数据补上表头，或删除多余的单元格后重新报送"),
    "empty": _("检查表头位置和分隔符（表格应从表头行开始，每行字段数与表头相同）"),
    "unscanned": _("下次采集时自动重新检查"),
    "class_unknown": _FIX_CLASS,
    "class_missing": _FIX_CLASS,
    "no_basis": _FIX_BASIS,
    "restriction_pending": _("等待大数据局审批"),
    "waiting_for_files": _("下次采集时自动获取"),
    "file": _FIX_FILE,
    "conversion": _FIX_CONVERSION,
    "catalog_row": _FIX_CATALOG_ROW,
    "provider": _("在目录中更正信息资源提供方后重新报送"),
    "other_department": _("部门上传的目录表只能包含本部门的条目：其他部门的条目请由该部门上传"),
    "one_source": _("同一数据只由一个部门提供（一数一源）：请与该部门核实后更正信息资源代码"),
    "no_file": _("在目录中为该条目填写数据文件后重新报送"),
    "stored_file_gone": _("下次采集时自动重新获取"),
    "internal": _("请联系大数据局（错误已记入日志）"),
}


def _rows(d: dict) -> Message | str:
    rows = d.get("rows") or []
    if not rows:
        return ""
    more = d.get("count", 0) > len(rows)
    listed = "、".join(map(str, rows))
    return _("：第 %(rows)s 行等", rows=listed) if more else _("：第 %(rows)s 行", rows=listed)


def _personal(d: dict) -> Message:
    examples = "、".join(d.get("examples") or [])
    base = dict(column=d.get("column"), label=kind_label(d.get("kind", "")), count=d.get("count"))
    if examples:
        return _("列「%(column)s」含%(label)s %(count)s 行（如 %(examples)s）", examples=examples, **base)
    return _("列「%(column)s」含%(label)s %(count)s 行", **base)


def _personal_metadata(d: dict) -> Message:
    examples = "、".join(d.get("examples") or [])
    base = dict(field=d.get("column"), label=kind_label(d.get("kind", "")))
    if examples:
        return _("目录中的「%(field)s」含%(label)s（如 %(examples)s）", examples=examples, **base)
    return _("目录中的「%(field)s」含%(label)s", **base)


def _message(d: dict) -> Message | str:
    if isinstance(d.get("message"), dict):
        return Message.from_json(d["message"])
    return str(d.get("text") or d.get("code") or "")


WHAT: dict[str, Callable[[dict], Message | str]] = {
    "personal": _personal,
    "personal_metadata": _personal_metadata,
    "bad_rows": lambda d: _(
        "%(n)s 行的字段数与表头（%(width)s 列）不符，未能读取%(rows)s",
        n=d.get("count", len(d.get("rows") or [])),
        width=d.get("width", "?"),
        rows=_rows(d),
    ),
    "beyond_header": lambda d: _(
        "%(n)s 行在表头之外还有数据（表头 %(width)s 列）%(rows)s",
        n=d.get("count", len(d.get("rows") or [])),
        width=d.get("width", "?"),
        rows=_rows(d),
    ),
    "empty": lambda d: _("文件不是空的，但没有读到任何数据行"),
    "unscanned": lambda d: _("该版本在个人信息检查上线前采集，尚未检查"),
    "class_unknown": lambda d: _("开放类型未知「%(word)s」，待部门确认", word=d.get("word", "")),
    "class_missing": lambda d: _("未填写开放类型，待部门确认"),
    "no_basis": lambda d: _(
        "%(open_class)s缺少法律法规或国家有关文件依据：%(why)s",
        open_class=class_label(d.get("open_class")),
        why=_message(d),
    ),
    "restriction_pending": lambda d: _("限制开放申请待大数据局审批，期间暂停公开"),
    "waiting_for_files": lambda d: _("等待下次采集获取数据文件"),
}


def class_label(value: object) -> Message | str:
    return {"unconditional": _("无条件开放"), "conditional": _("有条件开放"), "not_open": _("不予开放")}.get(
        str(value), str(value or "")
    )


def _where(d: dict) -> Message | str:
    if d.get("file") and d.get("sheet"):
        return _("文件「%(file)s」工作表「%(sheet)s」：", file=d["file"], sheet=d["sheet"])
    if d.get("file"):
        return _("文件「%(file)s」：", file=d["file"])
    if d.get("sheet"):
        return _("工作表「%(sheet)s」：", sheet=d["sheet"])
    return ""


def explain(d: dict) -> tuple[Joined, Message | None]:
    """(what was found, where; what fixes it), shown in the reader's language."""
    code = str(d.get("code") or "")
    what = WHAT.get(code, _message)(d)
    return Joined(_where(d), what), FIXES.get(code)


def summary(details: list[dict]) -> str:
    """One line for lists and the record (Chinese): what was found, where."""
    return "；".join(explain(d)[0].source for d in details[:6]) + ("；…" if len(details) > 6 else "")


def summary_words(details: list[dict]) -> str:
    """The same line in the reader's language."""
    return "；".join(str(explain(d)[0]) for d in details[:6]) + ("；…" if len(details) > 6 else "")

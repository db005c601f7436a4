"""Where the table is in a department's file: title rows above the header, a header of one or
two rows (merged cells), notes below the table. Plain functions over rows of cell text, used
for CSV files and for every sheet of a workbook.

Departments export tables the way they print them:

    东昌府区助残志愿者名册（2025年）                 ← title (kept as a note, not data)
    单位：人                                        ← title
    姓名 | 联系方式          | 所属街道              ← header, first row ("联系方式" merged over two columns)
         | 电话    | 邮箱    |                       ← header, second row
    张三 | 139…    | z@…     | 古楼街道              ← data
    注：数据截至2025年6月。                          ← note (not data)
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

LOOK_AHEAD = 50  # rows read to find the header
# A row with one filled cell that starts so is a note, not data.
_NOTE = re.compile(
    r"^\s*(注|备注|说明|附注|数据来源|资料来源|来源|填表|填报|制表|审核|统计|单位[:：]|"
    r"联系人|联系电话|负责人|打印|导出|更新|截至|截止|\*|※|[（(]?\d+[)）]?[、.．]?注)"
)
_NUMBER = re.compile(r"^[+-]?\d+([.,]\d+)*%?$|^\d{4}[-/.年]\d{1,2}([-/.月]\d{1,2}日?)?$")


@dataclass
class Layout:
    header_index: int  # first header row (0-based, among the rows read)
    header_rows: int  # 1 or 2
    names: list[str]  # column names, cleaned, unique, never empty
    raw_names: list[str]  # the header as written (first header row)
    titles: list[str] = field(default_factory=list)  # text of the rows above the header

    @property
    def data_index(self) -> int:
        return self.header_index + self.header_rows

    @property
    def width(self) -> int:
        return len(self.names)

    @property
    def exact(self) -> bool:
        """The first row is the header, as written: a reader that takes row 1 as the header
        reads the same table."""
        return self.header_index == 0 and self.header_rows == 1 and self.names == self.raw_names


def filled(row: list[str]) -> int:
    return sum(1 for c in row if c.strip())


def width_of(row: list[str]) -> int:
    for i in range(len(row) - 1, -1, -1):
        if row[i].strip():
            return i + 1
    return 0


def find_layout(rows: list[list[str]], merged_across: set[tuple[int, int]] | None = None) -> Layout | None:
    """The header among the first rows, or None for a table without any row.

    merged_across: (row, column) cells covered by a horizontal merge (workbooks), filled
    with the merge's value by the caller.
    """
    rows = [
        [c if isinstance(c, str) else ("" if c is None else str(c)) for c in r] for r in rows[:LOOK_AHEAD]
    ]
    merged_across = merged_across or set()
    # For finding the header, a merged cell counts once: a title merged across the table is
    # one filled cell, not a row of them.
    counted = [[("" if (i, j) in merged_across else c) for j, c in enumerate(r)] for i, r in enumerate(rows)]
    widths = [width_of(r) for r in counted]
    if not any(widths):
        return None
    # The table's width: what most rows with two or more filled cells span.
    spans = Counter(
        max(w, width_of(r)) for r, c, w in zip(rows, counted, widths, strict=True) if filled(c) >= 2
    )
    table_width = max(spans.items(), key=lambda kv: (kv[1], kv[0]))[0] if spans else max(widths)
    header = next(
        (
            i
            for i, r in enumerate(counted)
            if filled(r) >= max(1, min(table_width, 2), round(0.5 * table_width))
            and not all(_NUMBER.match(c.strip()) for c in r if c.strip())
            and not _label_value_row(r)
        ),
        None,
    )
    if header is None:
        header = next(i for i, w in enumerate(widths) if w)
    titles = [" ".join(c.strip() for c in r if c.strip()) for r in counted[:header] if filled(r)]
    first = rows[header]
    width = max(width_of(first), table_width if header + 1 < len(rows) else 0)
    first = (first + [""] * width)[:width]
    header_rows = 1
    names = list(first)
    if header + 2 < len(rows) and _second_header_row(
        first, rows[header + 1], rows[header + 2], width, header, merged_across
    ):
        second = (rows[header + 1] + [""] * width)[:width]
        header_rows = 2
        names, parent = [], ""
        for j, (top, sub) in enumerate(zip(first, second, strict=True)):
            top, sub = top.strip(), sub.strip()
            if top:
                parent = top
            elif not sub:
                parent = ""
            if sub and (top or parent) and sub != (top or parent):
                names.append(f"{top or parent}_{sub}")
            else:
                names.append(top or sub or (parent if (header, j) in merged_across else ""))
    return Layout(
        header_index=header,
        header_rows=header_rows,
        names=clean_names(names),
        raw_names=[c for c in rows[header][:width]] + [""] * max(0, width - len(rows[header])),
        titles=titles,
    )


_LABEL_VALUE = re.compile(r"^\s*[^：:]{1,12}[：:]\s*\S")


def _label_value_row(row: list[str]) -> bool:
    """填报单位：古楼街道 … 填报日期：2025年6月 — a form's particulars above the table, not its header."""
    cells = [c for c in row if c.strip()]
    return bool(cells) and sum(1 for c in cells if _LABEL_VALUE.match(c)) * 2 >= len(cells)


def _second_header_row(
    first: list[str],
    second: list[str],
    data: list[str],
    width: int,
    header: int,
    merged_across: set[tuple[int, int]],
) -> bool:
    """A second header row holds sub-headings under headings of the first that span several
    columns (merged, or followed by empty cells in a CSV); under a heading that spans one
    column it is empty or repeats it (a vertical merge). Only words, no numbers: a row of
    data (张伟, 139-1234-5678, 组长) is never taken for sub-headings."""
    second = (second + [""] * width)[:width]
    gaps = [j for j in range(width) if (not first[j].strip() or (header, j) in merged_across)]
    if not gaps or not any(second[j].strip() for j in gaps):
        return False
    words = [c.strip() for c in second if c.strip()]
    if not words or any(_NUMBER.match(w) or re.search(r"\d{3}", w) for w in words):
        return False

    def spans(j: int) -> bool:  # the heading over column j covers more than column j
        return (
            not first[j].strip()
            or (header, j) in merged_across
            or (j + 1 < width and (not first[j + 1].strip() or (header, j + 1) in merged_across))
        )

    for j in range(width):
        sub = second[j].strip()
        if sub and sub != first[j].strip() and not spans(j):
            return False
    return True


def clean_names(names: list[str]) -> list[str]:
    """Header cells as column names: whitespace and line breaks inside removed, empty ones
    named 列N, repeated ones numbered (名称, 名称_2)."""
    out: list[str] = []
    seen: Counter = Counter()
    for j, name in enumerate(names, start=1):
        name = re.sub(r"\s+", "", name or "") or f"列{j}"
        seen[name] += 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def is_note(row: list[str], width: int) -> bool:
    """A row below the table that is a note: one filled cell, in a table of two or more
    columns, that reads like a note (注：…, 数据来源：…, 填表人：…)."""
    cells = [c.strip() for c in row if c and c.strip()]
    return width >= 2 and len(cells) == 1 and bool(_NOTE.match(cells[0]))

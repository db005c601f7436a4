"""Personal information scan, run on unconditional data before it is published (Art. 29:
防止被采集人信息泄露). A hit holds the entry, and the reason names the column.

Looks for 18-digit resident ID numbers whose check digit and birth date are valid (python-
stdnum's stdnum.cn.ric) and mainland mobile numbers. The birth place is deliberately not
checked: people keep numbers whose region code has since been renamed (372501 → 371502),
and the scan must not miss them. Regular
expressions run inside Arrow (RE2) over whole columns; only candidate values reach Python
for the check-digit test, so large files scan quickly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from stdnum.cn import ric

# RE2 has no look-around, so boundaries are "start or non-digit".
_ID_CANDIDATE = r"(^|[^0-9])[1-9][0-9]{16}[0-9Xx]($|[^0-9])"
_MOBILE = r"(^|[^0-9])1[3-9][0-9]{9}($|[^0-9])"
_ID_IN_TEXT = re.compile(r"(?<!\d)[1-9]\d{16}[\dXx](?!\d)")

KIND_LABELS = {"id_number": "身份证号码 / ID card numbers", "mobile": "手机号码 / mobile numbers"}


@dataclass
class PiiHit:
    column: str
    kind: str   # "id_number" | "mobile"
    count: int  # rows with a hit (at least)

    def describe(self) -> str:
        return f"列「{self.column}」含{KIND_LABELS[self.kind]}（{self.count} 行）"


def scan_parquet(path: Path, *, max_rows: int | None = None) -> list[PiiHit]:
    """Scan string and integer columns of a Parquet file; integers are scanned as text because
    an ID or phone number column is often inferred as int64."""
    pf = pq.ParquetFile(path)
    names = [f.name for f in pf.schema_arrow
             if pa.types.is_string(f.type) or pa.types.is_large_string(f.type) or pa.types.is_integer(f.type)]
    counts: dict[tuple[str, str], int] = {}
    seen = 0
    for batch in pf.iter_batches(batch_size=65536, columns=names):
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            text = column if pa.types.is_string(column.type) or pa.types.is_large_string(column.type) \
                else pc.cast(column, pa.string())
            _count(counts, name, "mobile", pc.sum(pc.match_substring_regex(text, _MOBILE)).as_py() or 0)
            candidates = pc.filter(text, pc.fill_null(pc.match_substring_regex(text, _ID_CANDIDATE), False))
            if len(candidates):
                valid = sum(1 for v in candidates.to_pylist() if any(
                    is_id_number(m) for m in _ID_IN_TEXT.findall(v)))
                _count(counts, name, "id_number", valid)
        seen += batch.num_rows
        if max_rows and seen >= max_rows:
            break
    return [PiiHit(column, kind, n) for (column, kind), n in counts.items() if n]


def is_id_number(text: str) -> bool:
    number = text.upper()
    if len(number) != 18 or ric.calc_check_digit(number) != number[-1]:
        return False
    try:
        ric.get_birth_date(number)
    except Exception:  # stdnum raises InvalidComponent for an impossible date
        return False
    return True


def _count(counts: dict, column: str, kind: str, n: int) -> None:
    if n:
        counts[(column, kind)] = counts.get((column, kind), 0) + n

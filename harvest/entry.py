"""A catalog entry as a source gives it, before any rule is applied."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portal.messages import Message


@dataclass
class FileRef:
    """A data file named by the catalog: a URL (with the source's token) or a local path."""

    name: str
    url: str | None = None
    path: str | None = None
    media_format: str | None = None  # csv | xlsx, when the source says
    # What tells a new version without downloading (CKAN: resource id, last_modified, size).
    # None: the file must be fetched and its sha256 compared.
    version_hint: str | None = None


@dataclass
class CatalogEntry:
    source_ref: str  # CKAN dataset name, or 信息资源代码 (or "第N行" for a broken row)
    name: str | None = None  # the portal's identifier
    title: str | None = None
    summary: str = ""
    department_code: str | None = None
    department_name: str | None = None
    resource_code: str | None = None
    domain: str | None = None
    data_format: str | None = None
    share_class: str | None = None
    share_conditions: str | None = None
    open_class: str | None = None  # the catalog's own words
    open_conditions: str | None = None
    legal_basis: str | None = None
    update_cycle: str | None = None
    published: str | None = None  # as written; parsed by published_date()
    tags: list[str] = field(default_factory=list)
    files: list[FileRef] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    problems: list[Message | str] = field(default_factory=list)  # a broken row: why it cannot be used

    def metadata_fingerprint(self) -> str:
        data = asdict(self)
        data.pop("files")
        data.pop("problems")
        return _digest(data)

    def published_date(self) -> dt.date | None:
        return parse_date(self.published)


def files_fingerprint(hints: list[str]) -> str:
    return _digest(sorted(hints))


def _digest(data: object) -> str:
    return hashlib.sha256(
        json.dumps(data, ensure_ascii=False, sort_keys=True, default=str).encode()
    ).hexdigest()


_DATE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})")


def parse_date(value: object) -> dt.date | None:
    """2023-05-01, 2023/5/1, 2023.5.1, 2023年5月1日, an ISO timestamp, or an Excel date cell."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    m = _DATE.search(str(value))
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def clean(value: object) -> str | None:
    """Cell text without surrounding space; empty is None."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None

"""Sources of catalog entries: a CKAN action API, or a department's catalog spreadsheet.

A source lists all its entries up front (list_entries); if it cannot be read as a whole it
raises SourceError, and the harvest stops with a non-zero exit without withdrawing anything.
A problem in one entry is carried in that entry (CatalogEntry.problems) instead.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urljoin, urlparse

import requests

from portal.messages import _

from .convert import ConversionError, detect_encoding
from .entry import CatalogEntry, FileRef, clean


class SourceError(Exception):
    """The source as a whole cannot be read."""


class FetchError(Exception):
    """One data file cannot be fetched."""


class CatalogSource(Protocol):
    """What the harvest reads of a source: CkanSource, SpreadsheetSource (or a test's own)."""

    kind: str
    location: str
    fetch_policy: FetchPolicy

    def list_entries(self) -> list[CatalogEntry]: ...


DATA_FORMATS = {"csv", "xlsx", "txt", "tsv"}


def _format_of(name: str, declared: str | None) -> str | None:
    declared = (declared or "").strip().lower().lstrip(".")
    if declared in DATA_FORMATS:
        return "xlsx" if declared == "xlsx" else "csv"
    suffix = Path(urlparse(name).path).suffix.lower().lstrip(".")
    if suffix in DATA_FORMATS:
        return "xlsx" if suffix == "xlsx" else "csv"
    return None


# --------------------------------------------------------------------------- fetching
#
# Sources stay in their lane: a catalog names data files, and a hostile or careless one names
# /etc/passwd, ../../instance/secret_key, http://127.0.0.1/admin or a host that collects
# tokens. A spreadsheet's files resolve inside the spreadsheet's folder only (symlinks
# resolved); remote files are http(s) from hosts on an allow-list (the CKAN host, and
# PORTAL_HARVEST_ALLOWED_HOSTS), redirects stay on the same host, loopback, link-local and
# private addresses are refused unless the host is listed by name or address, and each file
# has a size and a time limit. The CKAN token is sent to the CKAN host only.

DEFAULT_MAX_FILE_MB = 2048
DEFAULT_FILE_SECONDS = 600.0
MAX_REDIRECTS = 3


def _env_hosts() -> tuple[str, ...]:
    return tuple(
        h.strip().lower()
        for h in re.split(r"[,\s]+", os.environ.get("PORTAL_HARVEST_ALLOWED_HOSTS", ""))
        if h.strip()
    )


def host_key(url: str) -> str:
    """host:port of a URL, lower-case, with the scheme's default port written out."""
    parts = urlparse(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = (parts.hostname or "").lower()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class FetchPolicy:
    root: Path | None = None  # local data files must resolve inside this folder
    allowed_hosts: tuple[str, ...] = ()  # "host", "host:port", ".example.gov.cn", "10.1.2.3", "10.0.0.0/8"
    token_headers: dict = field(default_factory=dict)
    token_host: str | None = None  # host:port that receives token_headers
    max_bytes: int = field(
        default_factory=lambda: int(os.environ.get("PORTAL_HARVEST_MAX_FILE_MB", DEFAULT_MAX_FILE_MB)) << 20
    )
    max_seconds: float = field(
        default_factory=lambda: float(os.environ.get("PORTAL_HARVEST_FILE_SECONDS", DEFAULT_FILE_SECONDS))
    )

    # -- local files

    def local_file(self, path: str) -> Path:
        if self.root is None:
            raise FetchError(_("此来源不允许读取本地文件"))
        root = self.root.resolve()
        target = (root / path).resolve()  # symlinks followed: where the bytes really are
        if target != root and root not in target.parents:
            raise FetchError(_("数据文件不在目录文件所在的文件夹内，已拒绝：%(path)s", path=path))
        return target

    # -- remote files

    def check_url(self, url: str) -> None:
        parts = urlparse(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError(_("只接受 http(s) 链接，已拒绝：%(url)s", url=url[:200]))
        if parts.username or parts.password:
            raise FetchError(_("链接中不得含用户名或密码，已拒绝"))
        host, key = parts.hostname.lower(), host_key(url)
        listed = self._listed(host, key)
        if not listed:
            shown = parts.hostname + (f":{parts.port}" if parts.port else "")
            raise FetchError(
                _(
                    "数据文件所在的主机 %(shown)s 不在允许采集的名单中，已拒绝（管理员可在 PORTAL_HARVEST_ALLOWED_HOSTS 中添加）",
                    shown=shown,
                )
            )
        if listed == "suffix":  # matched only by a domain suffix: its addresses must be public
            for address in _addresses(host):
                if not address.is_global:
                    raise FetchError(
                        _("主机 %(host)s 解析到内部地址 %(address)s，已拒绝", host=host, address=address)
                    )

    def _listed(self, host: str, key: str) -> str | None:
        import ipaddress

        for entry in self.allowed_hosts:
            if entry in (host, key):
                return "exact"
            if entry.startswith(".") and (host.endswith(entry) or host == entry[1:]):
                return "suffix"
            if "/" in entry:
                try:
                    if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                        return "exact"
                except ValueError:
                    continue
        return None

    def headers_for(self, url: str) -> dict:
        return dict(self.token_headers) if self.token_host and host_key(url) == self.token_host else {}


def _addresses(host: str) -> list:
    import ipaddress
    import socket

    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError as exc:
        raise FetchError(_("无法解析主机 %(host)s", host=host)) from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def fetch_file(
    ref: FileRef,
    dest: Path,
    *,
    policy: FetchPolicy | None = None,
    timeout: float = 60.0,
    headers: dict | None = None,
) -> tuple[str, int]:
    """Copy or download a file to dest under the source's policy, hashing as it streams.
    Returns (sha256, size). `headers` (no policy) is for callers that fetch their own URLs."""
    import time

    policy = policy or FetchPolicy(token_headers=headers or {})
    digest = hashlib.sha256()
    deadline = time.monotonic() + policy.max_seconds
    try:
        if ref.path:
            with open(policy.local_file(ref.path), "rb") as fin:
                size = _write(iter(lambda: fin.read(1 << 20), b""), dest, policy, digest)
        else:
            resp = _follow_redirects(ref.url or "", policy, timeout)
            with resp:
                if resp.status_code != 200:
                    raise FetchError(
                        _("下载失败（HTTP %(status)s）：%(url)s", status=resp.status_code, url=ref.url)
                    )
                declared = resp.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > policy.max_bytes:
                    raise _too_large(policy)
                size = _write(resp.iter_content(1 << 20), dest, policy, digest, deadline)
    except FileNotFoundError as exc:
        raise FetchError(_("数据文件不存在：%(name)s", name=Path(ref.path or "").name)) from exc
    except IsADirectoryError as exc:
        raise FetchError(_("数据文件是一个文件夹：%(name)s", name=Path(ref.path or "").name)) from exc
    except requests.RequestException as exc:
        raise FetchError(
            _("无法下载数据文件：%(url)s（%(error)s）", url=ref.url, error=type(exc).__name__)
        ) from exc
    except OSError as exc:
        raise FetchError(_("无法读取数据文件：%(error)s", error=exc.strerror or str(exc))) from exc
    return digest.hexdigest(), size


def _follow_redirects(url: str, policy: FetchPolicy, timeout: float) -> requests.Response:
    """The answer at the end of at most MAX_REDIRECTS redirects, each checked by the policy:
    staying on the same host, or going from http to https on it."""
    for _hop in range(MAX_REDIRECTS + 1):
        policy.check_url(url)
        resp = requests.get(
            url, headers=policy.headers_for(url), stream=True, timeout=timeout, allow_redirects=False
        )
        if not resp.is_redirect:
            return resp
        target = urljoin(url, resp.headers.get("Location", ""))
        resp.close()
        upgrade = (
            urlparse(target).scheme == "https"
            and urlparse(target).hostname == urlparse(url).hostname
            and host_key(target).endswith(":443")
        )
        if host_key(target) != host_key(url) and not upgrade:
            raise FetchError(_("数据文件链接跳转到另一个主机，已拒绝：%(url)s", url=target[:200]))
        url = target
    raise FetchError(_("跳转次数过多"))


def _write(
    chunks: Iterable[bytes],
    dest: Path,
    policy: FetchPolicy,
    digest: hashlib._Hash,
    deadline: float | None = None,
) -> int:
    """Write the chunks to dest, hashing them, within the policy's size (and a download's
    time). Returns the size."""
    import time

    size = 0
    with open(dest, "wb") as fout:
        for chunk in chunks:
            size += len(chunk)
            if size > policy.max_bytes:
                raise _too_large(policy)
            if deadline is not None and time.monotonic() > deadline:
                raise FetchError(_("下载超过 %(seconds)s 秒，已停止", seconds=round(policy.max_seconds)))
            digest.update(chunk)
            fout.write(chunk)
    return size


def _too_large(policy: FetchPolicy) -> FetchError:
    return FetchError(_("文件超过 %(max_bytes_20)s MB，已拒绝", max_bytes_20=policy.max_bytes >> 20))


# --------------------------------------------------------------------------- CKAN


class CkanSource:
    """The internal sharing platform's CKAN action API, read with ckanapi.

    Organizations are departments, datasets are entries, uploaded resources are data files;
    catalog fields travel as dataset extras. Private datasets are read with the token.
    """

    kind = "ckan"
    PAGE = 1000  # CKAN caps rows at 1000

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 60.0,
        allowed_hosts: tuple[str, ...] | None = None,
    ) -> None:
        from ckanapi import RemoteCKAN

        self.location = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.api = RemoteCKAN(self.location, apikey=token, user_agent="dongchangfu-portal-harvester/0.1")
        me = host_key(self.location)
        # The CKAN host (and port: not every service on that machine) is allowed, since its
        # uploads live there, and it is the only one given the token.
        self.fetch_policy = FetchPolicy(
            allowed_hosts=(me, *(_env_hosts() if allowed_hosts is None else allowed_hosts)),
            token_headers={"Authorization": token} if token else {},
            token_host=me,
        )

    def list_entries(self) -> list[CatalogEntry]:
        from ckanapi.errors import CKANAPIError

        packages: list[dict] = []
        start = 0
        try:
            while True:
                page = self.api.action.package_search(
                    q="*:*",
                    rows=self.PAGE,
                    start=start,
                    sort="name asc",
                    include_private=True,
                    include_drafts=False,
                )
                packages.extend(page["results"])
                start += self.PAGE
                if start >= page["count"] or not page["results"]:
                    break
        except (CKANAPIError, requests.RequestException, OSError, ValueError) as exc:
            raise SourceError(
                _("无法读取 CKAN 目录 %(url)s：%(error)s", url=self.location, error=str(exc))
            ) from exc
        return [self.entry_of(p) for p in packages]

    def entry_of(self, pkg: dict) -> CatalogEntry:
        extras = {e["key"]: e.get("value") for e in pkg.get("extras") or [] if e.get("key")}
        org = pkg.get("organization") or {}
        entry = CatalogEntry(
            source_ref=pkg["name"],
            name=pkg["name"],
            title=clean(pkg.get("title")) or pkg["name"],
            summary=clean(pkg.get("notes")) or "",
            department_code=clean(org.get("name")),
            department_name=clean(org.get("title")) or clean(org.get("name")),
            resource_code=clean(extras.pop("resource_code", None)),
            domain=clean(extras.pop("domain", None)),
            share_class=clean(extras.pop("share_class", None)),
            share_conditions=clean(extras.pop("share_conditions", None)),
            open_class=clean(extras.pop("open_class", None)),
            open_conditions=clean(extras.pop("open_conditions", None)),
            legal_basis=clean(extras.pop("legal_basis", None)),
            update_cycle=clean(extras.pop("update_cycle", None)),
            published=clean(extras.pop("published", None)),
            tags=sorted(t.get("display_name") or t["name"] for t in pkg.get("tags") or []),
            extra={k: v for k, v in extras.items() if v not in (None, "")},
        )
        if not entry.department_code:
            entry.problems.append(_("数据集没有所属部门（组织）"))
        formats = set()
        taken_tables: set = set()
        for res in _preferring_csv(pkg.get("resources") or []):
            if str(res.get("restricted", "")).lower() in ("true", "1"):
                # Behind a licence at the source (another portal): its link is the page to
                # apply on, not data. The entry comes as metadata with that link.
                if str(res.get("url") or "").startswith(("https://", "http://")):
                    entry.extra.setdefault("apply_url", res["url"])
                continue
            if res.get("table_id") is not None:
                # A portal (this one) lists each table in several formats: one copy is enough.
                if res["table_id"] in taken_tables:
                    continue
                taken_tables.add(res["table_id"])
            url = res.get("url")
            fmt = _format_of(url or "", res.get("format"))
            if not url or not fmt:
                continue
            formats.add(fmt.upper())
            name = res.get("name") or unquote(Path(urlparse(url).path).name) or res["id"]
            hint = "|".join(str(res.get(k) or "") for k in ("id", "url", "last_modified", "size", "hash"))
            entry.files.append(FileRef(name=name, url=url, media_format=fmt, version_hint=hint))
        entry.data_format = ", ".join(sorted(formats)) or None
        return entry


def _preferring_csv(resources: list[dict]) -> list[dict]:
    return sorted(resources, key=lambda r: str(r.get("format") or "").lower() != "csv")


# --------------------------------------------------------------------------- spreadsheet

COLUMNS: dict[str, tuple[str, ...]] = {
    "resource_code": ("信息资源代码", "资源代码", "resource_code", "code"),
    "title": ("信息资源名称", "资源名称", "title", "name"),
    "department_name": ("信息资源提供方", "提供方", "提供单位", "provider", "department"),
    "department_code": ("信息资源提供方代码", "提供方代码", "provider_code", "department_code"),
    "summary": ("信息资源摘要", "摘要", "summary", "description"),
    "domain": ("数据领域", "领域", "domain"),
    "data_format": ("信息资源格式", "格式", "format"),
    "share_class": ("共享类型", "共享属性", "share_class"),
    "share_conditions": ("共享条件", "share_conditions"),
    "open_class": ("开放类型", "开放属性", "open_class"),
    "open_conditions": ("开放条件", "open_conditions"),
    "legal_basis": ("法律依据", "开放依据", "legal_basis"),
    "update_cycle": ("更新周期", "update_cycle"),
    "published": ("发布日期", "published", "publish_date"),
    "data_file": ("数据文件", "data_file", "file"),
    "tags": ("关键词", "标签", "tags", "keywords"),
    "items": ("信息项", "数据项", "data_items"),
    "sensitive": ("涉及秘密或隐私", "是否涉及国家秘密、商业秘密或个人隐私", "涉密涉隐私", "sensitive"),
}


def _norm_header(text: object) -> str:
    return re.sub(r"[\s*＊（）()]", "", str(text or "")).lower()


def _keep_extras(entry: CatalogEntry, cells: dict) -> None:
    """Catalog cells kept as written beside the entry's fields."""
    for key, extra_key in (("sensitive", "sensitive"), ("items", "信息项")):
        if cells.get(key):
            entry.extra[extra_key] = cells[key]
    if entry.published and not entry.published_date():
        entry.extra["published_raw"] = entry.published


_HEADER_LOOKUP = {_norm_header(alias): key for key, aliases in COLUMNS.items() for alias in aliases}


class SpreadsheetSource:
    """A catalog exported by a department: XLSX, or CSV in UTF-8 (with or without BOM), GBK or
    GB18030. Headers in Chinese, English aliases accepted; title rows above the header are
    skipped. A 数据文件 is a path relative to the spreadsheet, or a URL."""

    kind = "spreadsheet"

    def __init__(
        self, path: str | os.PathLike, timeout: float = 60.0, allowed_hosts: tuple[str, ...] | None = None
    ) -> None:
        self.path = Path(path).resolve()
        self.location = str(self.path)
        self.timeout = timeout
        # Data files: inside the catalog's folder, or on a host the operator allowed.
        self.fetch_policy = FetchPolicy(
            root=self.path.parent, allowed_hosts=_env_hosts() if allowed_hosts is None else allowed_hosts
        )

    def list_entries(self) -> list[CatalogEntry]:
        rows = self._read_rows()
        header_at, mapping = self._find_header(rows)
        entries: list[CatalogEntry] = []
        seen: set[str] = set()
        for offset, row in enumerate(rows[header_at + 1 :], start=header_at + 2):
            cells = {key: clean(row[i]) if i < len(row) else None for i, key in mapping.items()}
            if not any(cells.values()):
                continue  # blank line
            entry = self._entry_of(cells, offset)
            if entry.resource_code:
                key = entry.resource_code.lower()
                if key in seen:
                    entry.problems.append(_("信息资源代码重复：%(code)s", code=entry.resource_code))
                    entry.source_ref = f"第{offset}行"
                seen.add(key)
            entries.append(entry)
        return entries

    def _entry_of(self, cells: dict, line: int) -> CatalogEntry:
        code = cells.get("resource_code")
        entry = CatalogEntry(
            source_ref=code or f"第{line}行",
            name=code.lower() if code else None,
            title=cells.get("title"),
            summary=cells.get("summary") or "",
            department_name=cells.get("department_name"),
            department_code=cells.get("department_code") or cells.get("department_name"),
            resource_code=code,
            domain=cells.get("domain"),
            data_format=cells.get("data_format"),
            share_class=cells.get("share_class"),
            share_conditions=cells.get("share_conditions"),
            open_class=cells.get("open_class"),
            open_conditions=cells.get("open_conditions"),
            legal_basis=cells.get("legal_basis"),
            update_cycle=cells.get("update_cycle"),
            published=cells.get("published"),
            tags=sorted({t for t in re.split(r"[,，;；、\s]+", cells.get("tags") or "") if t}),
        )
        _keep_extras(entry, cells)
        if not code:
            entry.problems.append(_("第%(line)s行缺少信息资源代码", line=line))
        elif not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z\-_./]{0,99}", code):
            entry.problems.append(_("信息资源代码格式错误「%(code)s」", code=code))
        if not entry.title:
            entry.problems.append(_("第%(line)s行缺少信息资源名称", line=line))
        if not entry.department_name:
            entry.problems.append(_("第%(line)s行缺少信息资源提供方", line=line))
        for part in re.split(r"[;；\n]+", cells.get("data_file") or ""):
            part = part.strip()
            if not part:
                continue
            if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://", part):  # a URL of any scheme: the policy decides
                entry.files.append(
                    FileRef(
                        name=unquote(Path(urlparse(part).path).name) or part[:100],
                        url=part,
                        media_format=_format_of(part, None),
                    )
                )
            else:  # resolved inside the catalog's folder when fetched (FetchPolicy.local_file)
                entry.files.append(
                    FileRef(name=Path(part).name, path=part, media_format=_format_of(part, None))
                )
        return entry

    # ---- reading the sheet

    def _read_rows(self) -> list[list]:
        if not self.path.exists():
            raise SourceError(_("目录文件不存在：%(path)s", path=str(self.path)))
        suffix = self.path.suffix.lower()
        if suffix in (".xlsx", ".xlsm"):
            return self._read_xlsx()
        if suffix in (".csv", ".txt", ".tsv"):
            return self._read_csv()
        raise SourceError(_("不支持的目录格式 %(suffix)s（请用 XLSX 或 CSV）", suffix=suffix))

    def _read_xlsx(self) -> list[list]:
        from openpyxl import load_workbook
        from openpyxl.utils.exceptions import InvalidFileException

        try:
            wb = load_workbook(self.path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
            raise SourceError(_("目录电子表格已损坏：%(error)s", error=str(exc))) from exc
        try:
            for ws in wb.worksheets:
                rows = [list(r) for r in ws.iter_rows(values_only=True)]
                try:
                    self._find_header(rows)
                    return rows
                except SourceError:
                    continue
        except zipfile.BadZipFile as exc:
            raise SourceError(_("目录电子表格已损坏：%(error)s", error=str(exc))) from exc
        finally:
            wb.close()
        raise SourceError(_("目录中找不到表头（信息资源代码、信息资源名称…）"))

    def _read_csv(self) -> list[list]:
        try:
            encoding = detect_encoding(self.path)
        except ConversionError as exc:
            raise SourceError(str(exc)) from exc
        data = self.path.read_bytes()
        for enc in (encoding, "gb18030"):
            try:
                text = data.decode("utf-8-sig" if enc.startswith("utf-8") else enc)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise SourceError(_("目录文件编码无法识别"))
        dialect = (
            csv.excel_tab
            if text.split("\n", 1)[0].count("\t") > text.split("\n", 1)[0].count(",")
            else csv.excel
        )
        return [row for row in csv.reader(io.StringIO(text, newline=""), dialect)]

    @staticmethod
    def _find_header(rows: list[list]) -> tuple[int, dict[int, str]]:
        for i, row in enumerate(rows[:15]):
            mapping = {
                j: _HEADER_LOOKUP[_norm_header(c)]
                for j, c in enumerate(row)
                if _norm_header(c) in _HEADER_LOOKUP
            }
            if {"resource_code", "title"} <= set(mapping.values()) or len(mapping) >= 4:
                return i, mapping
        raise SourceError(_("目录中找不到表头（信息资源代码、信息资源名称…）"))


def open_source(
    *, ckan: str | None = None, token: str | None = None, catalog: str | None = None, timeout: float = 60.0
) -> CkanSource | SpreadsheetSource:
    if ckan:
        return CkanSource(ckan, token, timeout)
    if catalog:
        return SpreadsheetSource(catalog, timeout)
    raise SourceError(_("需要 --ckan URL 或 --catalog PATH"))

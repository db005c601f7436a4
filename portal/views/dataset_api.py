"""The dataset page's API section (templates/dataset/_api.html): this dataset's data API and
CKAN calls with copyable URLs, and a try-it form — a GET form, no script — whose call the
portal makes itself, through the whole application as any client's call goes (the same views,
limits and counting), showing the request URL, the status and the first rows of the answer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import unquote, urlencode

from flask import current_app, request, url_for

from ..catalog import rows
from ..models import Dataset, DataTable, OpenClass
from ..web import portal

TRY_ROWS = 5
SHOWN_CHARS = 4000
CALLS = ("rows", "fields", "package_show")


@dataclass
class Call:
    kind: str
    url: str


@dataclass
class Tried:
    url: str
    status: int
    body: str


@dataclass
class ApiSection:
    open: bool  # unconditional: anyone may call it; conditional: a grant and a token
    calls: list[Call] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    example_column: str | None = None
    example_value: str | None = None
    args: dict[str, str] = field(default_factory=dict)
    tried: Tried | None = None


def _example(ds: Dataset, table: DataTable) -> tuple[str | None, str | None]:
    """A real column to filter on (the first text one) and, for open data, a value it holds."""
    texts = [c["name"] for c in table.schema if str(c.get("type", "")).startswith(("string", "large_string"))]
    column = (texts or [c["name"] for c in table.schema] or [None])[0]
    if column is None or ds.open_class != OpenClass.UNCONDITIONAL.value:
        return column, None
    try:
        page = rows.query_rows(
            portal().storage.local_path(table.parquet_path),
            rows.RowQuery(fields=[column], limit=1),
            rows.Scope(),
        )
    except (rows.QueryError, OSError):
        return column, None
    found = page.table.column(0).to_pylist() if page.table.num_rows else []
    return column, (str(found[0]) if found and found[0] is not None else None)


def _url(endpoint: str, **params: str) -> str:
    return url_for(endpoint, _external=True, **{k: v for k, v in params.items() if v})


def section(ds: Dataset) -> ApiSection:
    tables = ds.served_tables
    out = ApiSection(open=ds.open_class == OpenClass.UNCONDITIONAL.value)
    if tables:
        out.columns = [c["name"] for c in tables[0].schema]
        out.example_column, out.example_value = _example(ds, tables[0])
        out.calls.append(Call("rows", _url("data_api.table_rows", name=ds.name, limit="10")))
        if out.example_column:
            # Readable as written (a client encodes it): eq[企业名称]=…
            filtered = f"eq[{out.example_column}]={out.example_value or '…'}&limit=10"
            out.calls.append(Call("filter", _url("data_api.table_rows", name=ds.name) + "?" + filtered))
        out.calls.append(Call("fields", _url("data_api.table_fields", name=ds.name)))
    out.calls.append(Call("package_show", _url("api.package_show", id=ds.name)))
    out.args = {
        "api_call": request.args.get("api_call", "rows"),
        "api_col": request.args.get("api_col", ""),
        "api_val": request.args.get("api_val", "")[:200],
        "api_fields": request.args.get("api_fields", "")[:500],
    }
    if out.open and request.args.get("api_call") in CALLS:
        out.tried = _try(ds, out.args, bool(tables))
    return out


def _try_url(ds: Dataset, args: dict[str, str], has_rows: bool) -> str | None:
    call = args["api_call"]
    if call == "package_show":
        return url_for("api.package_show", id=ds.name)
    if not has_rows:
        return None
    if call == "fields":
        return url_for("data_api.table_fields", name=ds.name)
    params: dict[str, str] = {"limit": str(TRY_ROWS)}
    if args["api_fields"]:
        params["fields"] = args["api_fields"]
    if args["api_col"]:
        params[f"eq[{args['api_col']}]"] = args["api_val"]
    return url_for("data_api.table_rows", name=ds.name) + "?" + urlencode(params)


def _try(ds: Dataset, args: dict[str, str], has_rows: bool) -> Tried | None:
    """The call made through the application, as the asker's own would be (their address)."""
    path = _try_url(ds, args, has_rows)
    if path is None:
        return None
    client = current_app.test_client()
    answer = client.get(
        path,
        base_url=request.host_url,
        environ_base={"REMOTE_ADDR": request.remote_addr or "127.0.0.1"},
        headers={"Accept-Language": request.headers.get("Accept-Language", "")},
    )
    text = answer.get_data(as_text=True)
    try:
        body = json.loads(text)
    except ValueError:
        shown = text[:SHOWN_CHARS]
    else:
        if isinstance(body, dict) and isinstance(body.get("records"), list):
            body = {"records": body["records"][:TRY_ROWS]} | {
                k: v for k, v in body.items() if k != "records"
            }  # the rows first, then the rest
        shown = json.dumps(body, ensure_ascii=False, indent=2)
        if len(shown) > SHOWN_CHARS:
            shown = shown[:SHOWN_CHARS] + "\n…"
    return Tried(url=request.host_url.rstrip("/") + unquote(path), status=answer.status_code, body=shown)

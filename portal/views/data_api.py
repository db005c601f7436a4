"""The data API: rows of a dataset's table, as JSON or CSV.

    GET /api/data/<name>?fields=a,b&eq[a]=x&gte[b]=10&q=药店&sort=-b&limit=100&offset=0&format=csv

Unconditional datasets answer anyone. Conditional ones answer only the holder of a grant in
force (API token or session), within the grant's fields and rows, and each call is logged
as a licensed download. Not-open, held and withdrawn datasets are 404 like any unknown name.
Every answer states its source department and acquisition date (Art. 25).
"""

from __future__ import annotations

import io
import json
import time
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from flask import Blueprint, Response, current_app, g, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from licenses.grants import grant_for_api, log_api_rows
from licenses.sandbox import sandbox_grant_for
from portal import clock
from portal.messages import Message, _

from .. import catalog
from ..authz import public
from ..catalog import rows
from ..catalog.bundle import described
from ..limits import limiter
from ..models import ApplicationItem, Dataset, DataTable, Grant, OpenClass
from ..page_cache import cacheable
from ..web import db, kept_part, part_generation, portal, shown_dataset

bp = Blueprint("data_api", __name__, url_prefix="/api/data")
COMPARISONS = ("eq", *rows.RANGE_OPERATORS)


class ApiError(Exception):
    def __init__(self, status: int, message: Message | str, **headers: str) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Response:
    return _json({"error": {"status": exc.status, "message": str(exc.message)}}, exc.status, exc.headers)


@bp.after_request
def _cors(response: Response) -> Response:
    """Readable from any web page; a licensed call carries its token, never cookies."""
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Headers"] = "Authorization"
    response.headers["Access-Control-Expose-Headers"] = "Link, X-Attribution, X-Total-Count"
    return response


def _rate() -> str:
    return current_app.config.get("DATA_API_RATE") or portal().settings.data_api_rate


def _json(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status=status,
        headers=headers or {},
        mimetype="application/json",
    )


def parse_query(args: MultiDict[str, str]) -> rows.RowQuery:
    """Query-string parameters → RowQuery. Comparisons are written deepObject style:
    eq[column]=value (repeat it for any of several values), gt/gte/lt/lte[column]=value."""
    query = rows.RowQuery()
    for key in args:
        op, bracket, rest = key.partition("[")
        if not bracket:
            continue
        if op not in COMPARISONS or not rest.endswith("]") or not rest[:-1]:
            raise rows.QueryError(
                _(
                    "无法识别的参数 %(key)s：请写 eq[列名]、gt[列名]、gte[列名]、lt[列名] 或 lte[列名]",
                    key=key,
                )
            )
        column = rest[:-1]
        if op == "eq":
            query.equals.setdefault(column, []).extend(args.getlist(key))
        else:
            query.ranges.setdefault(column, {})[op] = args.get(key, "")
    if fields := [f.strip() for raw in args.getlist("fields") for f in raw.split(",") if f.strip()]:
        query.fields = list(dict.fromkeys(fields))
    query.text = args.get("q", "")[:200]
    for part in (p.strip() for p in args.get("sort", "").split(",")):
        if part:
            query.sort.append((part[1:], True) if part.startswith("-") else (part.lstrip("+"), False))
    try:
        query.limit = int(args.get("limit", rows.DEFAULT_LIMIT))
        query.offset = int(args.get("offset", 0))
    except ValueError as exc:
        raise rows.QueryError(_("limit 和 offset 须为整数")) from exc
    query.count = args.get("count", "").lower() in ("1", "true", "yes")
    return query


def _table(ds: Dataset, table_id: str | None) -> DataTable:
    tables = ds.served_tables
    if table_id not in (None, ""):
        tables = [t for t in tables if str(t.id) == table_id]
    if not tables:
        raise ApiError(404, _("没有该数据表"))
    return tables[0]


def _scope(ds: Dataset) -> tuple[rows.Scope, Grant | None, ApplicationItem | None]:
    """What the asker may see: everything of unconditional data; the grant's part of conditional data."""
    if ds.open_class == OpenClass.UNCONDITIONAL.value:
        return rows.Scope(), None, None
    apply_url = url_for("catalog.dataset", name=ds.name, _external=True) + "#apply"
    if not current_user.is_authenticated:
        raise ApiError(
            401,
            _(
                "有条件开放数据须凭授权访问，请使用 API 令牌（Authorization: Bearer …）；申请：%(url)s",
                url=apply_url,
            ),
            **{"WWW-Authenticate": 'Bearer realm="portal"'},
        )
    found = grant_for_api(db(), current_user, ds.id)
    if found is None and sandbox_grant_for(db(), current_user, ds.id) is not None:
        raise ApiError(
            403,
            _(
                "您的授权为数据沙箱交付：数据不出域，不能读取行数据；请在数据沙箱中查询：%(url)s",
                url=url_for("sandbox.home", _external=True),
            ),
        )
    if found is None:
        raise ApiError(403, _("您没有该数据集的有效授权；申请：%(url)s", url=apply_url))
    grant, item = found
    return rows.Scope(fields=item.fields_approved, row_filter=item.row_filter), grant, item


def _jsonable(table: pa.Table) -> list[dict]:
    """Dates as ISO text, NaN as null, decimals as numbers: JSON any client reads."""
    columns = {}
    table = rows.times_as_text(table)
    for name, column in zip(table.column_names, table.columns, strict=True):
        t = column.type
        if pa.types.is_floating(t):
            column = pc.if_else(pc.is_nan(column), pa.scalar(None, t), column)
        elif pa.types.is_decimal(t):
            column = pc.cast(column, pa.float64())
        columns[name] = column
    return pa.table(columns).to_pylist() if columns else []


@bp.route("/<name>", methods=["GET"])
@public
@cacheable
@limiter.limit(_rate)
def table_rows(name: str) -> ResponseReturnValue:
    started = time.perf_counter()
    generation = part_generation()  # before the dataset is read (portal/fragments.py)
    shown = shown_dataset(generation, name)  # the row's facts, kept: a kept answer reads no row
    if shown is None:
        raise ApiError(404, _("未找到该数据集"))
    g.api_dataset_id = shown.id  # counted as a call about it (portal/views/api_usage.py)
    if shown.open_class == OpenClass.UNCONDITIONAL.value:
        # Unconditional data: the same answer for everyone asking this host today with these
        # parameters (the file is the dataset's current version: a new one moves the generation).
        key = ("data_api", shown.id, request.host_url, clock.today(), g.lang, _args())
        body, headers, mimetype = kept_part(
            generation,
            key,
            lambda: _kept_answer(_rows_answer(_public_dataset(name), rows.Scope(), None)[0]),
            size=lambda kept: len(kept[0]) + 512,
        )
        return Response(body, headers=headers, mimetype=mimetype)
    s = db()
    ds = _public_dataset(name)
    scope, grant, _item = _scope(ds)
    if grant is None:  # a conditional dataset reclassified unconditional since the row was kept
        return _rows_answer(ds, scope, None)[0]
    response, n_rows = _rows_answer(ds, scope, grant)
    log_api_rows(
        s, current_user, grant, ds.id, n_rows, len(response.get_data()), time.perf_counter() - started
    )
    s.commit()
    return response


def _public_dataset(name: str) -> Dataset:
    ds = catalog.get_public_dataset(db(), name, whole=False)
    if ds is None:
        raise ApiError(404, _("未找到该数据集"))
    return ds


def _args() -> tuple:
    return tuple(sorted(request.args.items(multi=True)))


def _kept_answer(response: Response) -> tuple[bytes, dict[str, str], str]:
    """An answer as kept: its body, the headers the view set, its type."""
    own = {k: v for k, v in response.headers.items() if k.lower() not in ("content-type", "content-length")}
    return response.get_data(), own, response.mimetype or "application/json"


def _rows_answer(ds: Dataset, scope: rows.Scope, grant: Grant | None) -> tuple[Response, int]:
    """The rows the query asks for, within the asker's scope, as JSON or CSV; and their number."""
    table = _table(ds, request.args.get("table"))
    fmt = request.args.get("format", "json").lower()
    if fmt not in ("json", "csv"):
        raise ApiError(400, _("format 须为 json 或 csv"))
    try:
        query = parse_query(request.args)
        page = rows.query_rows(portal().storage.local_path(table.parquet_path), query, scope)
    except rows.QueryError as exc:
        raise ApiError(400, str(exc)) from exc

    today = clock.today().isoformat()
    attribution = catalog.attribution_line(ds)
    headers = {"X-Attribution": quote(attribution)}
    if page.more:
        nxt = request.args.to_dict(flat=False) | {"offset": [str(query.offset + query.limit)]}
        next_url = (
            url_for("data_api.table_rows", name=ds.name, _external=True)
            + "?"
            + "&".join(f"{quote(k)}={quote(v)}" for k, values in nxt.items() for v in values)
        )
        headers["Link"] = f'<{next_url}>; rel="next"'
    else:
        next_url = None
    if page.total is not None:
        headers["X-Total-Count"] = str(page.total)
    licence = None
    if grant is not None:
        licence = {
            "number": grant.licence_number,
            "valid_until": grant.valid_until.isoformat(),
            "url": url_for("licensing.licence", number=grant.licence_number, _external=True),
        }
        headers["X-Licence-Number"] = grant.licence_number

    if fmt == "csv":
        buf = io.BytesIO()
        pacsv.write_csv(rows.times_as_text(page.table), buf)
        body = buf.getvalue()
        headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(ds.name)}-{today}.csv"
        response = Response(body, headers=headers, mimetype="text/csv")
    else:
        response = _json(
            {
                "dataset": ds.name,
                "title": ds.title,
                "table": table.id,
                "source": ds.department.name,
                "acquired": today,
                "attribution": attribution,
                "licence": licence,
                "fields": [{"name": f.name, "type": str(f.type)} for f in page.schema],
                "records": _jsonable(page.table),
                "offset": query.offset,
                "limit": query.limit,
                "more": page.more,
                "next": next_url,
                "total": page.total,
            },
            headers=headers,
        )
    return response, page.table.num_rows


@bp.route("/<name>/fields", methods=["GET"])
@public
@cacheable
@limiter.limit(_rate)
def table_fields(name: str) -> ResponseReturnValue:
    """The tables of a dataset and the columns the asker may query, with their types."""
    s = db()
    ds = catalog.get_public_dataset(s, name)
    if ds is None:
        raise ApiError(404, _("未找到该数据集"))
    scope, grant, _item = _scope(ds)
    tables = []
    for t in ds.served_tables:
        visible = [c for c in t.schema if scope.fields is None or c["name"] in scope.fields]
        tables.append(
            {
                "table": t.id,
                "name": t.sheet or t.distribution.source_name,
                "rows": t.row_count if grant is None and not scope.row_filter else None,
                "fields": described(ds, visible),
                "rows_url": url_for("data_api.table_rows", name=ds.name, table=t.id, _external=True),
            }
        )
    return _json(
        {
            "dataset": ds.name,
            "title": ds.title,
            "open_class": ds.open_class,
            "licence": grant.licence_number if grant else None,
            "tables": tables,
        }
    )


# ---------------------------------------------------------------------- the API's own description

docs_bp = Blueprint("api_docs", __name__)


@docs_bp.get("/api/openapi.json")
@public
def openapi_json() -> ResponseReturnValue:
    from ..openapi import document

    response = _json(document())
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@docs_bp.get("/api/docs")
@public
def api_docs() -> ResponseReturnValue:
    """The OpenAPI document as a page: every operation, its parameters and answers."""
    from flask import render_template

    from ..openapi import document

    return render_template("api_docs.html", doc=document())

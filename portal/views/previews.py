"""The dataset page's "see before downloading": per served table, a chart, a map and the table
filtered and sorted by the reader — all through the data API's own parts: its query parsing
(data_api.parse_query), its engine (portal.catalog.rows) and its scope (data_api._scope), so
conditional data shows only to the holder of a grant in force, within the grant's fields and
rows, and to nobody else (not even as a count or a chart). Drawing is portal/preview_charts.py.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from flask import current_app, request, url_for
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from licenses.grants import log_api_rows

from .. import preview_charts as charts
from ..catalog import rows
from ..messages import Message, _
from ..models import OpenClass
from ..web import db, portal
from . import data_api

if TYPE_CHECKING:
    from pathlib import Path

    import pyarrow as pa

    from ..models import Dataset, DataTable, Grant

PAGE_ROWS = 20
OPERATORS = ("eq", "gt", "gte", "lt", "lte", "q")  # their words are in templates/dataset/_previews.html


def _reader_scope(ds: Dataset) -> tuple[rows.Scope, Grant | None] | None:
    """The data API's answer to "what may this reader see": everything of unconditional data,
    the grant's part of conditional data, or nothing (None)."""
    if ds.open_class not in (OpenClass.UNCONDITIONAL.value, OpenClass.CONDITIONAL.value):
        return None
    try:
        scope, grant, _item = data_api._scope(ds)
    except data_api.ApiError:
        return None
    return scope, grant


def known_places() -> list[str]:
    """The district's 街道/镇/乡, as named on the map's base."""
    return [p.name for p in charts.places(current_app.static_folder or "static")]


def for_dataset(ds: Dataset) -> dict[int, dict]:
    """{table id: what the page shows of it}; empty when previews are off or the reader may see nothing."""
    if not portal().settings.previews:
        return {}
    found = _reader_scope(ds)
    if found is None:
        return {}
    scope, grant = found
    masked = set((ds.masking or {}).keys())
    out = {}
    for t in ds.served_tables:
        args = request.args if request.args.get("table", str(t.id)) == str(t.id) else MultiDict()
        try:
            out[t.id] = _table(ds, t, scope, grant, args, masked)
        except FileNotFoundError:
            continue  # the page says the file is missing (catalog._preview tells the bureau)
    return out


def _table(
    ds: Dataset, t: DataTable, scope: rows.Scope, grant: Grant | None, args: MultiDict, masked: set[str]
) -> dict:
    path = portal().storage.local_path(t.parquet_path)
    schema = rows.open_table(path).schema
    visible = rows.visible_columns(schema, scope)
    kinds = charts.column_kinds(schema, [c for c in visible if c not in masked])
    return {
        "columns": visible,
        "kinds": kinds,
        "numbers": [c for c, k in kinds.items() if k in ("number", "year")],
        "number": charts.number,
        "row_cap": charts.ROW_CAP,
        "point_cap": charts.POINT_CAP,
        "filter": _filtered(ds, t, path, scope, grant, args),
        "chart": _chart(path, kinds, scope, args),
        "map": _map(path, schema, kinds, scope),
        "args": args,
        "licensed": grant is not None,
    }


# ---------------------------------------------------------------------- the filtered table


def api_args(args: MultiDict) -> MultiDict:
    """The page's form (column, operator, value; sort column and order) as the data API's
    query string: eq[列]=值 … or q=文字, sort=-列."""
    out: MultiDict = MultiDict()
    column, op, value = args.get("col", ""), args.get("op", "eq"), args.get("val", "")
    if op == "q" and value:
        out["q"] = value
    elif column and value:
        out[f"{op}[{column}]"] = value
    if sort := args.get("sort"):
        out["sort"] = ("-" if args.get("order") == "desc" else "") + sort
    return out


def _filter_errors(args: MultiDict) -> list[Message]:
    errors = []
    column, op, value = args.get("col", ""), args.get("op", "eq"), args.get("val", "")
    if op not in OPERATORS:
        errors.append(_("无法识别的比较方式"))
    elif value and op != "q" and not column:
        errors.append(_("请选择要筛选的字段"))
    elif column and op != "q" and not value:
        errors.append(_("请填写“%(column)s”的筛选值", column=column))
    return errors


def _filtered(
    ds: Dataset, t: DataTable, path: Path, scope: rows.Scope, grant: Grant | None, args: MultiDict
) -> dict | None:
    """The table as the reader asked for it; None when unconditional data is shown unfiltered
    (the page's own preview then shows it)."""
    asked = any(args.get(k) for k in ("col", "val", "sort")) or args.get("op") == "q"
    if not asked and grant is None:
        return None
    visible = rows.visible_columns(rows.open_table(path).schema, scope)
    out: dict[str, Any] = {"errors": _filter_errors(args), "rows": [], "columns": visible}
    query_args = api_args(args) if not out["errors"] else MultiDict()
    out["api_url"] = url_for("data_api.table_rows", name=ds.name, table=t.id, _external=True, **query_args)
    if out["errors"]:
        return out
    page = max(args.get("fpage", 1, type=int) or 1, 1)
    started = time.perf_counter()
    try:
        query = data_api.parse_query(query_args)
        query.limit, query.offset, query.count = PAGE_ROWS, (page - 1) * PAGE_ROWS, True
        found = rows.query_rows(path, query, scope)
    except rows.QueryError as exc:
        out["errors"].append(str(exc))
        return out
    out |= {
        "rows": data_api._jsonable(found.table),
        "total": found.total,
        "page": page,
        "pages": max(((found.total or 0) + PAGE_ROWS - 1) // PAGE_ROWS, 1),
        "prev_url": _page_url(ds, t, args, page - 1),
        "next_url": _page_url(ds, t, args, page + 1),
    }
    if grant is not None:  # licensed rows shown are a licensed use, logged as the API logs it
        log_api_rows(db(), current_user, grant, ds.id, found.table.num_rows, 0, time.perf_counter() - started)
        db().commit()
    return out


def _page_url(ds: Dataset, t: DataTable, args: MultiDict, page: int) -> str:
    kept = {k: v for k, v in args.items() if k not in ("fpage", "table")}
    return url_for("catalog.dataset", name=ds.name, **kept, table=t.id, fpage=page, _anchor=f"see-{t.id}")


# ---------------------------------------------------------------------- chart and map


def _chart(path: Path, kinds: dict[str, str], scope: rows.Scope, args: MultiDict) -> dict | None:
    default = charts.default_spec(path, kinds, scope)
    spec, errors = charts.reader_spec(args, kinds, default)
    if spec is None:
        return {"errors": errors, "svg": None} if errors else None
    data = charts.figures(path, spec, kinds, scope)
    errors += data.errors
    what = {"sum": _("合计"), "mean": _("平均"), "count": _("行数")}[data.spec.agg]
    title = (
        _("按“%(x)s”统计的“%(y)s”%(what)s", x=spec.x, y=spec.y, what=what)
        if spec.y
        else _("按“%(x)s”统计的%(what)s", x=spec.x, what=what)
    )
    points = charts.in_words(data.points)
    desc = "; ".join(f"{label}: {charts.number(v)}" for label, v in points)
    return {
        "spec": data.spec,
        "data": data,
        "points": points,
        "title": title,
        "svg": charts.draw(data, str(title), desc),
        "errors": errors,
        "default": default,
    }


def _map(path: Path, schema: pa.Schema, kinds: dict[str, str], scope: rows.Scope) -> dict | None:
    static = current_app.static_folder or "static"
    base = charts.places(static)
    tiles = portal().settings.map_tiles
    coords = charts.coordinate_columns(kinds, schema)
    if coords is not None:
        label = next((c for c, k in kinds.items() if k == "category" and not charts.is_coordinate(c)), None)
        data = charts.map_points(path, coords[0], coords[1], label, scope)
        if not data.points and not data.dropped:
            return None
        what = _("%(n)s 个点位（“%(lon)s”、“%(lat)s”）", n=len(data.points), lon=coords[0], lat=coords[1])
    else:
        column = charts.address_column(path, kinds, known_places())
        if column is None:
            return None
        data = charts.street_counts(path, column, known_places(), scope)
        what = _("按“%(column)s”中的街道（镇）计数", column=column)
    title = _("地图预览：%(what)s", what=what)
    return {
        "data": data,
        "title": title,
        "svg": charts.map_svg(str(title), str(what), data, base, tiles),
        "coords": coords,
        "tiles": bool(tiles),
    }

"""See before downloading: a chart and a map of a data table, drawn on the server as SVG.

No script and nothing fetched from elsewhere: the chart is bars, a line or a pie chosen from
the columns' types (the reader may choose the columns and the kind); the map draws the
table's coordinates — or its rows counted per 街道/镇 when it has addresses instead — over
the district's schematic street boundaries shipped in static/geo/ (and, when the bureau sets
PORTAL_MAP_TILES, the slippy-map tiles under them). Labels and values are printed, so neither
needs colour; each comes with its figures as a table.

Figures are computed over the whole table (up to ROW_CAP rows, said on the page), read from
the stored Parquet file, cut to the reader's Scope by the data API's own rules
(portal.catalog.rows.scoped_table): a grant holder's chart holds only the granted fields and
rows. Results are kept per file (files are named by content), scope and choice.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from markupsafe import Markup, escape

from .catalog import rows
from .messages import Message, _

ROW_CAP = 200_000  # rows read for a chart or a map, however long the table
TOP_N = 12  # bars shown; the rest are summed as 其他
PIE_MAX = 6  # a pie only for this few parts
MONTHS_AFTER = 60  # a date axis with more distinct days than this is counted per month
POINT_CAP = 3000  # points drawn on a map
KINDS = ("bar", "line", "pie")
OTHER = "\x00其他"  # the rest of the categories, put into the reader's words by in_words()
AGGREGATES = ("sum", "mean", "count")
PALETTE = ["#1b7a3a", "#a35a00", "#0b4f9c", "#6b3fa0", "#b00020", "#5a5a5a", "#00796b"]

# The district and a margin around it: points elsewhere are dropped (and counted).
BBOX = (115.75, 36.25, 116.25, 36.65)  # west, south, east, north
MARGIN = 0.05
# Streets, towns and the township of the district, longest first (梁水镇镇 before 水镇 …).
PLACES_FILE = "geo/dongchangfu-streets.geojson"

YEAR_NAME = re.compile(r"年度|年份|^年$|(^|[^a-z])year([^a-z]|$)", re.IGNORECASE)
ID_NAME = re.compile(r"编号|代码|序号|号码|电话|邮编|证号|(^|[^a-z])(id|code|no)([^a-z]|$)", re.IGNORECASE)
LON_NAME = re.compile(
    r"经度|东经|横坐标|x坐标|^x$|(^|[^a-z])(lng|lon|long|longitude)([^a-z]|$)", re.IGNORECASE
)
CATEGORY_NAME = re.compile(
    r"街道|乡镇|镇|区域|类别|类型|种类|分类|等级|状态|性质|行业|监测点|科室|线路", re.IGNORECASE
)
LAT_NAME = re.compile(r"纬度|北纬|纵坐标|y坐标|^y$|(^|[^a-z])(lat|latitude)([^a-z]|$)", re.IGNORECASE)


# ---------------------------------------------------------------------- columns and their kinds


def column_kind(name: str, t: pa.DataType) -> str:
    """time | year | number | category | other: what a column can be on a chart."""
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        return "time"
    if pa.types.is_integer(t) and YEAR_NAME.search(name):
        return "year"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "other" if ID_NAME.search(name) else "number"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_boolean(t):
        return "year" if YEAR_NAME.search(name) else "category"
    return "other"


def column_kinds(schema: pa.Schema, visible: list[str]) -> dict[str, str]:
    return {n: column_kind(n, schema.field(n).type) for n in visible}


def is_coordinate(name: str) -> bool:
    return bool(LON_NAME.search(name) or LAT_NAME.search(name))


# ---------------------------------------------------------------------- reading, within the scope


def read_scoped(
    path: Path, columns: list[str], scope: rows.Scope, cap: int = ROW_CAP
) -> tuple[pa.Table, int, bool]:
    """The columns of the first `cap` rows, cut to the scope: (table, rows read, capped?)."""
    source = rows.open_table(path)
    names = source.schema.names
    wanted = [c for c in dict.fromkeys(columns + list((scope.row_filter or {}).keys())) if c in names]
    f = pq.ParquetFile(str(path), metadata=source.metadata)
    batches, seen = [], 0
    for batch in f.iter_batches(batch_size=65_536, columns=wanted, use_threads=False):
        batches.append(batch.slice(0, cap - seen))
        seen += min(batch.num_rows, cap - seen)
        if seen >= cap:
            break
    table = (
        pa.Table.from_batches(batches, schema=pa.schema([source.schema.field(c) for c in wanted]))
        if batches
        else pa.schema([source.schema.field(c) for c in wanted]).empty_table()
    )
    capped = seen >= cap and f.metadata.num_rows > cap
    return rows.scoped_table(table, scope).select([c for c in columns if c in wanted]), seen, capped


def scope_key(scope: rows.Scope) -> tuple:
    return (
        tuple(scope.fields) if scope.fields is not None else None,
        tuple(sorted((k, tuple(v)) for k, v in (scope.row_filter or {}).items())),
    )


def key_scope(key: tuple) -> rows.Scope:
    fields, row_filter = key
    return rows.Scope(
        list(fields) if fields is not None else None, {k: list(v) for k, v in row_filter} or None
    )


# ---------------------------------------------------------------------- the chart: what to draw


@dataclass
class ChartSpec:
    x: str
    y: str | None  # None: rows are counted
    agg: str  # sum | mean | count
    kind: str  # bar | line | pie


@dataclass
class ChartData:
    spec: ChartSpec
    points: list[tuple[str, float]]
    rows: int  # rows counted (within the scope)
    capped: bool  # only the first ROW_CAP rows were read
    other: int = 0  # categories summed into 其他
    errors: list[Message] = field(default_factory=list)


def _distinct(path: Path, columns: list[str], scope: rows.Scope) -> dict[str, int]:
    """Distinct values of each column in the first rows the reader may see."""
    table, _seen, _capped = read_scoped(path, columns, scope, cap=2000)
    return {c: len(pc.unique(table[c])) for c in columns}


def _default_category(path: Path, categories: list[str], scope: rows.Scope) -> str | None:
    """The category with the fewest values (a name or an address column, with a value per
    row, says nothing counted), a 街道/类别-like name first among equals; none when every one
    has more than TOP_N * 4 values."""
    if not categories:
        return None
    counts = _distinct(path, categories, scope)
    best = min(
        categories, key=lambda c: (counts[c] < 2, counts[c], not CATEGORY_NAME.search(c), categories.index(c))
    )
    return best if 0 < counts[best] <= TOP_N * 4 else None


def default_spec(path: Path, kinds: dict[str, str], scope: rows.Scope) -> ChartSpec | None:
    """time + number → line; category + number → bars of the sum; a category alone → counted,
    a pie when it has few values (the kind is settled once the data is read)."""
    return _default_spec(str(path), path.stat().st_mtime_ns, tuple(kinds.items()), scope_key(scope))


@functools.lru_cache(maxsize=512)
def _default_spec(path_text: str, _mtime: int, kind_items: tuple, scope_items: tuple) -> ChartSpec | None:
    path, kinds, scope = Path(path_text), dict(kind_items), key_scope(scope_items)
    times = [c for c, k in kinds.items() if k in ("time", "year")]
    numbers = [c for c, k in kinds.items() if k == "number" and not is_coordinate(c)]
    if times and numbers:
        return ChartSpec(times[0], numbers[0], "sum", "line")
    category = _default_category(
        path, [c for c, k in kinds.items() if k == "category" and not is_coordinate(c)], scope
    )
    if category and numbers:
        return ChartSpec(category, numbers[0], "sum", "bar")
    if category:
        return ChartSpec(category, None, "count", "auto")
    if times:
        return ChartSpec(times[0], None, "count", "line")
    return None


def reader_spec(
    args: Mapping[str, str], kinds: dict[str, str], default: ChartSpec | None
) -> tuple[ChartSpec | None, list[Message]]:
    """The reader's choice from the form (x; y, blank to count rows; agg; kind), checked
    against the columns. Anything wrong is said, and the default is drawn instead."""
    if not any(args.get(k) for k in ("x", "y", "agg", "kind")):
        return default, []
    x = args.get("x") or (default.x if default else "")
    y = (args.get("y") if "y" in args else (default.y if default else None)) or None
    agg = args.get("agg") or ("sum" if y else "count")
    kind = args.get("kind") or "auto"
    errors: list[Message] = []
    if x not in kinds:
        errors.append(_("没有可作图的字段“%(name)s”", name=x))
    elif y is not None and y == x:
        errors.append(_("横轴和数值不能是同一字段“%(name)s”", name=x))
    elif y is not None and kinds.get(y) not in ("number", "year"):
        errors.append(_("“%(name)s”不是数值字段，不能求和或平均", name=y))
    elif agg not in AGGREGATES or kind not in (*KINDS, "auto"):
        errors.append(_("图表类型或统计方式无法识别"))
    elif kind == "line" and kinds.get(x) not in ("time", "year"):
        errors.append(_("折线图的横轴须为日期或年份字段，“%(name)s”不是", name=x))
    if errors:
        return default, errors
    if y is None or agg == "count":
        y, agg = None, "count"
    return ChartSpec(x, y, agg, kind), []


# ---------------------------------------------------------------------- the chart: its figures


def _label_column(column: pa.ChunkedArray, kind: str, months: bool) -> pa.ChunkedArray:
    if kind == "time":
        text = pc.strftime(column, format="%Y-%m" if months else "%Y-%m-%d")
    else:
        text = pc.cast(column, pa.string())
    return pc.fill_null(text, "（空）")


def _grouped(table: pa.Table, spec: ChartSpec, kind: str) -> list[tuple[str, float, int]]:
    """(label, sum, count) per value of x."""
    months = kind == "time" and len(pc.unique(table[spec.x].drop_null())) > MONTHS_AFTER
    labels = _label_column(table[spec.x], kind, months)
    columns = {"label": labels}
    aggregations: list[tuple[str, str]] = [("label", "count")]
    if spec.y is not None:
        columns["value"] = pc.cast(table[spec.y], pa.float64())
        aggregations = [("value", "sum"), ("value", "count")]
    grouped = pa.table(columns).group_by("label").aggregate(aggregations).to_pylist()
    if spec.y is None:
        return [(r["label"], float(r["label_count"]), int(r["label_count"])) for r in grouped]
    return [(r["label"], float(r["value_sum"] or 0), int(r["value_count"])) for r in grouped]


def _value(total: float, count: int, agg: str) -> float:
    if agg == "mean":
        return total / count if count else 0.0
    return total


def figures(path: Path, spec: ChartSpec, kinds: dict[str, str], scope: rows.Scope) -> ChartData:
    return _figures(
        str(path),
        path.stat().st_mtime_ns,
        spec.x,
        spec.y,
        spec.agg,
        spec.kind,
        kinds[spec.x],
        scope_key(scope),
    )


@functools.lru_cache(maxsize=512)
def _figures(
    path: str, _mtime: int, x: str, y: str | None, agg: str, kind: str, x_kind: str, scope: tuple
) -> ChartData:
    spec = ChartSpec(x, y, agg, kind)
    table, _seen, capped = read_scoped(Path(path), [c for c in (x, y) if c], key_scope(scope))
    groups = _grouped(table, spec, x_kind)
    errors: list[Message] = []
    if x_kind in ("time", "year") and spec.kind in ("auto", "line"):
        spec.kind = "line" if len(groups) > 2 else "bar"
        groups.sort(key=lambda g: g[0])
        points = [(label, _value(s, n, agg)) for label, s, n in groups]
        return ChartData(spec, points, table.num_rows, capped)
    groups.sort(key=lambda g: (-_value(g[1], g[2], agg), g[0]))
    if spec.kind == "auto":
        spec.kind = "pie" if 1 < len(groups) <= PIE_MAX and agg != "mean" else "bar"
    if spec.kind == "pie" and (agg == "mean" or any(s < 0 for _label, s, _n in groups)):
        errors.append(_("饼图只适合非负的合计或计数，已改为柱状图"))
        spec.kind = "bar"
    keep = PIE_MAX if spec.kind == "pie" else TOP_N
    shown, rest = groups[:keep], groups[keep:]
    if len(rest) == 1:  # one more part is clearer than an "Other" of one
        shown, rest = groups, []
    points = [(label, _value(s, n, agg)) for label, s, n in shown]
    if rest:
        points.append((OTHER, _value(sum(g[1] for g in rest), sum(g[2] for g in rest), agg)))
    return ChartData(spec, points, table.num_rows, capped, other=len(rest), errors=errors)


# ---------------------------------------------------------------------- the chart: drawing


def number(v: float) -> str:
    """1,234 / 1,234.5 / 0.25: as a person reads it."""
    if abs(v - round(v)) < 1e-9:
        return f"{round(v):,}"
    return f"{v:,.2f}".rstrip("0").rstrip(".")


def _svg_open(title: str, desc: str, width: int, height: int, cls: str = "chart") -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" class="{cls}" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title><desc lang="zh-CN">{escape(desc)}</desc>'
    )


def bars(title: str, desc: str, points: list[tuple[str, float]], width: int = 720) -> Markup:
    """Horizontal bars, the label left and the value printed at the end of each."""
    row, left, top = 26, 190, 8
    height = top + row * len(points) + 8
    peak = max([abs(v) for _label, v in points] or [1]) or 1
    scale = (width - left - 90) / peak
    parts = [_svg_open(title, desc, width, height)]
    for i, (label, v) in enumerate(points):
        y = top + i * row
        w = max(abs(v) * scale, 1)
        parts.append(
            f'<text x="{left - 8}" y="{y + 17}" text-anchor="end" font-size="13" lang="zh-CN">{escape(label[:14])}</text>'
            f'<rect x="{left}" y="{y + 4}" width="{w:.1f}" height="{row - 8}" fill="{PALETTE[0]}" lang="zh-CN">'
            f"<title>{escape(label)}: {number(v)}</title></rect>"
            f'<text x="{left + w + 6:.1f}" y="{y + 17}" font-size="13">{number(v)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def line(
    title: str, desc: str, points: list[tuple[str, float]], width: int = 720, height: int = 260
) -> Markup:
    """A line over time; every value printed when there are few, else the first, last, highest
    and lowest; the axis labelled at its ends and a few places between."""
    left, right, top, bottom = 64, 40, 28, 44
    values = [v for _label, v in points] or [0]
    lo, hi = min(min(values), 0), max(values) or 1
    span = (hi - lo) or 1
    pad = 24  # the first and last points away from the axis, their values readable
    step = (width - left - right - 2 * pad) / max(len(points) - 1, 1)

    def at(i: int, v: float) -> tuple[float, float]:
        return left + pad + i * step, top + (height - top - bottom) * (1 - (v - lo) / span)

    coords = [at(i, v) for i, (_label, v) in enumerate(points)]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(coords))
    parts = [
        _svg_open(title, desc, width, height),
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#767676"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#767676"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="12">{number(hi)}</text>',
        f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end" font-size="12">{number(lo)}</text>',
        f'<path d="{path}" fill="none" stroke="{PALETTE[2]}" stroke-width="2.5"/>',
    ]
    marked = _marked(values)
    every = max(len(points) // 6, 1)
    for i, ((label, v), (x, y)) in enumerate(zip(points, coords, strict=True)):
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{PALETTE[2]}" lang="zh-CN"><title>{escape(label)}: {number(v)}</title></circle>'
        )
        if i in marked:
            parts.append(
                f'<text x="{x:.1f}" y="{y - 8:.1f}" text-anchor="middle" font-size="12">{number(v)}</text>'
            )
        if i % every == 0 or i == len(points) - 1:
            parts.append(
                f'<text x="{x:.1f}" y="{height - bottom + 18}" text-anchor="middle" font-size="12" lang="zh-CN">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def _marked(values: list[float]) -> set[int]:
    if len(values) <= 12:
        return set(range(len(values)))
    return {0, len(values) - 1, values.index(max(values)), values.index(min(values))}


def pie(title: str, desc: str, points: list[tuple[str, float]], width: int = 440) -> Markup:
    """Slices numbered 1…n, and under them a key: number, label, value and share."""
    total = sum(v for _label, v in points) or 1
    r = 110
    cx, cy = width / 2, r + 10
    height = 2 * r + 30 + 28 * len(points)
    parts = [_svg_open(title, desc, width, height, "chart pie")]
    angle = -math.pi / 2
    for i, (label, v) in enumerate(points):
        share = v / total
        end = angle + share * 2 * math.pi
        parts.append(
            _slice(cx, cy, r, angle, end, PALETTE[i % len(PALETTE)], f"{label}: {number(v)} ({share:.0%})")
        )
        if share >= 0.04:
            mid = (angle + end) / 2
            tx, ty = cx + r * 0.65 * math.cos(mid), cy + r * 0.65 * math.sin(mid)
            parts.append(
                f'<text x="{tx:.1f}" y="{ty + 5:.1f}" text-anchor="middle" font-size="15" font-weight="bold" '
                f'fill="#fff" stroke="#000" stroke-width="3" paint-order="stroke">{i + 1}</text>'
            )
        ky = 2 * r + 40 + 28 * i
        parts.append(
            f'<rect x="20" y="{ky - 14}" width="18" height="18" fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="46" y="{ky}" font-size="15" lang="zh-CN">{i + 1}. {escape(label[:18])}: {number(v)} ({share:.1%})</text>'
        )
        angle = end
    parts.append("</svg>")
    return Markup("".join(parts))


def _slice(cx: float, cy: float, r: float, start: float, end: float, colour: str, tip: str) -> str:
    title = f'<title lang="zh-CN">{escape(tip)}</title>'
    if end - start >= 2 * math.pi - 1e-6:
        return f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="{colour}" stroke="#fff" stroke-width="2">{title}</circle>'
    if end - start <= 0:
        return ""
    x1, y1 = cx + r * math.cos(start), cy + r * math.sin(start)
    x2, y2 = cx + r * math.cos(end), cy + r * math.sin(end)
    large = 1 if end - start > math.pi else 0
    return (
        f'<path d="M{cx},{cy} L{x1:.1f},{y1:.1f} A{r},{r} 0 {large} 1 {x2:.1f},{y2:.1f} Z" '
        f'fill="{colour}" stroke="#fff" stroke-width="2">{title}</path>'
    )


def in_words(points: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """The points with the summed rest called 其他 (Other) in the reader's language."""
    return [(str(_("其他")) if label == OTHER else label, v) for label, v in points]


def draw(data: ChartData, title: str, desc: str) -> Markup:
    drawer = {"bar": bars, "line": line, "pie": pie}[data.spec.kind]
    return drawer(title, desc, in_words(data.points))


# ---------------------------------------------------------------------- the map


@dataclass(frozen=True)
class Place:
    name: str
    centre: tuple[float, float]
    rings: tuple[tuple[tuple[float, float], ...], ...]


@functools.lru_cache(maxsize=4)
def places(static_folder: str) -> tuple[Place, ...]:
    """The schematic 街道/镇 areas shipped with the portal (static/geo/)."""
    doc = json.loads((Path(static_folder) / PLACES_FILE).read_text(encoding="utf-8"))
    return tuple(
        Place(
            f["properties"]["name"],
            (float(f["properties"]["centre"][0]), float(f["properties"]["centre"][1])),
            tuple(tuple((float(x), float(y)) for x, y in ring) for ring in f["geometry"]["coordinates"]),
        )
        for f in doc["features"]
    )


def coordinate_columns(kinds: dict[str, str], schema: pa.Schema) -> tuple[str, str] | None:
    """The longitude and latitude columns, by their names (经度/纬度, lng/lat, X/Y …)."""
    numeric_or_text = [n for n in kinds if kinds[n] in ("number", "category", "other")]
    lon = next((n for n in numeric_or_text if LON_NAME.search(n) and not LAT_NAME.search(n)), None)
    lat = next((n for n in numeric_or_text if LAT_NAME.search(n) and not LON_NAME.search(n)), None)
    return (lon, lat) if lon and lat else None


def _floats(column: pa.ChunkedArray) -> list[float | None]:
    if (
        pa.types.is_floating(column.type)
        or pa.types.is_integer(column.type)
        or pa.types.is_decimal(column.type)
    ):
        return pc.cast(column, pa.float64()).to_pylist()
    out: list[float | None] = []
    for v in column.to_pylist():
        try:
            out.append(float(str(v).strip()) if v is not None else None)
        except ValueError:
            out.append(None)
    return out


def inside(lon: float | None, lat: float | None) -> bool:
    w, s, e, n = BBOX
    return (
        lon is not None
        and lat is not None
        and w - MARGIN <= lon <= e + MARGIN
        and s - MARGIN <= lat <= n + MARGIN
    )


@dataclass
class MapData:
    mode: str  # points | streets
    points: list[tuple[float, float, str]] = field(default_factory=list)  # lon, lat, label
    counts: list[tuple[str, int]] = field(default_factory=list)  # per street, in the base's order
    column: str = ""  # the address column counted
    dropped: int = 0  # rows without a usable position (outside the district, blank, unreadable)
    rows: int = 0
    capped: bool = False


def map_points(path: Path, lon: str, lat: str, label: str | None, scope: rows.Scope) -> MapData:
    return _map_points(str(path), path.stat().st_mtime_ns, lon, lat, label, scope_key(scope))


@functools.lru_cache(maxsize=256)
def _map_points(path: str, _mtime: int, lon: str, lat: str, label: str | None, scope: tuple) -> MapData:
    table, _seen, capped = read_scoped(Path(path), [c for c in (lon, lat, label) if c], key_scope(scope))
    xs, ys = _floats(table[lon]), _floats(table[lat])
    names = table[label].to_pylist() if label else [""] * table.num_rows
    kept = [(x, y, str(n or "")) for x, y, n in zip(xs, ys, names, strict=True) if inside(x, y)]
    data = MapData("points", rows=table.num_rows, capped=capped, dropped=table.num_rows - len(kept))
    data.points = kept[:POINT_CAP]  # type: ignore[assignment]  # inside() ruled out None
    return data


def address_column(path: Path, kinds: dict[str, str], known: list[str]) -> str | None:
    """A text column whose values name the district's streets and towns (所属街道, 地址 …):
    at least a third of its first rows' values do. (Read from the file's first rows, before
    any scope: it decides only which column is counted, and the counting is scoped.)"""
    return _address_column(str(path), path.stat().st_mtime_ns, tuple(kinds.items()), tuple(known))


@functools.lru_cache(maxsize=512)
def _address_column(path_text: str, _mtime: int, kind_items: tuple, known_names: tuple) -> str | None:
    path, kinds, known = Path(path_text), dict(kind_items), list(known_names)
    texts = [n for n, k in kinds.items() if k == "category"]
    if not texts:
        return None
    f = pq.ParquetFile(str(path))
    first = next(f.iter_batches(batch_size=500, columns=texts, use_threads=False), None)
    if first is None:
        return None
    for i, name in enumerate(texts):
        values = [v for v in first.column(i).to_pylist() if v]
        hits = sum(1 for v in values if _place_of(str(v), known))
        if values and hits * 3 >= len(values):
            return name
    return None


def _place_of(text: str, known: list[str]) -> str | None:
    return next((p for p in known if p in text), None)


def street_counts(path: Path, column: str, known: list[str], scope: rows.Scope) -> MapData:
    return _street_counts(str(path), path.stat().st_mtime_ns, column, tuple(known), scope_key(scope))


@functools.lru_cache(maxsize=256)
def _street_counts(path: str, _mtime: int, column: str, known: tuple[str, ...], scope: tuple) -> MapData:
    table, _seen, capped = read_scoped(Path(path), [column], key_scope(scope))
    longest_first = sorted(known, key=len, reverse=True)
    counts = dict.fromkeys(known, 0)
    dropped = 0
    grouped = (
        pa.table({"v": pc.fill_null(pc.cast(table[column], pa.string()), "")})
        .group_by("v")
        .aggregate([("v", "count")])
    )
    for value, n in zip(grouped["v"].to_pylist(), grouped["v_count"].to_pylist(), strict=True):
        place = _place_of(value, longest_first)
        if place is None:
            dropped += n
        else:
            counts[place] += n
    return MapData(
        "streets",
        counts=list(counts.items()),
        column=column,
        dropped=dropped,
        rows=table.num_rows,
        capped=capped,
    )


# ---------------------------------------------------------------------- the map: drawing


class Mercator:
    """Web-mercator pixels at zoom z, shifted so the district's north-west corner is (0, 0)."""

    def __init__(self, zoom: int) -> None:
        self.zoom = zoom
        self.world = 256 * 2**zoom
        w, s, e, n = BBOX
        self.x0, self.y0 = self.raw(w, n)
        x1, y1 = self.raw(e, s)
        self.width, self.height = round(x1 - self.x0), round(y1 - self.y0)

    def raw(self, lon: float, lat: float) -> tuple[float, float]:
        x = (lon + 180) / 360 * self.world
        s = math.sin(math.radians(lat))
        y = (0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * self.world
        return x, y

    def __call__(self, lon: float, lat: float) -> tuple[float, float]:
        x, y = self.raw(lon, lat)
        return x - self.x0, y - self.y0

    def tiles(self, template: str) -> list[tuple[str, float, float]]:
        """(url, x, y) of the 256-px tiles that cover the district."""
        out = []
        for tx in range(int(self.x0 // 256), int((self.x0 + self.width) // 256) + 1):
            for ty in range(int(self.y0 // 256), int((self.y0 + self.height) // 256) + 1):
                url = template.replace("{z}", str(self.zoom)).replace("{x}", str(tx)).replace("{y}", str(ty))
                out.append((url, tx * 256 - self.x0, ty * 256 - self.y0))
        return out


ZOOM = 11  # the district is about 730 px wide at this zoom


@functools.lru_cache(maxsize=8)
def _outlines(zoom: int, base: tuple[Place, ...]) -> tuple[str, ...]:
    """Each area's outline as an SVG path, drawn once per zoom."""
    proj = Mercator(zoom)
    return tuple(
        " ".join(
            "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in (proj(lon, lat) for lon, lat in ring)) + " Z"
            for ring in p.rings
        )
        for p in base
    )


def _base(proj: Mercator, base: tuple[Place, ...], tiles: str, fills: dict[str, str] | None) -> list[str]:
    parts = []
    if tiles:
        parts.append('<g class="tiles">')
        parts += [
            f'<image href="{escape(url)}" x="{x:.1f}" y="{y:.1f}" width="256" height="256"/>'
            for url, x, y in proj.tiles(tiles)
        ]
        parts.append("</g>")
    for p, d in zip(base, _outlines(proj.zoom, base), strict=True):
        fill = (fills or {}).get(p.name, "none" if tiles else "#f4f1ea")
        parts.append(
            f'<path d="{d}" fill="{fill}" stroke="#8a8a8a" stroke-width="1" lang="zh-CN"><title>{escape(p.name)}</title></path>'
        )
    return parts


def _place_names(proj: Mercator, base: tuple[Place, ...], below: dict[str, float]) -> list[str]:
    """Each area's name at its centre (below its circle when it has one), haloed to stay readable."""
    out = []
    for p in base:
        x, y = proj(*p.centre)
        out.append(
            f'<text x="{x:.1f}" y="{y + below.get(p.name, 4):.1f}" text-anchor="middle" font-size="10" '
            f'fill="#333" stroke="#fff" stroke-width="3" paint-order="stroke" lang="zh-CN">{escape(p.name)}</text>'
        )
    return out


def _points(proj: Mercator, data: MapData) -> list[str]:
    parts = []
    for lon, lat, label in data.points:
        x, y = proj(lon, lat)
        where = f"{lon:.5f}, {lat:.5f}"
        tip = f"<title>{escape(label)} ({where})</title>" if label else f"<title>{where}</title>"
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="#b00020" stroke="#fff" stroke-width="1.2" lang="zh-CN">{tip}</circle>'
        )
    return parts


def _counts(proj: Mercator, data: MapData, base: tuple[Place, ...], below: dict[str, float]) -> list[str]:
    parts = []
    peak = max([n for _name, n in data.counts] or [1]) or 1
    centres = {p.name: p.centre for p in base}
    for name, n in data.counts:
        if not n or name not in centres:
            continue
        x, y = proj(*centres[name])
        r = 7 + 8 * math.sqrt(n / peak)
        below[name] = -(r + 4)  # the name above the circle
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="#fff" stroke="#1b7a3a" stroke-width="2" lang="zh-CN">'
            f"<title>{escape(name)}: {n}</title></circle>"
            f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" font-size="12" font-weight="bold">{n}</text>'
        )
    return parts


def map_svg(title: str, desc: str, data: MapData, base: tuple[Place, ...], tiles: str = "") -> Markup:
    """The base (tiles when set, the schematic areas), then the points — or each area's count,
    printed in a circle sized by it, the area shaded by it — then the areas' names."""
    proj = Mercator(ZOOM)
    parts = [_svg_open(title, desc, proj.width, proj.height, "chart map")]
    below: dict[str, float] = {}
    if data.mode == "points":
        parts += _base(proj, base, tiles, None) + _points(proj, data)
    else:
        peak = max([n for _name, n in data.counts] or [1]) or 1
        fills = {name: _shade(n / peak) for name, n in data.counts if n}
        parts += _base(proj, base, tiles, fills) + _counts(proj, data, base, below)
    parts += _place_names(proj, base, below)
    parts.append("</svg>")
    return Markup("".join(parts))


def _shade(share: float) -> str:
    """Light to dark green by share; the count is printed too, so no one needs the colour."""
    light, dark = (232, 244, 234), (76, 160, 100)
    rgb = [round(a + (b - a) * share) for a, b in zip(light, dark, strict=True)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)

"""The public statistics: /stats (the portal), /stats/department/<code>, /dataset/<name>/stats,
each as a page (charts with their numbers) and as CSV (UTF-8 with BOM, Beijing dates).
Thin: the figures come from portal/public_stats.py and portal/stats.py."""

from __future__ import annotations

import csv
import io
from urllib.parse import quote

from flask import Blueprint, Response, abort, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from .. import catalog, charts, clock, public_stats, stats
from ..authz import public
from ..messages import _
from ..models import Department
from ..page_cache import cacheable
from ..public_stats import DAYS, Scope, Usage
from ..web import db, portal

bp = Blueprint("public_stats", __name__)


def _usage_charts(usage: Usage) -> dict:
    daily = usage.last(DAYS)
    months = usage.months()
    downloads, calls = str(_("下载次数")), str(_("API 调用次数"))
    return {
        "daily": daily,
        "months": months,
        "daily_chart": charts.lines(
            str(_("近 30 天每日下载与 API 调用")),
            [d.strftime("%m-%d") for d, _d, _c in daily],
            {downloads: [n for _d, n, _c in daily], calls: [n for _d, _n, n in daily]},
        ),
        "monthly_chart": charts.lines(
            str(_("近 12 个月每月下载与 API 调用")),
            [m for m, _d, _c in months],
            {downloads: [n for _m, n, _c in months], calls: [n for _m, _n, n in months]},
        ),
    }


def _classes_chart(rows: list[tuple[str, int, int]]) -> object:
    return charts.stacked_bars(
        str(_("各月末开放的数据集（按开放类型）")),
        [m for m, _u, _c in rows],
        {str(_("无条件开放")): [u for _m, u, _c in rows], str(_("有条件开放")): [c for _m, _u, c in rows]},
        width=640,
        left=90,
    )


def _csv(usage: Usage, what: str) -> Response:
    """The daily figures of the last year: Excel opens UTF-8 with a BOM as UTF-8."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\r\n")
    out.writerow([str(_("日期")), str(_("下载次数")), str(_("API 调用次数"))])
    for day, downloads, calls in usage.days:
        out.writerow([day.isoformat(), downloads, calls])
    name = f"stats-{what}-{clock.today().isoformat()}.csv"
    return Response(
        "\ufeff" + buf.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"},
    )


def _department(code: str) -> Department:
    dept = db().scalar(select(Department).where(Department.code == code))
    if dept is None:
        abort(404)
    return dept


@bp.get("/stats")
@public
@cacheable
def portal_stats() -> ResponseReturnValue:
    s = db()
    usage = public_stats.usage(s, portal().counters, Scope())
    classes = public_stats.classes_over_time(s)
    return render_template(
        "stats/page.html",
        scope="portal",
        usage=usage,
        classes=classes,
        classes_chart=_classes_chart(classes),
        kept=public_stats.deadlines_kept(s),
        evaluation=stats.evaluation(s),
        csv_endpoint=("public_stats.portal_csv", {}),
        **_usage_charts(usage),
    )


@bp.get("/stats.csv")
@public
@cacheable
def portal_csv() -> ResponseReturnValue:
    return _csv(public_stats.usage(db(), portal().counters, Scope()), "portal")


@bp.get("/stats/department/<code>")
@public
@cacheable
def department_stats(code: str) -> ResponseReturnValue:
    s = db()
    dept = _department(code)
    usage = public_stats.usage(s, portal().counters, Scope(department_id=dept.id))
    classes = public_stats.classes_over_time(s, dept.id)
    return render_template(
        "stats/page.html",
        scope="department",
        dept=dept,
        usage=usage,
        classes=classes,
        classes_chart=_classes_chart(classes),
        kept=public_stats.deadlines_kept(s, dept.id),
        evaluation=[row for row in stats.evaluation(s) if row.code == dept.code],
        datasets=public_stats.per_dataset(s, portal().counters, dept.id),
        csv_endpoint=("public_stats.department_csv", {"code": dept.code}),
        **_usage_charts(usage),
    )


@bp.get("/stats/department/<code>.csv")
@public
@cacheable
def department_csv(code: str) -> ResponseReturnValue:
    dept = _department(code)
    return _csv(public_stats.usage(db(), portal().counters, Scope(department_id=dept.id)), dept.code)


@bp.get("/dataset/<name>/stats")
@public
@cacheable
def dataset_stats(name: str) -> ResponseReturnValue:
    ds = catalog.get_public_dataset(db(), name)
    if ds is None:
        abort(404)
    usage = public_stats.usage(db(), portal().counters, Scope(dataset_id=ds.id))
    return render_template(
        "stats/page.html",
        scope="dataset",
        ds=ds,
        usage=usage,
        csv_endpoint=("public_stats.dataset_csv", {"name": ds.name}),
        **_usage_charts(usage),
    )


@bp.get("/dataset/<name>/stats.csv")
@public
@cacheable
def dataset_csv(name: str) -> ResponseReturnValue:
    ds = catalog.get_public_dataset(db(), name)
    if ds is None:
        abort(404)
    return _csv(public_stats.usage(db(), portal().counters, Scope(dataset_id=ds.id)), ds.name)

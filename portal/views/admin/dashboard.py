"""The dashboard and the Art. 6 evaluation."""

from __future__ import annotations

from flask import Response, render_template, request
from flask.typing import ResponseReturnValue

from licenses import applications as apps
from licenses import grants

from ... import charts, exports, stats
from ...messages import _, known
from ...web import db
from . import bp


@bp.get("/")
def dashboard() -> ResponseReturnValue:
    s = db()
    period = stats.period_of(request.args.get("period"))
    labels, series = stats.class_by_department(s)
    total = sum(sum(v) for v in series.values()) or 1
    opened = sum(series["无条件开放"]) + sum(series["有条件开放"])
    days = stats.decision_days(s)
    downloads = stats.downloads_per_day(s)
    legend = {
        str(known(name)): values for name, values in series.items()
    }  # the class names, in the reader's words
    return render_template(
        "admin/dashboard.html",
        class_chart=charts.stacked_bars(str(_("各部门数据条目（按开放类型）")), labels, legend),
        labels=labels,
        series=legend,
        opening_rate=opened / total,
        downloads=downloads,
        downloads_chart=charts.line(str(_("近 30 天下载量（含授权下载）")), downloads),
        routes=stats.applications_by_route(s),
        median=stats.percentile(days, 50),
        p90=stats.percentile(days, 90),
        decided=len(days),
        overdue=apps.overdue(s),
        tenders=stats.tenders_by_status(s),
        evaluation=stats.evaluation(s, period=period[:2]),
        period=period,
        period_arg=request.args.get("period", ""),
        missing_reports=grants.missing_reports(s),
    )


@bp.get("/evaluation.csv")
def evaluation_csv() -> ResponseReturnValue:
    period = stats.period_of(request.args.get("period"))
    header = [
        "部门",
        "代码",
        "目录条目",
        "已开放",
        "开放率",
        "暂缓",
        "未按周期更新",
        "数据申请",
        "按期办结率",
        "办理天数中位数",
        "下载次数",
        "逾期未办结申请",
        "逾期纠错",
        "逾期需求",
        "缺少利用报告",
        "期间",
    ]
    rows = (
        [
            r.department,
            r.code,
            r.entries,
            r.published,
            f"{r.opening_rate:.1%}",
            r.held,
            r.stale,
            r.applications,
            "" if r.on_time is None else f"{r.on_time:.0%}",
            "" if r.median_days is None else f"{r.median_days:.1f}",
            r.downloads,
            r.undecided_late,
            r.late_error_reports,
            r.late_requests,
            r.missing_usage_reports,
            period[2],
        ]
        for r in stats.evaluation(db(), period=period[:2])
    )
    return Response(
        exports.csv_bytes(header, rows),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=evaluation.csv"},
    )

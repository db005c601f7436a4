"""Public pages: home, search, dataset, department, domain, open lists. Thin: parse, ask, render."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from portal.feedback import rating_summary

from .. import catalog
from ..authz import public
from ..forms import ErrorReportForm
from ..models import Dataset, Department, ErrorReport, OpenClass, Rating
from ..page_cache import cacheable
from ..search import FACETS, SORTS, SearchQuery
from ..web import db, portal

bp = Blueprint("catalog", __name__)
PAGE_SIZE = 20
PREVIEW_ROWS = 20


def search_query(args, **preset) -> SearchQuery:  # noqa: ANN001
    filters = {f: [v for v in args.getlist(f) if v] for f in FACETS}
    for facet, value in preset.items():
        filters[facet] = [value]
    page = max(args.get("page", 1, type=int) or 1, 1)
    sort = args.get("sort", "relevance")
    return SearchQuery(q=args.get("q", "").strip()[:200], filters={k: v for k, v in filters.items() if v},
                       sort=sort if sort in SORTS else "relevance", start=(page - 1) * PAGE_SIZE, rows=PAGE_SIZE)


@bp.get("/")
@public
@cacheable
def home():
    s = db()
    newest = s.scalars(catalog.public_datasets().order_by(Dataset.published_date.desc().nulls_last(),
                                                          Dataset.id.desc()).limit(6)).all()
    popular = s.scalars(catalog.public_datasets().where(Dataset.download_count > 0)
                        .order_by(Dataset.download_count.desc(), Dataset.id).limit(6)).all()
    domains = s.execute(catalog.public_datasets().with_only_columns(Dataset.domain, func.count())
                        .group_by(Dataset.domain).order_by(func.count().desc())).all()
    return render_template("home.html", counts=catalog.counts_by_class(s), newest=newest, popular=popular,
                           domains=domains, departments=catalog.departments_with_counts(s)[:12])


def _search_page(title: str, heading_note: str | None = None, **preset):  # noqa: ANN202
    query = search_query(request.args, **preset)
    result = portal().search.search(query)
    # The index follows the database within a sync; a page never shows a hit that is not public now.
    public = catalog.only_public(db(), [h.name for h in result.hits])
    result.hits = [h for h in result.hits if h.name in public]
    suggestions = _suggestions(query, result) if not result.total else []
    return render_template("search.html", title=title, note=heading_note, query=query, result=result,
                           page=query.start // PAGE_SIZE + 1, page_size=PAGE_SIZE, preset=preset,
                           suggestions=suggestions, facet_names=FACETS)


def _suggestions(query: SearchQuery, result) -> list[dict]:  # noqa: ANN001
    """What to try when nothing matched: without the filters. (One word at a time is what
    the search itself does when no dataset has every word: portal/search/plan.py.)"""
    tries: list[dict] = []
    if query.filters:
        n = portal().search.search(SearchQuery(q=query.q, rows=0)).total
        if n:
            tries.append({"word": None, "href": url_for("catalog.search", q=query.q), "count": n})
    return tries


@bp.get("/search")
@public
@cacheable
def search():
    return _search_page("数据目录")


@bp.get("/datasets")
@public
@cacheable
def datasets():
    return search()


@bp.get("/department/<code>")
@public
@cacheable
def department(code: str):
    dept = db().scalar(select(Department).where(Department.code == code)) or abort(404)
    return _search_page(dept.name, heading_note="department", department=code)


@bp.get("/domain/<path:name>")
@public
@cacheable
def domain(name: str):
    exists = db().scalar(catalog.public_datasets().with_only_columns(func.count()).where(Dataset.domain == name))
    if not exists:
        abort(404)
    return _search_page(name, heading_note="domain", domain=name)


@bp.get("/dataset/<name>")
@public
@cacheable
def dataset(name: str):
    ds = catalog.get_public_dataset(db(), name) or abort(404)
    page = max(request.args.get("preview", 1, type=int) or 1, 1)
    previews = {}
    if ds.open_class == OpenClass.UNCONDITIONAL.value:
        previews = {t.id: catalog.preview(portal().storage, t, page, PREVIEW_ROWS) for t in ds.served_tables}
    s = db()
    reports = s.scalars(select(ErrorReport).where(ErrorReport.dataset_id == ds.id).order_by(ErrorReport.id.desc())).all()
    comments = s.scalars(select(Rating).where(Rating.dataset_id == ds.id, Rating.comment.is_not(None))
                         .order_by(Rating.id.desc()).limit(20)).all()
    return render_template("dataset.html", ds=ds, previews=previews, preview_page=page,
                           attribution=catalog.attribution_line(ds), history=catalog.history(ds), reports=reports,
                           comments=comments, rating=rating_summary(s, ds),
                           feedback_forms={"error": ErrorReportForm(formdata=None)} if current_user.is_authenticated else {})


@bp.get("/evaluation")
@public
@cacheable
def evaluation_public():
    """The departments' record, published as Chinese portals do: opening rate, on-time rate
    of decisions on applications, downloads (Art. 6), by year or quarter."""
    from .. import stats

    period = stats.period_of(request.args.get("period"))
    rows = stats.evaluation(db(), period=period[:2])
    return render_template("evaluation.html", rows=rows, period=period, period_arg=request.args.get("period", ""))


@bp.get("/lists")
@public
@cacheable
def lists():
    return render_template("lists_index.html", departments=catalog.departments_with_counts(db()))


@bp.get("/department/<code>/lists")
@public
@cacheable
def department_lists(code: str):
    s = db()
    dept = s.scalar(select(Department).where(Department.code == code)) or abort(404)
    return render_template("lists.html", dept=dept, lists=catalog.open_lists(s, dept))

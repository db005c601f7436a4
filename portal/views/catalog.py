"""Public pages: home, search, dataset, department, domain, open lists. Thin: parse, ask, render."""

from __future__ import annotations

import re

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from licenses.grants import datasets_granted
from portal.feedback import rating_summary

from .. import catalog, clock, content
from .. import open_licence as open_licence_module
from ..authz import public
from ..catalog import sample
from ..forms import ErrorReportForm
from ..fragments import text_size
from ..limits import limiter
from ..messages import _
from ..models import Dataset, DataTable, Department, ErrorReport, OpenClass, Rating
from ..page_cache import cacheable
from ..search import FACETS, SORTS, SearchQuery, SearchResult
from ..web import ShownDataset, db, fresh_search, kept_part, part_generation, portal, shown_dataset
from . import dataset_api
from . import previews as see_first
from .errors import file_missing

bp = Blueprint("catalog", __name__)
PAGE_SIZE = 20
PREVIEW_ROWS = 20


def search_query(args: MultiDict[str, str], **preset: str) -> SearchQuery:
    filters = {f: [v for v in args.getlist(f) if v] for f in FACETS}
    for facet, value in preset.items():
        filters[facet] = [value]
    page = min(max(args.get("page", 1, type=int) or 1, 1), MAX_PAGE)
    sort = args.get("sort", "relevance")
    return SearchQuery(
        q=plain_query(args.get("q", "")),
        filters={k: v for k, v in filters.items() if v},
        sort=sort if sort in SORTS else "relevance",
        start=(page - 1) * PAGE_SIZE,
        rows=PAGE_SIZE,
    )


MAX_PAGE = 10_000


def plain_query(q: str) -> str:
    """What a reader typed, as words: a blank, `%`, `*` or any run of signs without a letter,
    digit or Chinese character asks for everything (people type them as "all")."""
    q = q.strip()[:200]
    return q if re.search(r"\w", q) else ""


def page_numbers(page: int, pages: int, around: int = 2) -> list[int | None]:
    """The numbered pages to offer: the first, the last, and those around the current one;
    None where pages are left out (shown as …)."""
    keep = {1, pages} | set(range(max(page - around, 1), min(page + around, pages) + 1))
    out: list[int | None] = []
    for n in sorted(keep):
        if out and n - (out[-1] or 0) > 1:
            out.append(None)
        out.append(n)
    return out


@bp.get("/")
@public
@cacheable
def home() -> ResponseReturnValue:
    generation = part_generation()  # before the catalog is read (portal/fragments.py)
    main = kept_part(
        generation, ("home", g.lang), lambda: Markup(render_template("_home_main.html", **_home()))
    )
    return render_template("home.html", main=main)


def _home() -> dict:
    """What the home page shows: the newest and most downloaded datasets, the domains and
    departments with their counts, the figures, the newest notice and the topics."""
    s = db()
    newest = s.scalars(
        catalog.public_datasets()
        .order_by(Dataset.published_date.desc().nulls_last(), Dataset.id.desc())
        .limit(6)
    ).all()
    popular = s.scalars(
        catalog.public_datasets()
        .where(Dataset.download_count > 0)
        .order_by(Dataset.download_count.desc(), Dataset.id)
        .limit(6)
    ).all()
    domains = s.execute(
        catalog.public_datasets()
        .with_only_columns(Dataset.domain, func.count())
        .group_by(Dataset.domain)
        .order_by(func.count().desc())
    ).all()
    departments = catalog.departments_with_counts(s)
    counts = catalog.counts_by_class(s)
    stats = {
        "datasets": sum(counts.values()),
        "departments": len(departments),
        "downloads": s.scalar(
            catalog.public_datasets().with_only_columns(func.coalesce(func.sum(Dataset.download_count), 0))
        )
        or 0,
    }
    return dict(
        counts=counts,
        stats=stats,
        newest=newest,
        popular=popular,
        domains=[(d, n) for d, n in domains if d],
        departments=departments[:12],
        **content.home_context(s),  # the newest notice, the topics
    )


@bp.get("/favicon.ico")
@public
def favicon() -> ResponseReturnValue:
    """Browsers ask for /favicon.ico whatever a page links: the portal's mark, not a 404 page."""
    return send_from_directory(
        current_app.static_folder or "static", "favicon.ico", mimetype="image/x-icon", max_age=7 * 24 * 3600
    )


def _search_page(title: str, heading_note: str | None = None, **preset: str) -> ResponseReturnValue:
    generation = part_generation()  # before the index or the catalog is read (portal/fragments.py)
    query = search_query(request.args, **preset)
    key = ("search", request.endpoint, tuple(sorted(preset.items())), _args_key(), g.lang)
    results = kept_part(generation, key, lambda: _search_results(query, preset, heading_note), share=False)
    if isinstance(results, str):
        return render_template(
            "search.html", title=title, note=heading_note, query=query, preset=preset, results=results
        )
    return results  # past the last page: a redirect (never kept)


def _args_key() -> tuple:
    return tuple(sorted(request.args.items(multi=True)))


def _search_results(query: SearchQuery, preset: dict[str, str], note: str | None) -> Markup | Response:
    """The filters, results and pages of a search, rendered (or the redirect from a page past the last)."""
    result = fresh_search(query)
    pages = max((result.total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    if query.start // PAGE_SIZE + 1 > pages:
        # Past the last page (an old link, a typed number): the last page, not "第 999 / 3 页".
        args = request.args.to_dict(flat=False) | {"page": [str(pages)] if pages > 1 else []}
        return redirect(
            url_for(request.endpoint or "catalog.search", **{**args, **(request.view_args or {})})
        )
    # The index follows the database within a sync; a page never shows a hit that is not public now.
    public = catalog.only_public(db(), [h.name for h in result.hits])
    result.hits = [h for h in result.hits if h.name in public]
    suggestions = _suggestions(query, result) if not result.total else []
    return Markup(
        render_template(
            "_search_results.html",
            note=note,
            query=query,
            result=result,
            page=query.start // PAGE_SIZE + 1,
            page_size=PAGE_SIZE,
            preset=preset,
            pages=pages,
            page_numbers=page_numbers(query.start // PAGE_SIZE + 1, pages),
            suggestions=suggestions,
            facet_names=FACETS,
        )
    )


def _suggestions(query: SearchQuery, result: SearchResult) -> list[dict]:
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
def search() -> ResponseReturnValue:
    return _search_page("数据目录")


@bp.get("/datasets")
@public
@cacheable
def datasets() -> ResponseReturnValue:
    return search()


@bp.get("/department/<code>")
@public
@cacheable
def department(code: str) -> ResponseReturnValue:
    dept = db().scalar(select(Department).where(Department.code == code)) or abort(404)
    return _search_page(dept.name, heading_note="department", department=code)


@bp.get("/domain/<path:name>")
@public
@cacheable
def domain(name: str) -> ResponseReturnValue:
    if not catalog.domain_is_public(db(), name):
        abort(404)
    return _search_page(name, heading_note="domain", domain=name)


def _preview(table: DataTable, page: int) -> dict | None:
    """A page of the table, or None when its file is missing behind the portal's back: the
    record and its downloads' links still show (the downloads answer 503), the bureau is told."""
    try:
        return catalog.preview(portal().storage, table, page, PREVIEW_ROWS)
    except FileNotFoundError as exc:
        file_missing(exc)
        return None


# A dataset page asked to filter, sort or chart a table, or to try an API call, runs a query over
# the data file each time: limited as the data API is, so varying the query string cannot keep
# the server busy.
PREVIEW_QUERY_ARGS = (
    "col",
    "op",
    "val",
    "sort",
    "order",
    "fpage",
    "x",
    "y",
    "agg",
    "kind",
    "api_call",
    "api_col",
    "api_val",
    "api_fields",
)


def _plain_dataset_page() -> bool:
    return not any(k in request.args for k in PREVIEW_QUERY_ARGS)


def _sample(table: DataTable) -> sample.Sample | None:
    try:
        return sample.sample_of(portal().storage, table)
    except FileNotFoundError as exc:
        file_missing(exc)
        return None


@bp.get("/dataset/<name>")
@public
@limiter.limit(
    lambda: current_app.config.get("DATA_API_RATE") or portal().settings.data_api_rate,
    exempt_when=_plain_dataset_page,
)
@cacheable
def dataset(name: str) -> ResponseReturnValue:
    generation = part_generation()  # before the dataset is read (portal/fragments.py)
    # What the page needs of the dataset's row, kept like the parts: a withdrawal, a hold or a
    # reclassification moves the generation at its commit, and the next request asks again.
    ds = shown_dataset(generation, name)
    if ds is None and (kept := catalog.merged_into(db(), name)) is not None:
        return redirect(url_for("catalog.dataset", name=kept), 301)  # merged (Art. 15): the entry kept
    if ds is None:
        why = catalog.out_of_view(db(), name)
        # Once public, now out of view: say so (without its title, which may be what is being
        # fixed) instead of vanishing; anything else is simply not found.
        abort(
            404,
            description={
                "review": _("该数据集正在审核或更新，暂停公开。处理完成后将恢复公开。"),
                "withdrawn": _("该数据集已撤回，暂不公开。"),
            }.get(why or ""),
        )
    page = max(request.args.get("preview", 1, type=int) or 1, 1)
    whole = [True]

    def render() -> dict[str, Markup]:
        parts, whole[0] = _dataset_parts(catalog.get_public_dataset(db(), name) or abort(404), page)
        return parts

    # Kept (and shared) only when whole: not while a data file is missing.
    parts = kept_part(
        generation, _dataset_key(ds, page), render, size=lambda p: text_size(p) if whole[0] else None
    )
    return render_template(
        "dataset.html",
        ds=ds,
        parts=parts,
        feedback_forms={"error": ErrorReportForm(formdata=None)} if current_user.is_authenticated else {},
    )


def _dataset_key(ds: ShownDataset, page: int) -> tuple | None:
    """What the page's shared parts show beyond the generation: the dataset's download count
    (added without an ORM change: as old as the kept row, at most the parts' lifetime), the
    language and today (the acquisition date). Rendered for the reader alone (None): a page
    asked to filter, chart or try a call; a later preview page (any number can be asked, the
    render clamps it: kept, each would be one more copy); and a grant holder's page of conditional data, whose licensed previews
    are logged at each view (portal/views/previews.py) and never leave the worker."""
    if not _plain_dataset_page() or page > 1:
        return None
    if (
        ds.open_class == OpenClass.CONDITIONAL.value
        and current_user.is_authenticated
        and ds.id in _datasets_granted_to_reader()
    ):
        return None
    return ("dataset", ds.id, ds.download_count, g.lang, clock.today())


def _datasets_granted_to_reader() -> frozenset[int]:
    """The datasets the signed-in reader holds a grant in force for, kept per reader and day at
    the generation (a grant made, revoked or suspended with its dataset moves it)."""
    return kept_part(
        part_generation(),
        ("reader grants", current_user.id, clock.today()),
        lambda: datasets_granted(db(), current_user),
        size=lambda held: 64 + 16 * len(held),
        share=False,  # not text: this worker only
    )


def _dataset_parts(ds: Dataset, page: int) -> tuple[dict[str, Markup], bool]:
    """The parts of a dataset page every reader with the same key sees, rendered; and whether
    they may be kept (not while a data file is missing: the page says so until it is back)."""
    previews, samples = {}, {}
    if ds.open_class == OpenClass.UNCONDITIONAL.value:
        previews = {t.id: _preview(t, page) for t in ds.served_tables}
    else:  # conditional: a synthetic sample to judge it by before applying (样例数据)
        samples = {t.id: _sample(t) for t in ds.served_tables}
    s = db()
    reports = s.scalars(
        select(ErrorReport).where(ErrorReport.dataset_id == ds.id).order_by(ErrorReport.id.desc())
    ).all()
    comments = s.scalars(
        select(Rating)
        .where(Rating.dataset_id == ds.id, Rating.comment.is_not(None))
        .order_by(Rating.id.desc())
        .limit(20)
    ).all()
    context = dict(
        ds=ds,
        previews=previews,
        samples=samples,
        preview_page=page,
        see=see_first.for_dataset(ds),  # chart, map, filters (portal/views/previews.py)
        attribution=catalog.attribution_line(ds),
        history=catalog.history(ds),
        reports=reports,
        comments=comments,
        rating=rating_summary(s, ds),
        **content.dataset_context(s, ds),  # related datasets, the showcase entries using it
        api=dataset_api.section(ds),  # its API calls and the try-it form (portal/views/dataset_api.py)
    )
    parts = {
        part: Markup(render_template(f"dataset/_{part}.html", **context)) for part in ("head", "body", "tail")
    }
    whole = all(v is not None for v in (*previews.values(), *samples.values()))
    return parts, whole


@bp.get("/open-licence")
@public
def open_licence_current() -> ResponseReturnValue:
    return redirect(url_for("catalog.open_licence", version=open_licence_module.CURRENT.version))


@bp.get("/open-licence/<version>")
@public
@cacheable
def open_licence(version: str) -> ResponseReturnValue:
    """The open licence of unconditional data, in the page's language, by version."""
    from flask import g

    found = open_licence_module.VERSIONS.get(version) or abort(404)
    lang = "en" if g.get("lang") == "en" else "zh"
    return render_template(
        "open_licence.html",
        licence=found,
        title=found.title[lang],
        clauses=found.clauses[lang],
        current=open_licence_module.CURRENT,
    )


@bp.get("/evaluation")
@public
@cacheable
def evaluation_public() -> ResponseReturnValue:
    """The departments' record, published as Chinese portals do: opening rate, on-time rate
    of decisions on applications, downloads (Art. 6), by year or quarter."""
    from .. import stats

    period = stats.period_of(request.args.get("period"))
    rows = stats.evaluation(db(), period=period[:2])
    return render_template(
        "evaluation.html", rows=rows, period=period, period_arg=request.args.get("period", "")
    )


@bp.get("/lists")
@public
@cacheable
def lists() -> ResponseReturnValue:
    return render_template("lists_index.html", departments=catalog.departments_with_counts(db()))


@bp.get("/department/<code>/lists")
@public
@cacheable
def department_lists(code: str) -> ResponseReturnValue:
    s = db()
    dept = s.scalar(select(Department).where(Department.code == code)) or abort(404)
    return render_template("lists.html", dept=dept, lists=catalog.open_lists(s, dept))

"""The read side of CKAN's action API, so CKAN clients (ckanapi, harvesters) work against the
portal: package_search and package_show, in CKAN's shapes. Not-open, held, withdrawn and
unknown names answer 404 as CKAN does."""

from __future__ import annotations

import hashlib
import json
import re

from flask import Blueprint, Response, current_app, g, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func
from sqlalchemy.orm import selectinload

from .. import catalog, clock, open_licence
from ..authz import public
from ..messages import source
from ..models import Dataset, DataTable, Department, Distribution, OpenClass
from ..page_cache import cacheable
from ..search import FACETS, SearchQuery
from ..web import db, fresh_search, kept_part, part_generation, shown_dataset

bp = Blueprint("api", __name__, url_prefix="/api/3/action")

# CKAN facet and fq names → ours
CKAN_FIELDS = {
    "organization": "department",
    "groups": "domain",
    "res_format": "format",
    "open_class": "open_class",
    "update_cycle": "update_cycle",
    "domain": "domain",
    "department": "department",
    "format": "format",
}
OURS_TO_CKAN = {
    "department": "organization",
    "domain": "groups",
    "format": "res_format",
    "open_class": "open_class",
    "update_cycle": "update_cycle",
}
SORTS = {
    "score desc": "relevance",
    "relevance": "relevance",
    "metadata_modified desc": "newest",
    "metadata_created desc": "newest",
    "name asc": "name",
    "title_string asc": "name",
    "downloads desc": "downloads",
}
MAX_ROWS = 1000


@bp.after_request
def _cors(response: Response) -> Response:
    """The public read API answers any origin (it reads public data only, no cookies needed)."""
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _help(action: str) -> str:
    return url_for("api.help_show", name=action, _external=True)


def ok(action: str, result: object) -> Response:
    return jsonify({"help": _help(action), "success": True, "result": result})


def error(action: str, status: int, kind: str, message: str, **extra: object) -> tuple[Response, int]:
    body = {"help": _help(action), "success": False, "error": {"__type": kind, "message": message, **extra}}
    return jsonify(body), status


@bp.route("/help_show", methods=["GET", "POST"])
@public
@cacheable
def help_show() -> ResponseReturnValue:
    return ok("help_show", f"{request.args.get('name', '')}: see /api/docs")


def params() -> dict:
    """CKAN clients send GET parameters, or POST a JSON body (ckanapi does)."""
    data = request.args.to_dict()
    if request.method == "POST":
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            data.update(body)
        else:
            data.update(request.form.to_dict())
    return data


def parse_fq(fq: str) -> dict[str, list[str]]:
    """CKAN filter queries: organization:dcf-scjgj res_format:"CSV" +groups:交通运输 ..."""
    filters: dict[str, list[str]] = {}
    for m in re.finditer(r'\+?([\w.]+):(?:"([^"]*)"|(\S+))', fq or ""):
        field = CKAN_FIELDS.get(m.group(1))
        if field:
            filters.setdefault(field, []).append(m.group(2) if m.group(2) is not None else m.group(3))
    return filters


MAX_START = 10**9


@bp.route("/package_search", methods=["GET", "POST"])
@public
@cacheable
def package_search() -> ResponseReturnValue:
    generation = part_generation()  # before the index or the catalog is read (portal/fragments.py)
    args = params()
    # The same answer for everyone asking this host with these parameters: kept (its links are
    # absolute; each package's attribution states today's date).
    asked = json.dumps(args, sort_keys=True, default=str).encode()  # a JSON body may be large: its digest
    key = ("package_search", clock.today(), hashlib.sha256(asked).hexdigest())
    answer = kept_part(generation, key, lambda: _package_search(args), share=False)
    if isinstance(answer, str):
        return current_app.response_class(answer, mimetype="application/json")
    return answer  # a refusal (409): not kept


def _package_search(args: dict) -> str | tuple[Response, int]:
    try:
        rows = min(max(int(args.get("rows", 10)), 0), MAX_ROWS)
        start = min(
            max(int(args.get("start", 0)), 0), MAX_START
        )  # beyond any result; PostgreSQL's OFFSET is 64-bit
        facet_fields = args.get("facet.field") or list(OURS_TO_CKAN.values())
        if isinstance(facet_fields, str):
            facet_fields = json.loads(facet_fields)
        if not isinstance(facet_fields, list) or not all(isinstance(f, str) for f in facet_fields):
            raise ValueError("facet.field")
        facet_limit = int(args.get("facet.limit", 50))
    except (ValueError, TypeError):
        return error(
            "package_search",
            409,
            "Validation Error",
            "rows, start and facet.limit must be integers; facet.field a JSON list",
        )
    q = str(args.get("q") or "")
    if q.strip() in ("*:*", "*"):
        q = ""
    sort = SORTS.get(str(args.get("sort") or "score desc").strip().lower(), "relevance")
    result = fresh_search(
        SearchQuery(
            q=q,
            filters=parse_fq(str(args.get("fq") or "")),
            sort=sort,
            start=start,
            rows=rows,
            facet_limit=facet_limit,
        )
    )
    by_name = _packages([h.name for h in result.hits])
    facets, search_facets = {}, {}
    for ours in FACETS:
        name = OURS_TO_CKAN[ours]
        if name not in facet_fields and ours not in facet_fields:
            continue
        values = result.facets.get(ours, [])
        facets[name] = {v.value: v.count for v in values}
        search_facets[name] = {
            "title": name,
            "items": [{"name": v.value, "display_name": v.label, "count": v.count} for v in values],
        }
    return ok(
        "package_search",
        {
            "count": result.total,
            "sort": args.get("sort", "score desc"),
            "facets": facets,
            "search_facets": search_facets,
            "results": [by_name[h.name] for h in result.hits if h.name in by_name],
        },
    ).get_data(as_text=True)


@bp.route("/package_show", methods=["GET", "POST"])
@public
@cacheable
def package_show() -> ResponseReturnValue:
    args = params()
    name = str(args.get("id") or args.get("name_or_id") or "")
    generation = part_generation()  # before the dataset is read (portal/fragments.py)
    shown = shown_dataset(generation, name)  # the row's facts, kept: a kept answer reads no row
    if shown is None:
        return error("package_show", 404, "Not Found Error", "Not found")
    g.api_dataset_id = shown.id  # counted as a call about it (portal/views/api_usage.py)
    # The answer is the same for everyone asking this host today (the attribution line states
    # the acquisition date); its links are absolute, so the host is part of the key.
    key = ("package_show", shown.id, request.host_url, clock.today())
    try:
        body = kept_part(generation, key, lambda: _package_show(name))
    except LookupError:  # out of view since the generation was read: nothing kept
        return error("package_show", 404, "Not Found Error", "Not found")
    return current_app.response_class(body, mimetype="application/json")


def _package_show(name: str) -> str:
    ds = catalog.get_public_dataset(db(), name, whole=False)
    if ds is None:
        raise LookupError(name)
    return ok("package_show", package_dict(ds)).get_data(as_text=True)


def _packages(names: list[str]) -> dict[str, dict]:
    if not names:
        return {}
    rows = db().scalars(
        catalog.public_datasets()
        .where(Dataset.name.in_(names))
        .options(
            selectinload(Dataset.department),
            selectinload(Dataset.distributions).selectinload(Distribution.tables),
        )
    )
    return {d.name: package_dict(d) for d in rows}


def package_dict(ds: Dataset) -> dict:
    page = url_for("catalog.dataset", name=ds.name, _external=True)
    extras = {
        "resource_code": ds.resource_code,
        "open_class": ds.open_class,
        "domain": ds.domain,
        "update_cycle": ds.update_cycle,
        "share_class": ds.share_class,
        "published": ds.published_date.isoformat() if ds.published_date else None,
        "attribution": catalog.attribution_line(ds),
    }
    if ds.open_class == OpenClass.CONDITIONAL.value:
        extras.update(open_conditions=ds.effective_conditions, legal_basis=ds.effective_basis)
    resources = []
    for t in ds.served_tables:
        dist = t.distribution
        for fmt, facts in t.formats.items():
            if ds.open_class == OpenClass.UNCONDITIONAL.value:
                url = url_for("downloads.download", name=ds.name, table_id=t.id, fmt=fmt, _external=True)
            else:  # conditional: the link leads to the licence flow, never to data
                url = f"{page}#apply"
            resources.append(
                {
                    "id": f"{t.id}-{fmt}",
                    "package_id": ds.name,
                    "name": f"{t.sheet or dist.source_name} ({fmt.upper()})",
                    "format": fmt.upper(),
                    "url": url,
                    "size": facts["size"],
                    "hash": f"sha256:{facts['sha256']}",
                    "last_modified": dist.fetched_at.isoformat(),
                    "url_type": None,
                    "table_id": t.id,
                    "restricted": ds.open_class == OpenClass.CONDITIONAL.value,
                }
            )
    return {
        "id": ds.name,
        "name": ds.name,
        "title": ds.title,
        "notes": ds.summary,
        "url": page,
        "type": "dataset",
        "state": "active",
        "private": False,
        "owner_org": ds.department.code,
        "organization": {"name": ds.department.code, "title": ds.department.name},
        "groups": [{"name": ds.domain, "title": ds.domain}] if ds.domain else [],
        "tags": [{"name": t, "display_name": t} for t in ds.tags or []],
        "num_tags": len(ds.tags or []),
        **_licence_fields(ds),
        "metadata_created": ds.created_at.isoformat(),
        "metadata_modified": ds.updated_at.isoformat(),
        "extras": [{"key": k, "value": v} for k, v in extras.items() if v is not None],
        "resources": resources,
        "num_resources": len(resources),
    }


def _licence_fields(ds: Dataset) -> dict:
    """CKAN's licence fields: the open licence for unconditional data; conditional data is used
    under each grant's agreement, which the application process makes."""
    if ds.open_class == OpenClass.UNCONDITIONAL.value:
        licence = open_licence.CURRENT
        return {
            "license_id": licence.id,
            "license_title": licence.title["zh"],
            "license_url": url_for("catalog.open_licence", version=licence.version, _external=True),
        }
    return {
        "license_id": "conditional",
        "license_title": source(OpenClass.CONDITIONAL.label),
        "license_url": url_for("catalog.dataset", name=ds.name, _external=True) + "#apply",
    }


# ---------------------------------------------------------------------- the rest of CKAN's read side


def _int(args: dict, name: str, default: int, most: int = MAX_ROWS) -> int:
    value = args.get(name)
    if value in (None, ""):
        return default
    number = int(value)  # ValueError → 409 below
    if number < 0:
        raise ValueError(name)
    return min(number, most)


def _bad(action: str, exc: Exception) -> tuple[Response, int]:
    return error(action, 409, "Validation Error", f"invalid parameter: {exc}")


@bp.route("/status_show", methods=["GET", "POST"])
@public
@cacheable
def status_show() -> ResponseReturnValue:
    return ok(
        "status_show",
        {
            "site_title": "东昌府区公共数据开放平台",
            "site_url": request.host_url.rstrip("/"),
            "site_description": "Dongchangfu District open-data portal (CKAN-compatible read API)",
            "ckan_version": "2.12.0",
            "api_version": 3,
            "locale_default": "zh_Hans_CN",
            "extensions": [],
        },
    )


@bp.route("/package_list", methods=["GET", "POST"])
@public
@cacheable
def package_list() -> ResponseReturnValue:
    args = params()
    try:
        limit, offset = _int(args, "limit", MAX_ROWS), _int(args, "offset", 0, 10**9)
    except ValueError as exc:
        return _bad("package_list", exc)
    names = (
        db()
        .scalars(
            catalog.public_datasets()
            .with_only_columns(Dataset.name)
            .order_by(Dataset.name)
            .limit(limit)
            .offset(offset)
        )
        .all()
    )
    return ok("package_list", list(names))


@bp.route("/current_package_list_with_resources", methods=["GET", "POST"])
@public
@cacheable
def current_package_list_with_resources() -> ResponseReturnValue:
    args = params()
    try:
        limit, offset = _int(args, "limit", 100), _int(args, "offset", 0, 10**9)
    except ValueError as exc:
        return _bad("current_package_list_with_resources", exc)
    rows = (
        db()
        .scalars(
            catalog.public_datasets()
            .order_by(Dataset.updated_at.desc(), Dataset.id.desc())
            .limit(limit)
            .offset(offset)
            .options(
                selectinload(Dataset.department),
                selectinload(Dataset.distributions).selectinload(Distribution.tables),
            )
        )
        .all()
    )
    return ok("current_package_list_with_resources", [package_dict(d) for d in rows])


def _organizations() -> list[tuple]:
    return catalog.departments_with_counts(db())


def _org_dict(dept: Department, count: int) -> dict:
    return {
        "id": dept.code,
        "name": dept.code,
        "title": dept.name,
        "display_name": dept.name,
        "type": "organization",
        "is_organization": True,
        "state": "active",
        "package_count": count,
        "description": "",
    }


@bp.route("/organization_list", methods=["GET", "POST"])
@public
@cacheable
def organization_list() -> ResponseReturnValue:
    args = params()
    orgs = sorted(_organizations(), key=lambda pair: pair[0].code)
    if str(args.get("all_fields", "")).lower() in ("true", "1"):
        return ok("organization_list", [_org_dict(d, n) for d, n in orgs])
    return ok("organization_list", [d.code for d, _ in orgs])


@bp.route("/organization_show", methods=["GET", "POST"])
@public
@cacheable
def organization_show() -> ResponseReturnValue:
    args = params()
    code = str(args.get("id") or "")
    found = next(((d, n) for d, n in _organizations() if d.code == code), None)
    if found is None:
        return error("organization_show", 404, "Not Found Error", "Not found")
    result = _org_dict(*found)
    if str(args.get("include_datasets", "")).lower() in ("true", "1"):
        rows = (
            db()
            .scalars(
                catalog.public_datasets()
                .where(Dataset.department_id == found[0].id)
                .order_by(Dataset.name)
                .limit(1000)
                .options(
                    selectinload(Dataset.department),
                    selectinload(Dataset.distributions).selectinload(Distribution.tables),
                )
            )
            .all()
        )
        result["packages"] = [package_dict(d) for d in rows]
    return ok("organization_show", result)


@bp.route("/group_list", methods=["GET", "POST"])
@public
@cacheable
def group_list() -> ResponseReturnValue:
    """Groups are the domains (数据领域)."""
    args = params()
    rows = (
        db()
        .execute(
            catalog.public_datasets()
            .with_only_columns(Dataset.domain, func.count())
            .where(Dataset.domain.is_not(None))
            .group_by(Dataset.domain)
            .order_by(Dataset.domain)
        )
        .all()
    )
    if str(args.get("all_fields", "")).lower() in ("true", "1"):
        return ok(
            "group_list",
            [
                {
                    "id": d,
                    "name": d,
                    "title": d,
                    "display_name": d,
                    "package_count": n,
                    "type": "group",
                    "state": "active",
                }
                for d, n in rows
            ],
        )
    return ok("group_list", [d for d, _ in rows])


@bp.route("/tag_list", methods=["GET", "POST"])
@public
@cacheable
def tag_list() -> ResponseReturnValue:
    args = params()
    query = str(args.get("query") or "").strip().lower()
    tags = sorted(
        {
            t
            for tags in db().scalars(catalog.public_datasets().with_only_columns(Dataset.tags))
            for t in tags or []
        }
    )
    return ok("tag_list", [t for t in tags if query in t.lower()])


@bp.route("/resource_show", methods=["GET", "POST"])
@public
@cacheable
def resource_show() -> ResponseReturnValue:
    args = params()
    resource_id = str(args.get("id") or "")
    table_id, _, fmt = resource_id.partition("-")
    if not table_id.isdigit() or int(table_id) >= 2**31:
        return error("resource_show", 404, "Not Found Error", "Not found")
    s = db()
    table = s.get(DataTable, int(table_id))
    ds = catalog.get_public_dataset(s, table.distribution.dataset.name) if table is not None else None
    if ds is None or table not in ds.served_tables:
        return error("resource_show", 404, "Not Found Error", "Not found")
    for resource in package_dict(ds)["resources"]:
        if resource["id"] == resource_id:
            return ok("resource_show", resource)
    return error("resource_show", 404, "Not Found Error", "Not found")

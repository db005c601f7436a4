"""DCAT-AP 3: /catalog.ttl|.rdf|.jsonld (paged), /dataset/<name>.ttl|.rdf|.jsonld, and
content negotiation on /catalog (Accept: text/turtle, application/rdf+xml, application/ld+json)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, request
from flask.typing import ResponseReturnValue
from rdflib import Graph
from sqlalchemy import func
from sqlalchemy.orm import selectinload

from .. import catalog
from ..authz import public
from ..catalog import dcat
from ..models import Dataset, Distribution
from ..page_cache import cacheable
from ..web import db

bp = Blueprint("dcat", __name__)
PAGE = 100
ACCEPT = {"text/turtle": "turtle", "application/rdf+xml": "xml", "application/ld+json": "json-ld"}


def _answer(g: Graph, fmt: str) -> Response:
    response = Response(g.serialize(format=fmt), mimetype=dcat.MIME[fmt].split(";")[0])
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/catalog")
@public
@bp.get("/catalog.<any(ttl, rdf, jsonld):suffix>")
@cacheable
def catalog_rdf(suffix: str | None = None) -> ResponseReturnValue:
    fmt = (
        dcat.FORMAT_SUFFIX.get(suffix)
        if suffix
        else (best := request.accept_mimetypes.best_match(ACCEPT)) and ACCEPT[best]
    )
    fmt = fmt or "turtle"
    s = db()
    total = s.scalar(catalog.public_datasets().with_only_columns(func.count()).order_by(None)) or 0
    pages = max((total + PAGE - 1) // PAGE, 1)
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), pages)
    rows = s.scalars(
        catalog.public_datasets()
        .order_by(Dataset.id)
        .offset((page - 1) * PAGE)
        .limit(PAGE)
        .options(
            selectinload(Dataset.department),
            selectinload(Dataset.distributions).selectinload(Distribution.tables),
        )
    ).all()
    return _answer(dcat.catalog_graph(request.host_url.rstrip("/"), rows, page, pages), fmt)


@bp.get("/dataset/<name>.<any(ttl, rdf, jsonld):suffix>")
@public
@cacheable
def dataset_rdf(name: str, suffix: str) -> ResponseReturnValue:
    ds = catalog.get_public_dataset(db(), name) or abort(404)
    g = dcat.graph()
    dcat.add_dataset(g, request.host_url.rstrip("/"), ds)
    return _answer(g, dcat.FORMAT_SUFFIX[suffix])

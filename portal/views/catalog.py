"""Public pages: home, dataset list, dataset page, open downloads. Thin: query, render."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request, send_file
from sqlalchemy import func, or_, select

from ..catalog import counts_by_class, departments_with_counts, get_public_dataset, public_datasets
from ..models import Dataset, DataTable, Department, Distribution, OpenClass
from ..web import db, portal

bp = Blueprint("catalog", __name__)
PAGE_SIZE = 20


@bp.get("/")
def home():
    s = db()
    newest = s.scalars(public_datasets().order_by(Dataset.published_date.desc().nulls_last(), Dataset.id.desc())
                       .limit(8)).all()
    domains = s.execute(public_datasets().with_only_columns(Dataset.domain, func.count())
                        .group_by(Dataset.domain).order_by(func.count().desc())).all()
    return render_template("home.html", counts=counts_by_class(s), newest=newest, domains=domains,
                           departments=departments_with_counts(s))


@bp.get("/datasets")
def datasets():
    s = db()
    query = public_datasets()
    q = request.args.get("q", "").strip()
    if q:
        like = f"%{q}%"
        query = query.where(or_(Dataset.title.ilike(like), Dataset.summary.ilike(like),
                                Dataset.resource_code.ilike(like)))
    if dept := request.args.get("department"):
        query = query.join(Department).where(Department.code == dept)
    if cls := request.args.get("open_class"):
        query = query.where(Dataset.open_class == cls)
    if domain := request.args.get("domain"):
        query = query.where(Dataset.domain == domain)
    total = s.scalar(query.with_only_columns(func.count()).order_by(None))
    page = max(request.args.get("page", 1, type=int), 1)
    rows = s.scalars(query.order_by(Dataset.title).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    return render_template("datasets.html", rows=rows, total=total, page=page, page_size=PAGE_SIZE, q=q)


@bp.get("/dataset/<name>")
def dataset(name: str):
    ds = get_public_dataset(db(), name) or abort(404)
    return render_template("dataset.html", ds=ds, OpenClass=OpenClass)


@bp.get("/dataset/<name>/download/<int:table_id>.<fmt>")
def download(name: str, table_id: int, fmt: str):
    """Unconditional data only; conditional data needs a grant (licensing issue)."""
    s = db()
    ds = get_public_dataset(s, name)
    if ds is None or ds.open_class != OpenClass.UNCONDITIONAL.value or fmt not in ("csv", "parquet"):
        abort(404)
    table = s.scalar(select(DataTable).join(Distribution).where(
        DataTable.id == table_id, Distribution.dataset_id == ds.id, Distribution.superseded_at.is_(None)))
    if table is None:
        abort(404)
    path = portal().storage.path(table.csv_path if fmt == "csv" else table.parquet_path)
    ds.download_count += 1
    s.commit()
    return send_file(path, as_attachment=True, download_name=f"{ds.title}.{fmt}", conditional=True)

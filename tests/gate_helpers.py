"""Helpers for the publication-gate suites: harvest a catalog, then read back every byte any
public path answers — every format of every table of every version, bundles, previews, the
data API, the CKAN API, DCAT and search — as a person or a program would get it."""
from __future__ import annotations

import io
import zipfile

from sqlalchemy import select

from harvest.sources import SpreadsheetSource
from portal.models import Dataset, DataTable, Distribution
from tests.catalogs import write_catalog


def harvest(ctx, folder, entries, name="catalog.csv"):
    report = ctx.harvester().run(SpreadsheetSource(write_catalog(folder / name, entries)))
    from portal.search.sync import sync

    sync(ctx.sessions, ctx.search)
    return report


def text_of(body: bytes, content_type: str) -> str:
    """What a reader sees in an answer: CSV/JSON/HTML as text, XLSX cells, Parquet rows, and
    every file in a ZIP."""
    if body[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(body)) as zf:
            names = zf.namelist()
            if "xl/workbook.xml" in names:
                from openpyxl import load_workbook

                wb = load_workbook(io.BytesIO(body), read_only=True)
                return "\n".join(str(c) for ws in wb.worksheets for r in ws.iter_rows(values_only=True) for c in r)
            return "\n".join(text_of(zf.read(n), "") for n in names)
    if body[:4] == b"PAR1":
        import pyarrow.parquet as pq

        return str(pq.read_table(io.BytesIO(body)).to_pylist())
    return body.decode("utf-8", errors="replace")


def public_answers(client, ctx) -> dict[str, str]:
    """url -> text of every 200 answer a stranger can get about any dataset, whatever its
    status: the ids of all tables of all versions are tried, not only the linked ones."""
    with ctx.sessions() as s:
        datasets = s.scalars(select(Dataset)).all()
        tables = s.execute(select(Dataset.name, Dataset.title, DataTable.id, DataTable.position)
                           .join(Distribution, Distribution.dataset_id == Dataset.id)
                           .join(DataTable, DataTable.distribution_id == Distribution.id)).all()
        names = [(d.name, d.title) for d in datasets]
    urls = ["/", "/search?q=", "/lists", "/catalog.ttl", "/api/3/action/package_search?rows=1000",
            "/api/3/action/current_package_list_with_resources?limit=1000"]
    for name, title in names:
        urls += [f"/dataset/{name}", f"/dataset/{name}?preview=2", f"/api/3/action/package_show?id={name}",
                 f"/api/data/{name}?limit=1000", f"/api/data/{name}?limit=1000&format=csv",
                 f"/api/data/{name}/fields", f"/dataset/{name}/datapackage.json",
                 f"/search?q={title[:2]}"]  # a word of the title: the page repeats the query itself
    for name, _title, table_id, _formats in tables:
        urls += [f"/dataset/{name}/download/{table_id}.{fmt}" for fmt in ("csv", "xlsx", "json", "parquet")]
        urls += [f"/dataset/{name}/bundle/{table_id}.zip", f"/api/data/{name}?table={table_id}&limit=1000",
                 f"/api/3/action/resource_show?id={table_id}-csv"]
    answers = {}
    for url in dict.fromkeys(urls):
        resp = client.get(url)
        if resp.status_code == 302 and "download" in url:  # an object store's signed link
            resp = client.get(resp.headers["Location"])
        if resp.status_code == 200:
            answers[url] = text_of(resp.get_data(), resp.content_type or "")
    return answers


def leaks(client, ctx, secrets: list[str]) -> dict[str, list[str]]:
    """Which planted values any public answer holds (compared without spaces and dashes)."""
    def bare(text: str) -> str:
        return text.replace(" ", "").replace("-", "").replace("\u3000", "")

    found: dict[str, list[str]] = {}
    for url, text in public_answers(client, ctx).items():
        hits = [v for v in secrets if bare(v) in bare(text)]
        if hits:
            found[url] = hits
    return found


def dataset(ctx, name):
    from sqlalchemy.orm import selectinload

    with ctx.sessions() as s:
        return s.scalar(select(Dataset).where(Dataset.name == name).options(
            selectinload(Dataset.distributions).selectinload(Distribution.tables)))

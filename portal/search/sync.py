"""The database decides what the index holds: only public datasets (rules.md 6).

The harvest marks every dataset it touches `search_dirty` in the same transaction; sync()
indexes the public ones among them, removes the rest, and clears the marks after the index
has committed. `portal reindex` rebuilds everything from the database.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from ..catalog import public_datasets
from ..models import Dataset, Distribution
from ..page_cache import mark_public_change
from . import SearchBackend, SearchDoc


def search_doc(ds: Dataset) -> SearchDoc:
    tables = [t for d in ds.current_distributions for t in d.tables]
    formats = sorted({d.media_format.upper() for d in ds.current_distributions})
    edits = ds.edits or {}
    return SearchDoc(
        name=ds.name,
        title=ds.title,
        summary=ds.summary or "",
        tags=list(ds.tags or []),
        department=ds.department.code,
        department_name=ds.department.name,
        domain=ds.domain or "",
        open_class=ds.open_class or "",
        format=formats[0] if formats else (ds.data_format or "").split(",")[0].strip(),
        update_cycle=ds.update_cycle or "",
        fields=[f["name"] for t in tables for f in t.schema],
        resource_code=ds.resource_code or "",
        published=ds.published_date,
        title_en=edits.get("title_en") or "",
        summary_en=edits.get("summary_en") or "",
    )


def _with_children(query: Select[Dataset]) -> Select[Dataset]:
    return query.options(
        selectinload(Dataset.department),
        selectinload(Dataset.distributions).selectinload(Distribution.tables),
    )


def sync(sessions: sessionmaker[Session], backend: SearchBackend, batch: int = 500) -> tuple[int, int]:
    """Bring the index up to date with every dataset marked dirty. Returns (indexed, removed)."""
    indexed = removed = 0
    while True:
        with sessions() as s:
            dirty = s.scalars(
                _with_children(
                    select(Dataset).where(Dataset.search_dirty.is_(True)).order_by(Dataset.id).limit(batch)
                )
            ).all()
            if not dirty:
                return indexed, removed
            public = [d for d in dirty if d.is_public]
            hidden = [d.name for d in dirty if not d.is_public]
            backend.index(search_doc(d) for d in public)
            backend.remove(hidden)
            s.execute(update(Dataset).where(Dataset.id.in_([d.id for d in dirty])).values(search_dirty=False))
            # Pages rendered between the catalog's commit and this one used the old index:
            # they go now (portal/page_cache.py, portal/fragments.py).
            mark_public_change(s)
            s.commit()
            indexed, removed = indexed + len(public), removed + len(hidden)


def reindex(
    sessions: sessionmaker[Session],
    backend: SearchBackend,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    with sessions() as s:
        total = s.scalar(public_datasets().with_only_columns(func.count()).order_by(None)) or 0
        query = _with_children(public_datasets().order_by(Dataset.id)).execution_options(yield_per=1000)
        n = backend.rebuild(
            (search_doc(d) for d in s.scalars(query)),
            progress=(lambda done: progress(done, total)) if progress else None,
        )
        s.execute(update(Dataset).values(search_dirty=False))
        s.commit()
    return n


def popularity(sessions: sessionmaker[Session]) -> Callable[[], dict[str, int]]:
    def counts() -> dict[str, int]:
        with sessions() as s:
            return dict(
                s.execute(
                    public_datasets()
                    .with_only_columns(Dataset.name, Dataset.download_count)
                    .where(Dataset.download_count > 0)
                ).all()
            )

    return counts

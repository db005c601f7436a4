"""What a department and the bureau decided that every harvest keeps: the department's edits
over the catalog's values, and a restriction awaiting the bureau's approval (the dataset stays
out of public view meanwhile). The console's rules that make these decisions are in
portal/catalog/curation.py; the harvester only respects them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import Dataset, RestrictionRequest

from .holds import detail


def pending_hold() -> list[dict]:
    """What holds a dataset while its restriction waits for the bureau."""
    return [detail("restriction_pending")]


EDITABLE = ("title", "summary", "tags", "domain", "title_en", "summary_en")


def apply_edits(ds: Dataset) -> None:
    """The department's edits over the catalog's values (called by every harvest)."""
    edits = ds.edits or {}  # a new Dataset has none until it is flushed
    for key in ("title", "summary", "domain"):
        if edits.get(key):
            setattr(ds, key, edits[key])
    if edits.get("tags"):
        ds.tags = list(edits["tags"])


def pending_restriction(session: Session, ds: Dataset) -> RestrictionRequest | None:
    if ds.id is None:
        return None
    return session.scalar(
        select(RestrictionRequest).where(
            RestrictionRequest.dataset_id == ds.id, RestrictionRequest.decision.is_(None)
        )
    )

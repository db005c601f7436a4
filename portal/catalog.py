"""Read side of the catalog. Every public page, API answer and download finds datasets
through here, so the rule 'nothing not open, held or withdrawn is ever public' lives in
one place (rules.md 6)."""
from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from .models import PUBLIC_CLASSES, Dataset, DatasetStatus, Department, Distribution


def public_datasets() -> Select[tuple[Dataset]]:
    return select(Dataset).where(Dataset.status == DatasetStatus.PUBLISHED.value,
                                 Dataset.open_class.in_(PUBLIC_CLASSES))


def get_public_dataset(session: Session, name: str) -> Dataset | None:
    return session.scalar(public_datasets().where(Dataset.name == name).options(
        selectinload(Dataset.distributions).selectinload(Distribution.tables),
        selectinload(Dataset.department)))


def counts_by_class(session: Session) -> dict[str, int]:
    rows = session.execute(public_datasets().with_only_columns(Dataset.open_class, func.count())
                           .group_by(Dataset.open_class)).all()
    return {cls: 0 for cls in PUBLIC_CLASSES} | {cls: n for cls, n in rows}


def departments_with_counts(session: Session) -> list[tuple[Department, int]]:
    sub = public_datasets().with_only_columns(Dataset.department_id, func.count().label("n")) \
        .group_by(Dataset.department_id).subquery()
    return list(session.execute(select(Department, sub.c.n).join(sub, sub.c.department_id == Department.id)
                                .order_by(sub.c.n.desc(), Department.name)).all())

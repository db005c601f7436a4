"""Grants follow their datasets (rules.md 4, 6).

A grant is only as good as the datasets it covers are public:
- a dataset withdrawn, held, or awaiting a restriction decision *suspends* the grant
  (Grant.state() says "suspended"): licensed ZIPs, signed links and the data API refuse it
  with the reason, and it resumes by itself when the dataset is published again;
- a dataset that becomes not open *ends* the grant for good: revoked, with the reason, and
  the holder and the bureau are told.

Whatever changes the dataset — a harvest, the console, the bureau's decision — the change
reaches the grants in the same transaction: a SQLAlchemy before_flush listener looks at every
dataset whose status or class changes. The harvester does not import licensing; this module
is loaded with the models that grants need (portal.models.licensing), so every process that
can hold grants follows them.
"""

from __future__ import annotations

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session, UOWTransaction

from portal.messages import Message, _, bilingual
from portal.models import (
    PUBLIC_CLASSES,
    Application,
    ApplicationItem,
    Dataset,
    DatasetStatus,
    Grant,
    OpenClass,
    utcnow,
)

ENDED_REASON = _("数据集已改为不予开放，授权终止")


def is_public(status: str | None, open_class: str | None) -> bool:
    return status == DatasetStatus.PUBLISHED.value and open_class in PUBLIC_CLASSES


def _changed(ds: Dataset) -> tuple[tuple, tuple] | None:
    """(before, after) of (status, class) if this flush changes either."""
    state = inspect(ds)
    status, cls = state.attrs.status.history, state.attrs.open_class.history
    if not (status.has_changes() or cls.has_changes()):
        return None
    before = ((status.deleted or status.unchanged or [None])[0], (cls.deleted or cls.unchanged or [None])[0])
    return before, (ds.status, ds.open_class)


def _grants_of(session: Session, ds: Dataset) -> list[Grant]:
    with session.no_autoflush:
        return list(
            session.scalars(
                select(Grant)
                .join(Application, Application.id == Grant.application_id)
                .join(ApplicationItem, ApplicationItem.application_id == Application.id)
                .where(ApplicationItem.dataset_id == ds.id, Grant.revoked_at.is_(None))
            )
        )


@event.listens_for(Session, "before_flush")
def _follow(session: Session, _context: UOWTransaction, _instances: object) -> None:
    changes = [
        (ds, c) for ds in list(session.dirty) if isinstance(ds, Dataset) and ds.id and (c := _changed(ds))
    ]
    for ds, (before, after) in changes:
        grants = _grants_of(session, ds)
        if not grants:
            continue
        not_open = after[1] == OpenClass.NOT_OPEN.value or after[0] == DatasetStatus.INTERNAL.value
        was_public, now_public = is_public(*before), is_public(*after)
        for grant in grants:
            if not_open:
                grant.revoked_at, grant.revoke_reason = utcnow(), ENDED_REASON.source
                _tell(session, grant, ds, "授权已终止", ENDED_REASON, bureau=True)
            elif was_public and not now_public:
                _tell(
                    session,
                    grant,
                    ds,
                    "授权暂停",
                    _(
                        "数据集「%(title)s」暂停公开（%(why)s），授权暂停使用，数据集恢复公开后自动恢复",
                        title=ds.title,
                        why=_why(ds),
                    ),
                )
            elif now_public and not was_public:
                _tell(
                    session,
                    grant,
                    ds,
                    "授权恢复",
                    _("数据集「%(title)s」已恢复公开，授权恢复使用", title=ds.title),
                )


def _why(ds: Dataset) -> Message | str:
    return {"withdrawn": _("部门撤回"), "held": _("待部门处理或待大数据局审批")}.get(ds.status, ds.status)


def _tell(
    session: Session, grant: Grant, ds: Dataset, subject: str, message: Message, bureau: bool = False
) -> None:
    """A notice in the outbox, written with the change (inside a flush: no mail is sent from
    here; the holder's account page lists it, and portal/mail.py sends it once the change
    commits)."""
    from portal.models import OutboxMessage, User

    subject = f"{subject} · {grant.licence_number}"
    text = bilingual(message)  # mail has no page language: Chinese, then English
    session.add(
        OutboxMessage(
            to=grant.user.email,
            subject=subject,
            body=f"{grant.user.name}，您好：\n\n授权 {grant.licence_number}：{text}\n",
        )
    )
    if bureau:
        with session.no_autoflush:
            for user in session.scalars(select(User).where(User.is_bureau.is_(True))):
                session.add(
                    OutboxMessage(
                        to=user.email,
                        subject=subject,
                        body=(
                            f"授权 {grant.licence_number}（{grant.user.name}）：{text}\n数据集：{ds.title}（{ds.name}）\n"
                        ),
                    )
                )

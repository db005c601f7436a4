"""The public's voice, as rules: error reports answered publicly by the provider within a
working-day deadline; ratings; data requests routed by the bureau and answered by the
department; showcase items whose licence numbers are checked against the grants."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from portal import clock, images, mail
from portal.audit import record
from portal.authz import Action, require
from portal.catalog import public_datasets
from portal.errors import DomainError
from portal.messages import Message, _
from portal.models import (
    DataRequest,
    Dataset,
    Department,
    ErrorReport,
    Grant,
    Rating,
    ShowcaseDataset,
    ShowcaseItem,
    User,
    utcnow,
)
from portal.page_cache import mark_public_change
from portal.workdays import add_working_days

if TYPE_CHECKING:
    from portal.storage import Storage

ERROR_REPORT_WORKING_DAYS = 5
REQUEST_WORKING_DAYS = 10


class FeedbackError(DomainError):
    """A message for the person who wrote in."""


def _text(value: str | None, least: int, message: Message) -> str:
    value = (value or "").strip()
    if len(value) < least:
        raise FeedbackError(message)
    return value


def report_error(
    session: Session, user: User, ds: Dataset, text: str, today: dt.date | None = None
) -> ErrorReport:
    if not ds.is_public:
        raise FeedbackError(_("数据不存在"))
    report = ErrorReport(
        dataset_id=ds.id,
        reporter_id=user.id,
        text=_text(text, 5, _("请具体说明疑义或错误（至少 5 字）")),
        deadline=add_working_days(today or clock.today(), ERROR_REPORT_WORKING_DAYS).date,
    )
    session.add(report)
    record(session, "error_reported", actor=user, target=f"dataset:{ds.name}")
    return report


def answer_error(session: Session, curator: User, report: ErrorReport, answer: str) -> None:
    require(curator, Action.ANSWER_ERROR_REPORT, report)
    report.answer = _text(answer, 2, _("请填写答复"))
    report.answered_by_id, report.answered_at = curator.id, utcnow()
    record(session, "error_answered", actor=curator, target=f"dataset:{report.dataset.name}")


def rate(session: Session, user: User, ds: Dataset, stars: int, comment: str = "") -> Rating:
    if not ds.is_public:
        raise FeedbackError(_("数据不存在"))
    if stars not in range(1, 6):
        raise FeedbackError(_("评分为 1–5 星"))
    mine = select(Rating).where(Rating.dataset_id == ds.id, Rating.user_id == user.id)
    rating = session.scalar(mine)
    if rating is None:
        # Two first ratings of one reader in flight at once (two tabs) both find none: the row
        # is made unless it is there by now (unique per dataset and person), then updated, so
        # the second is an update of the first instead of a failed commit.
        table: Any = Rating.__table__
        if session.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]  # the same API
        session.execute(
            insert(table)
            .values(dataset_id=ds.id, user_id=user.id, stars=stars, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["dataset_id", "user_id"])
        )
        mark_public_change(session)  # a row the ORM did not make: the kept pages must still see it
        rating = session.scalars(mine.execution_options(populate_existing=True)).one()
    rating.stars, rating.comment = stars, (comment or "").strip()[:1000] or None
    return rating


def rating_summary(session: Session, ds: Dataset) -> tuple[float | None, int]:
    avg, n = session.execute(
        select(func.avg(Rating.stars), func.count()).where(Rating.dataset_id == ds.id)
    ).one()
    return (float(avg) if avg is not None else None), n


def ask_for_data(session: Session, user: User, title: str, description: str) -> DataRequest:
    request = DataRequest(
        requester_id=user.id,
        title=_text(title, 2, _("请填写需要的数据"))[:200],
        description=_text(description, 10, _("请说明用途和需要的内容（至少 10 字）")),
    )
    # The same request again within the hour is the same need sent twice (the back button gives a
    # fresh form with the text still in it), not a second need for the department to answer.
    if (
        session.scalar(
            select(DataRequest.id)
            .where(
                DataRequest.requester_id == user.id,
                DataRequest.title == request.title,
                DataRequest.created_at > utcnow() - dt.timedelta(hours=1),
            )
            .limit(1)
        )
        is not None
    ):
        raise FeedbackError(_("您刚刚已提交过同样的数据需求，无需重复提交"))
    session.add(request)
    record(session, "data_requested", actor=user, target="data_request")
    return request


def route_request(
    session: Session, bureau: User, request: DataRequest, department: Department, today: dt.date | None = None
) -> None:
    require(bureau, Action.ROUTE_DATA_REQUEST, request)
    request.department_id, request.routed_at = department.id, utcnow()
    request.deadline = add_working_days(today or clock.today(), REQUEST_WORKING_DAYS).date
    record(
        session, "data_request_routed", actor=bureau, target=f"data_request:{request.id}", to=department.code
    )


def answer_request(session: Session, curator: User, request: DataRequest, answer: str) -> None:
    require(curator, Action.ANSWER_DATA_REQUEST, request)
    request.answer, request.answered_at = _text(answer, 2, _("请填写答复")), utcnow()
    record(session, "data_request_answered", actor=curator, target=f"data_request:{request.id}")


def add_showcase(
    session: Session,
    user: User,
    title: str,
    description: str,
    url: str,
    attribution: str,
    dataset_names: list[str],
    licence_number: str = "",
    author: str = "",
    image: bytes | None = None,
    storage: Storage | None = None,
) -> ShowcaseItem:
    """A showcase entry, pending until the bureau reviews it. Its datasets are picked from the
    public catalog; its image, if any, is stored cleaned of metadata (portal/images.py)."""
    if url and not url.startswith(("http://", "https://")):
        raise FeedbackError(_("网址须以 http:// 或 https:// 开头"))
    item = ShowcaseItem(
        user_id=user.id,
        title=_text(title, 2, _("请填写名称"))[:200],
        description=_text(description, 10, _("请介绍这个应用（至少 10 字）")),
        url=url or None,
        attribution=_text(attribution, 5, _("请写明数据来源和获取日期（第二十五条）")),
        licence_number=(licence_number or "").strip().upper() or None,
        author=(author or "").strip()[:100] or None,
        status="pending",
    )
    item.links = [ShowcaseDataset(dataset_id=d.id) for d in _picked_public(session, dataset_names)]
    if image:
        if storage is None:
            raise ValueError("an image needs the storage to keep it")
        item.image_path = images.store(storage, "showcase", image)
    session.add(item)
    session.flush()
    record(session, "showcase_submitted", actor=user, target=f"showcase:{item.id}")
    return item


def _picked_public(session: Session, names: list[str]) -> list[Dataset]:
    wanted = list(dict.fromkeys(n.strip() for n in names if n and n.strip()))[:50]
    found = (
        {d.name: d for d in session.scalars(public_datasets().where(Dataset.name.in_(wanted)))}
        if wanted
        else {}
    )
    if not found:
        raise FeedbackError(_("请选择应用使用的数据集"))
    if len(found) < len(wanted):
        missing = "、".join(n for n in wanted if n not in found)
        raise FeedbackError(_("以下数据集不存在或未公开：%(names)s", names=missing))
    return [found[n] for n in wanted]


def approved_showcase(session: Session) -> list[ShowcaseItem]:
    return list(
        session.scalars(
            select(ShowcaseItem)
            .where(ShowcaseItem.status == "approved", ShowcaseItem.hidden.is_(False))
            .order_by(ShowcaseItem.id.desc())
            .options(selectinload(ShowcaseItem.links).selectinload(ShowcaseDataset.dataset))
        )
    )


def my_showcase(session: Session, user: User) -> list[ShowcaseItem]:
    """The entries this person submitted, with where each stands (pending, approved, rejected)."""
    return list(
        session.scalars(
            select(ShowcaseItem).where(ShowcaseItem.user_id == user.id).order_by(ShowcaseItem.id.desc())
        )
    )


def pending_showcase(session: Session) -> list[ShowcaseItem]:
    return list(
        session.scalars(
            select(ShowcaseItem).where(ShowcaseItem.status == "pending").order_by(ShowcaseItem.id)
        )
    )


def can_see_showcase_image(user: Any, item: ShowcaseItem) -> bool:
    """An approved entry's image is public; a pending or rejected one only to its submitter
    and the bureau."""
    if item.status == "approved" and not item.hidden:
        return True
    return bool(user.is_authenticated and (user.id == item.user_id or user.is_bureau))


def review_showcase(
    session: Session, bureau: User, item: ShowcaseItem, approve: bool, reason: str = ""
) -> None:
    """The bureau approves an entry (then it is shown) or rejects it with its reasons; the
    submitter is told either way."""
    require(bureau, Action.BUREAU, item)
    if item.status != "pending":
        raise FeedbackError(_("该成果已审核"))
    reason = (reason or "").strip()[:2000]
    if not approve and len(reason) < 2:
        raise FeedbackError(_("不予展示时请说明理由"))
    item.status = "approved" if approve else "rejected"
    item.reviewed_by_id, item.reviewed_at, item.review_reason = bureau.id, utcnow(), reason or None
    record(
        session,
        "showcase_approved" if approve else "showcase_rejected",
        actor=bureau,
        target=f"showcase:{item.id}",
        reason=reason or None,
    )
    _tell_submitter(session, item)


def _tell_submitter(session: Session, item: ShowcaseItem) -> None:
    """A mail in both languages (it is read outside the portal), like the other notices."""
    approved = item.status == "approved"
    subject = "成果展示已通过审核" if approved else "成果展示未通过审核"
    reason = f"理由：{item.review_reason}\n" if item.review_reason else ""
    reason_en = f"Reasons: {item.review_reason}\n" if item.review_reason else ""
    body = (
        f"{item.user.name}，您好：\n\n您提交的成果「{item.title}」"
        + ("已通过大数据局审核，现已在成果展示中公开。\n" if approved else "未通过大数据局审核。\n")
        + reason
        + (
            "\nYour showcase entry was approved and is now public.\n"
            if approved
            else "\nYour showcase entry was not approved.\n"
        )
        + reason_en
    )
    mail.send(session, item.user.email, f"{subject} · {item.title}", body)


def licence_check(session: Session, item: ShowcaseItem) -> str | None:
    """'valid' | 'expired' | 'revoked' | 'not_yet_valid' | 'unknown' | 'not_theirs'; None without a number."""
    if not item.licence_number:
        return None
    grant = session.scalar(select(Grant).where(Grant.licence_number == item.licence_number))
    if grant is None:
        return "unknown"
    if grant.user_id != item.user_id:
        return "not_theirs"
    return grant.state()

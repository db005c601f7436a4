"""Likely duplicate catalog entries across departments (Art. 15: the bureau finds them, the
departments merge them): similar titles and similar fields."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from portal import mail
from portal.audit import record
from portal.authz import Action, require
from portal.errors import DomainError
from portal.messages import _
from portal.models import (
    ClassificationEvent,
    Dataset,
    DatasetStatus,
    Distribution,
    DuplicateCase,
    User,
    utcnow,
)
from portal.search.text import tokenize

# Words every title shares here; they say nothing about what a dataset holds.
COMMON = {"东昌", "东昌府", "东昌府区", "聊城", "聊城市", "信息", "数据", "名录", "情况", "统计", "年"}


@dataclass
class Pair:
    a: Dataset
    b: Dataset
    score: float
    title_score: float
    field_score: float


def _words(title: str) -> set[str]:
    return {w for w in tokenize(re.sub(r"\d{4}年", "", title)) if w not in COMMON and not w.isdigit()}


def _jaccard(x: set, y: set) -> float:
    return len(x & y) / len(x | y) if x and y else 0.0


def likely_duplicates(session: Session, threshold: float = 0.6, limit: int = 200) -> list[Pair]:
    datasets = session.scalars(
        select(Dataset)
        .where(Dataset.status != "withdrawn")
        .options(
            selectinload(Dataset.department),
            selectinload(Dataset.distributions).selectinload(Distribution.tables),
        )
    ).all()
    words = {d.id: _words(d.title) for d in datasets}
    fields = {
        d.id: {f["name"] for dist in d.current_distributions for t in dist.tables for f in t.schema}
        for d in datasets
    }
    by_word: dict[str, list[Dataset]] = defaultdict(list)
    for d in datasets:
        for w in words[d.id]:
            by_word[w].append(d)
    seen, pairs = settled_pairs(session), []
    for d in datasets:
        for w in words[d.id]:
            if len(by_word[w]) > 200:  # too common to point at a duplicate
                continue
            for other in by_word[w]:
                key = (min(d.id, other.id), max(d.id, other.id))
                if other.department_id == d.department_id or key in seen:
                    continue
                seen.add(key)
                title_score = _jaccard(words[d.id], words[other.id])
                field_score = _jaccard(fields[d.id], fields[other.id])
                score = (
                    0.6 * title_score + 0.4 * field_score
                    if fields[d.id] and fields[other.id]
                    else title_score
                )
                if score >= threshold:
                    pairs.append(Pair(d, other, score, title_score, field_score))
    return sorted(pairs, key=lambda p: -p.score)[:limit]


# ---------------------------------------------------------------------------- handled (Art. 15)


class DuplicateError(DomainError):
    pass


def _pair(a: Dataset, b: Dataset) -> tuple[Dataset, Dataset]:
    return (a, b) if a.id < b.id else (b, a)


def case_of(session: Session, a: Dataset, b: Dataset) -> DuplicateCase | None:
    first, second = _pair(a, b)
    return session.scalar(
        select(DuplicateCase).where(
            DuplicateCase.dataset_a_id == first.id, DuplicateCase.dataset_b_id == second.id
        )
    )


def send_to_departments(
    session: Session, bureau: User, a: Dataset, b: Dataset, site_url: str = ""
) -> DuplicateCase:
    """The bureau asks both departments to check a likely pair."""
    require(bureau, Action.BUREAU)
    if a.department_id == b.department_id or a.id == b.id:
        raise DuplicateError(_("只有不同部门的两个条目才能作为重复目录核对"))
    existing = case_of(session, a, b)
    if existing is not None:
        if existing.status in ("open", "proposed"):
            raise DuplicateError(_("这两个条目已在核对中"))
        raise DuplicateError(_("这两个条目已核对完毕"))
    first, second = _pair(a, b)
    case = DuplicateCase(dataset_a=first, dataset_b=second, sent_by_id=bureau.id, status="open")
    session.add(case)
    session.flush()
    record(
        session,
        "duplicate_sent",
        actor=bureau,
        target=f"duplicate:{case.id}",
        datasets=[first.name, second.name],
    )
    _tell(session, case, [first.department_id, second.department_id], "请核对疑似重复目录", site_url)
    return case


def _curator_of_case(user: User, case: DuplicateCase) -> Dataset:
    """The curator's own entry of the pair (NotAllowed otherwise)."""
    for ds in case.datasets:
        if user.curator_department_id == ds.department_id:
            require(user, Action.CURATE, ds)
            return ds
    require(user, Action.CURATE, case.dataset_a)  # raises: neither is theirs
    raise DuplicateError(_("无权处理"))


def propose_merge(
    session: Session, curator: User, case: DuplicateCase, keep: Dataset, site_url: str = ""
) -> None:
    """One department proposes which entry is kept; the other department confirms."""
    _curator_of_case(curator, case)
    if case.status != "open":
        raise DuplicateError(_("该核对已有结果或已有合并建议"))
    if keep not in case.datasets:
        raise DuplicateError(_("请选择这两个条目之一"))
    _keepable(keep)
    case.status, case.keep_id = "proposed", keep.id
    case.proposed_by_department_id = curator.curator_department_id
    record(session, "duplicate_merge_proposed", actor=curator, target=f"duplicate:{case.id}", keep=keep.name)
    other = [d.department_id for d in case.datasets if d.department_id != curator.curator_department_id]
    _tell(session, case, other, f"对方部门建议保留「{keep.title}」，请确认合并", site_url)


def confirm_merge(session: Session, curator: User, case: DuplicateCase, site_url: str = "") -> Dataset:
    """The other department confirms: the entry not kept is withdrawn and leads to the kept one
    (a later harvest does not publish it again: a department's withdrawal stands)."""
    own = _curator_of_case(curator, case)
    if case.status != "proposed" or case.keep is None:
        raise DuplicateError(_("尚无合并建议"))
    if case.proposed_by_department_id == own.department_id:
        raise DuplicateError(_("合并须由另一部门确认"))
    keep = case.keep
    _keepable(keep)  # still public: a merge never leaves both entries out of view
    dropped = case.dataset_b if keep.id == case.dataset_a_id else case.dataset_a
    before = (dropped.open_class, dropped.status)
    dropped.status, dropped.withdrawn_at = DatasetStatus.WITHDRAWN.value, utcnow()
    dropped.hold_reason = f"已与「{keep.title}」（{keep.department.name}）合并"
    dropped.merged_into_id, dropped.search_dirty = keep.id, True
    session.add(
        ClassificationEvent(
            dataset_id=dropped.id,
            from_class=before[0],
            to_class=dropped.open_class,
            from_status=before[1],
            to_status=dropped.status,
            legal_basis=dropped.legal_basis,
            actor=curator.email,
            note=dropped.hold_reason,
        )
    )
    case.status, case.decided_by_id, case.decided_at = "merged", curator.id, utcnow()
    record(
        session,
        "duplicate_merged",
        actor=curator,
        target=f"duplicate:{case.id}",
        kept=keep.name,
        merged=dropped.name,
    )
    _tell(
        session,
        case,
        [d.department_id for d in case.datasets],
        f"已合并：保留「{keep.title}」",
        site_url,
        bureau=True,
    )
    return dropped


def _keepable(keep: Dataset) -> None:
    if not keep.is_public or keep.merged_into_id is not None:
        raise DuplicateError(_("要保留的条目须为公开的条目（未撤回、未合并）"))


def dismiss(session: Session, curator: User, case: DuplicateCase, reason: str, site_url: str = "") -> None:
    """Not the same data: either department says why, and the pair is no longer listed."""
    _curator_of_case(curator, case)
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise DuplicateError(_("请说明不是重复目录的理由（至少 5 字）"))
    if case.status not in ("open", "proposed"):
        raise DuplicateError(_("该核对已有结果"))
    case.status, case.reason = "dismissed", reason[:1000]
    case.decided_by_id, case.decided_at = curator.id, utcnow()
    record(session, "duplicate_dismissed", actor=curator, target=f"duplicate:{case.id}")
    _tell(
        session,
        case,
        [d.department_id for d in case.datasets],
        f"经核对不是重复目录：{reason[:200]}",
        site_url,
        bureau=True,
    )


def cases_of_department(session: Session, department_id: int) -> list[DuplicateCase]:
    return list(
        session.scalars(
            select(DuplicateCase)
            .join(
                Dataset,
                or_(Dataset.id == DuplicateCase.dataset_a_id, Dataset.id == DuplicateCase.dataset_b_id),
            )
            .where(Dataset.department_id == department_id)
            .order_by(DuplicateCase.status.in_(("merged", "dismissed")), DuplicateCase.id.desc())
        ).unique()
    )


def settled_pairs(session: Session) -> set[tuple[int, int]]:
    """Pairs already sent or decided: not listed again as likely duplicates."""
    return {
        (a, b) for a, b in session.execute(select(DuplicateCase.dataset_a_id, DuplicateCase.dataset_b_id))
    }


def _tell(
    session: Session,
    case: DuplicateCase,
    department_ids: list[int],
    what: str,
    site_url: str,
    bureau: bool = False,
) -> None:
    people = list(session.scalars(select(User).where(User.curator_department_id.in_(department_ids))))
    if bureau:
        people += list(session.scalars(select(User).where(User.is_bureau.is_(True))))
    a, b = case.datasets
    body = (
        f"疑似重复目录（第 {case.id} 号）：\n- {a.title}（{a.department.name}）\n- {b.title}（{b.department.name}）\n\n{what}\n"
        f"\n核对：{site_url.rstrip('/')}/console/duplicates\n"
    )
    for user in people:
        mail.send(session, user.email, f"疑似重复目录 · {what[:60]}", body)

"""Rows for tests that are not about harvesting: they insert what they need instead of
harvesting a catalog (CONTRIBUTING.md). Each factory takes a Session, adds its rows, flushes,
and leaves the commit to the caller. Users are made through the accounts service (a real
password hash, the registration's rules); datasets are plain rows — no files, no versions:
a test that needs tables to download stands on `portal_data`."""

from __future__ import annotations

import itertools

from sqlalchemy import select

from portal import accounts
from portal.models import Dataset, Department, User, utcnow

PASSWORD = "Long-enough-pass-1"
_numbers = itertools.count(1)


def credit_code(n: int) -> str:
    """A valid 统一社会信用代码 of its own for each company the tests make (one company, one code)."""
    from stdnum.cn import uscc

    body = f"91371500MA3C{n:05d}"
    return body + uscc.calc_check_digit(body)


def department(s, code: str = "dcf-scjgj", name: str | None = None) -> Department:
    """The department with this code, made if there is none."""
    dept = s.scalar(select(Department).where(Department.code == code))
    if dept is None:
        dept = Department(code=code, name=name or f"部门{code}")
        s.add(dept)
        s.flush()
    return dept


def user(
    s,
    kind: str = "citizen",
    *,
    n: int | None = None,
    email: str | None = None,
    name: str | None = None,
    password: str = PASSWORD,
    bureau: bool = False,
    curator_of: str | None = None,
    verified: bool = True,
    researcher_verified: bool = False,
    company_verified: bool = True,
    credit: str | None = None,
) -> User:
    """A registered user (verified unless told otherwise): user<n>@example.cn, 用户<n>; a company
    gets 聊城市鲁西化工有限公司 with a credit code of its own, a researcher 聊城大学."""
    n = next(_numbers) if n is None else n
    reg = accounts.Registration(
        email=email or f"user{n}@example.cn",
        password=password,
        name=name or f"用户{n}",
        kind=kind,
        company_name="聊城市鲁西化工有限公司" if kind == "company" else None,
        credit_code=credit or (credit_code(n) if kind == "company" else None),
        institution="聊城大学" if kind == "researcher" else None,
    )
    made = accounts.register(s, reg)
    made.is_bureau = bureau
    if verified:
        made.email_verified_at = utcnow()
    if researcher_verified:
        made.researcher_verified_at = utcnow()
    if kind == "company" and company_verified and verified:
        made.company_verified_at = utcnow()
    if curator_of:
        made.curator_department = department(s, curator_of)
    s.flush()
    return made


def dataset(
    s,
    name: str = "371502-scj-0101",
    title: str = "市场主体名录",
    *,
    open_class: str | None = "unconditional",
    status: str = "published",
    dept: str = "dcf-scjgj",
    **fields,
) -> Dataset:
    """A dataset row as a harvest leaves it (published, unconditional unless told), without files."""
    made = Dataset(
        name=name,
        title=title,
        source_ref=name.upper(),
        resource_code=name.upper(),
        department=department(s, dept),
        open_class=open_class,
        status=status,
        summary=fields.pop("summary", f"{title}的摘要"),
        **fields,
    )
    s.add(made)
    s.flush()
    return made

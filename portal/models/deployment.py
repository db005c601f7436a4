"""Which portal this is: one row made when a deployment's database is first set up."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class Deployment(Base):
    """Every node of one portal shares this database, and so this row: its identity (the page
    cache's namespace and anything else keyed on "which portal is this"), a fingerprint of the
    secret key every node must hold (never the key itself), and where its data files are.
    portal/deployment.py checks a node against it when the node starts."""

    __tablename__ = "deployment"

    id: Mapped[int] = mapped_column(primary_key=True)  # always 1: one row
    identity: Mapped[str] = mapped_column(String(32))
    secret_fingerprint: Mapped[str] = mapped_column(String(64))
    storage: Mapped[str] = mapped_column(String(500))  # "s3://bucket/prefix" or "folder:<marker>"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

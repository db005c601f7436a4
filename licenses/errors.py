"""The licensing domain's error type (applications, grants, tenders)."""

from __future__ import annotations

from portal.errors import DomainError


class LicenceError(DomainError):
    """A message for the person at the form."""


class Conflict(LicenceError):
    """Someone else changed the application first."""


class LinkRefused(LicenceError):
    """A licensed-download link that is not genuine, fresh, this person's, or for a grant in
    force: the download page says why (403)."""


class Sealed(LicenceError):
    """A bid's content before the tender's window has closed: no role is exempt."""

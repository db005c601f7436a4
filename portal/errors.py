"""The one error type of the domains: a rule said no, and the person is told why.

Each domain has its own subclass (CurationError, FeedbackError, AccountError, and licenses'
LicenceError) so code and tests can tell them apart; the web layer handles them all the same
way (portal/views/errors.py): the transaction is rolled back, the message is shown in the
reader's language, and the browser goes back to the page it came from. Nothing is half done.

Refusals of authorization are not DomainErrors: they are portal.authz.NotAllowed (403/404).
"""

from __future__ import annotations

from collections.abc import Mapping


class DomainError(ValueError):
    """`message` is a gettext message (Chinese source text, lazily translated). `fields`, where
    a form's several fields are wrong at once, maps each field's name to its message, so the
    page shows every problem next to its field."""

    def __init__(self, message: object = "", fields: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = dict(fields or {})

    def __str__(self) -> str:
        return str(self.message)

"""The bureau's area (/admin): one blueprint, guarded as a whole by Action.BUREAU, so a page
added here without a declaration of its own is still the bureau's only. Thin views over the
domains, one module per subject."""

from __future__ import annotations

from flask import Blueprint

from ...authz import Action, guard_blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")
guard_blueprint(bp, Action.BUREAU)

from . import catalog, content, dashboard, jobs, leaks, licensing, records, search, tenders, users  # noqa: E402,F401  (their routes on bp)

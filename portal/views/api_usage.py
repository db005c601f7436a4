"""API calls counted and API tokens' daily quotas.

Every call to the CKAN API or the data API is counted (portal/counters.py: in batches, by day,
dataset and token). A call made with a token counts against the token's quota of calls a day
(Beijing days; PORTAL_API_DAILY_QUOTA, or the token's own set by the bureau): over it, the call
is refused with 429, a JSON message and Retry-After up to the next Beijing midnight. The rate
limits (portal/limits.py) count a token's calls per token, other calls per address."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, Response, g, request
from sqlalchemy import func, select

from .. import auth, clock
from ..messages import _
from ..models import DailyCounter, Dataset
from ..page_cache import COUNT_HEADER
from ..web import db, portal

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ..context import PortalContext
    from ..counters import Counters

API_BLUEPRINTS = frozenset({"api", "api_unversioned", "data_api"})


def init_app(app: Flask) -> None:
    # First of all: the token is known before the rate limits pick their key (portal/limits.py).
    app.before_request_funcs.setdefault(None, []).insert(0, _resolve_token)
    app.before_request(_quota)
    app.after_request(_count)
    app.jinja_env.globals["api_token_usage"] = token_usage  # the account page (accounts/_api_usage.html)
    app.jinja_env.globals["config_api_daily_quota"] = lambda: portal().settings.api_daily_quota
    ctx: PortalContext = app.extensions["portal"]
    if not app.testing:  # tests flush when they choose (ctx.counters.flush())
        ctx.counters.start_flushing(ctx.settings.counter_flush_seconds)


def _resolve_token() -> None:
    if request.blueprint in API_BLUEPRINTS:
        auth.request_token(request)  # a bad token is a 401


def _token_id() -> int | None:
    return g.get("api_token_id") if request.blueprint in API_BLUEPRINTS else None


def seconds_to_midnight(now: dt.datetime | None = None) -> int:
    """Seconds until the next midnight in Beijing, when quotas start again."""
    now = now or clock.now()
    local = clock.local(now)
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tzinfo=clock.zone())
    return max(1, int((midnight - local).total_seconds() + 0.999))


# A call is a GET (or a CKAN POST with a JSON body): a HEAD carries no answer and an OPTIONS is
# a browser's preflight before the real call; neither counts as a call or uses a quota.
COUNTED_METHODS = ("GET", "POST")


def _quota() -> Response | None:
    token_id = _token_id()
    if token_id is None or request.method not in COUNTED_METHODS:
        return None
    ctx = portal()
    limit = g.get("api_token_quota") or ctx.settings.api_daily_quota
    used = ctx.counters.quota_take(token_id, limit)
    if used is None:
        g.api_quota_refused = True
        message = _(
            "该 API 令牌今日的调用次数已用完（每日 %(limit)s 次）。北京时间零点起重新计数。", limit=limit
        )
        body = {"success": False, "error": {"status": 429, "message": str(message), "daily_quota": limit}}
        return Response(
            json.dumps(body, ensure_ascii=False),
            status=429,
            mimetype="application/json",
            headers={"Retry-After": str(seconds_to_midnight()), "Access-Control-Allow-Origin": "*"},
        )
    g.api_quota = (used, limit)
    return None


def _dataset_id() -> int | None:
    """The dataset a successful call was about (its name in the path or the CKAN id)."""
    if "api_dataset_id" in g:  # the view read it already (package_show)
        return g.api_dataset_id
    name = (request.view_args or {}).get("name")
    if name is None and request.endpoint and request.endpoint.endswith(".package_show"):
        name = request.args.get("id") or request.args.get("name_or_id")
    if not name:
        return None
    return db().scalar(select(Dataset.id).where(Dataset.name == str(name)))


def _count(response: Response) -> Response:
    if (
        request.blueprint not in API_BLUEPRINTS
        or request.method not in COUNTED_METHODS
        or g.get("api_quota_refused")
        or response.status_code == 429
    ):
        return response
    kind = "api_data" if request.endpoint == "data_api.table_rows" else "api_meta"
    dataset_id = _dataset_id() if response.status_code < 400 else None
    portal().counters.add(kind, dataset_id, g.get("api_token_id"))
    if portal().redis is not None and response.status_code == 200 and not g.get("api_token_id"):
        # an anonymous answer may be kept by the page cache: it counts the call at each hit
        response.headers[COUNT_HEADER] = f"{kind}|{dataset_id or 0}|0"
    if quota := g.get("api_quota"):
        used, limit = quota
        response.headers["X-Quota-Limit"] = str(limit)
        response.headers["X-Quota-Remaining"] = str(max(limit - used, 0))
    return response


# ---------------------------------------------------------------------- the account page


@dataclass
class TokenUsage:
    token_id: int
    today: int
    last_30_days: int
    quota: int
    days: list[tuple[dt.date, int]]  # the last 30 days, oldest first

    @property
    def left_today(self) -> int:
        return max(self.quota - self.today, 0)


def usage(s: Session, counters: Counters, tokens: list, default_quota: int) -> dict[int, TokenUsage]:
    """Calls per token today and over the last 30 days (the table plus what is not yet in it)."""
    today = clock.today()
    start = today - dt.timedelta(days=29)
    ids = [t.id for t in tokens]
    per: dict[int, dict[dt.date, int]] = {i: {} for i in ids}
    if ids:
        for token_id, day, n in s.execute(
            select(DailyCounter.token_id, DailyCounter.day, func.sum(DailyCounter.count))
            .where(DailyCounter.token_id.in_(ids), DailyCounter.day >= start)
            .group_by(DailyCounter.token_id, DailyCounter.day)
        ):
            per[token_id][day] = per[token_id].get(day, 0) + int(n)
        for (day_text, _kind, _ds, token_id), n in counters.pending().items():
            day = dt.date.fromisoformat(day_text)
            if token_id in per and day >= start:
                per[token_id][day] = per[token_id].get(day, 0) + n
    out = {}
    for t in tokens:
        days = [
            (start + dt.timedelta(days=i), per[t.id].get(start + dt.timedelta(days=i), 0)) for i in range(30)
        ]
        out[t.id] = TokenUsage(
            token_id=t.id,
            today=days[-1][1],
            last_30_days=sum(n for _d, n in days),
            quota=t.daily_quota or default_quota,
            days=days,
        )
    return out


def token_usage(user: object) -> list[tuple[object, TokenUsage]]:
    """The user's tokens not revoked, each with its calls (the account page)."""
    tokens = [t for t in getattr(user, "tokens", []) if t.revoked_at is None]
    found = usage(db(), portal().counters, tokens, portal().settings.api_daily_quota)
    return [(t, found[t.id]) for t in reversed(tokens)]

"""The portal's one time zone (PORTAL_TIMEZONE, default Asia/Shanghai): every date a person
sees or a deadline counts from — today's date, an acquisition date, a licence's validity —
is the date in Beijing, whatever the server's clock is set to. Stored instants stay in UTC."""

from __future__ import annotations

import datetime as dt
import functools
import os
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "Asia/Shanghai"


@functools.cache
def zone(name: str | None = None) -> ZoneInfo:
    return ZoneInfo(name or os.environ.get("PORTAL_TIMEZONE") or DEFAULT_TIMEZONE)


def now() -> dt.datetime:
    return dt.datetime.now(zone())


def today() -> dt.date:
    return now().date()


def local(instant: dt.datetime) -> dt.datetime:
    """A stored instant (UTC) as the portal's local time."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=dt.UTC)
    return instant.astimezone(zone())


def entered(typed: str | dt.datetime) -> dt.datetime:
    """A time typed into a form is Beijing time (the portal's zone), stored as an instant.
    Raises ValueError for text that is not a date and time."""
    moment = dt.datetime.fromisoformat(typed) if isinstance(typed, str) else typed
    return moment.replace(tzinfo=zone()).astimezone(dt.UTC)


def start_of_day(day: dt.date) -> dt.datetime:
    """Midnight of a local date, as the instant the database compares with (UTC)."""
    return dt.datetime.combine(day, dt.time(), tzinfo=zone()).astimezone(dt.UTC)

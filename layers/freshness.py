"""How fresh the data is, feed by feed: the newest case reported and the newest IoT report,
how old each is, and whether it is older than its feed's limit (the screens then say so).

What a screen calls 数据截至 is the newest event of each feed, not the moment of a load: a
file exported two weeks ago and loaded today is two weeks old. When a view's period holds
no case while the scope has cases at other times, :func:`elsewhere` finds the newest one
and the shortest preset range that holds it, for the screen to offer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from layers.cases import raw_where
from layers.filters import DEVICE_OFFLINE_AFTER, RANGES, Filters, preset_range
from layers.scope import Scope
from layers.times import iso

# The IoT feed's newest report: its events, else (devices loaded without events) the
# devices' own last reports. Both reads take one index probe or a small table.
NEWEST = """
SELECT now() AS now, (SELECT max(reported_at) FROM case_event) AS cases,
       coalesce((SELECT max(ts) FROM iot_event),
                (SELECT max(last_seen) FROM iot_device)) AS iot
"""


@dataclass(frozen=True)
class Thresholds:
    """How old each feed may be before it is stale, and how long a device may be silent
    before it counts as offline (settings ``ONEMAP_STALE_CASES_HOURS``,
    ``ONEMAP_STALE_IOT_MINUTES``, ``ONEMAP_DEVICE_OFFLINE_MINUTES``)."""

    cases: timedelta = timedelta(hours=24)
    iot: timedelta = timedelta(minutes=15)
    device_offline: timedelta = DEVICE_OFFLINE_AFTER

    @classmethod
    def of(cls, settings) -> Thresholds:
        return cls(timedelta(hours=settings.stale_cases_hours),
                   timedelta(minutes=settings.stale_iot_minutes),
                   timedelta(minutes=settings.device_offline_minutes))


DEFAULT_THRESHOLDS = Thresholds()


def feeds(conn: Connection, thresholds: Thresholds, zone: str) -> dict[str, dict]:
    """Each feed that holds data: its newest event (ISO 8601, local ``zone``), its age in
    seconds by the database's clock, its limit and whether it is ``stale``."""
    row = conn.execute(text(NEWEST)).mappings().one()
    found = {}
    for feed, limit in (("cases", thresholds.cases), ("iot", thresholds.iot)):
        newest = row[feed]
        if newest is None:
            continue
        age = row["now"] - newest
        found[feed] = {"newest": iso(newest, zone), "age_s": int(age.total_seconds()),
                       "limit_s": int(limit.total_seconds()), "stale": age > limit}
    return found


def elsewhere(conn: Connection, scope: Scope, filters: Filters, zone: str,
              now: datetime | None = None) -> dict | None:
    """For a period without cases: the scope's newest case under the other filters and the
    shortest preset range holding it (``None`` when the scope has none at all, or the
    period is open)."""
    if filters.start is None and filters.end is None:
        return None
    where = raw_where(replace(filters, start=None, end=None), scope)
    newest = conn.execute(text(f"SELECT max(c.reported_at) FROM case_event c "
                               f"WHERE {where.sql}"), where.params).scalar()
    if newest is None:
        return None
    local = ZoneInfo(zone)
    now = now or datetime.now(local)
    holding = next(preset for preset in RANGES if _holds(preset_range(preset, local, now),
                                                         newest))  # "all" holds every case
    return {"newest": iso(newest, zone), "range": holding}


def _holds(bounds: tuple, moment: datetime) -> bool:
    start, end = bounds
    return (start is None or start <= moment) and (end is None or moment < end)

"""环比 and 同比: a view's flows against the same flows of another period.

- 环比 (``previous``): the period of equal length (in local days) right before the view's.
- 同比 (``year_before``): the same local days one year before. A day with no counterpart
  (29 February) stands for 28 February, so a period from or through 29 February compares
  with one through 28 February (one day shorter), and one through 28 February of the year
  after a leap year with one that leaves 29 February out: calendar days, not equal lengths.

Only a period of whole local days, bounded on both sides, is compared (an open range such
as "all" has no period before it; an instant or a range of hours is not a day). A compared
period that begins before the first local day holding any case is not compared either: the
data does not reach it, and a part of it would read as a fall. The compared periods are
read through the view's own :class:`layers.case_query.CaseQuery` with only the period
changed (whole local days: the aggregates answer them as they answer the view's).

A change is stated per figure (``CHANGES``): counts and the median handling time as a
percentage of the compared figure, rates in percentage points, the mean satisfaction
score as a difference of score; from a count of 0, or where either side has nothing to
divide by, there is no change to state (``by`` None), never +∞ % or 0.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from layers.case_query import CaseQuery
from layers.filters import Period
from layers.sql import run

KINDS = ("previous", "year_before")
# Why a view has no comparison of a kind.
REASONS = ("open", "not_days", "before_data")


@dataclass(frozen=True)
class Change:
    """How a figure's change is stated (``unit``: "percent" of the compared figure,
    "points" of a rate in percentage points, "score" as a difference) and which way is
    better (+1: up, -1: down, 0: neither, a volume)."""

    unit: str
    better: int


# The flows compared, in the order the cards show them; the backlog is a stock, now.
CHANGES = {
    "total": Change("percent", 0),
    "closed": Change("percent", 0),
    "on_time_rate": Change("points", 1),
    "same_day_rate": Change("points", 1),
    "within_3d_rate": Change("points", 1),
    "median_hours": Change("percent", -1),
    "satisfaction": Change("score", 1),
}
FLOWS = tuple(CHANGES)


def compared_days(kind: str, start: datetime | None, end: datetime | None,
                  zone: str) -> tuple[datetime, datetime] | str:
    """The compared period [start, end) of a view's period, as local midnights of ``zone``;
    or why there is none (a ``REASONS`` word: "open", "not_days")."""
    if start is None or end is None:
        return "open"
    local = ZoneInfo(zone)
    first, after = (moment.astimezone(local) for moment in (start, end))
    if first.time() != time(0) or after.time() != time(0):
        return "not_days"
    first_day, last_day = first.date(), after.date() - timedelta(days=1)
    if kind == "previous":
        days = (after.date() - first_day).days
        first_day, last_day = first_day - timedelta(days=days), first_day - timedelta(days=1)
    elif kind == "year_before":
        first_day, last_day = year_before(first_day), year_before(last_day)
    else:
        raise ValueError(f"unknown comparison {kind!r}: one of {', '.join(KINDS)}")
    return (datetime.combine(first_day, time(), local),
            datetime.combine(last_day + timedelta(days=1), time(), local))


def year_before(day: date) -> date:
    """The same calendar day a year before; 29 February stands for 28 February."""
    if day.month == 2 and day.day == 29:
        return date(day.year - 1, 2, 28)
    return day.replace(year=day.year - 1)


def first_day(conn: Connection, zone: str) -> date | None:
    """The first local day holding a case (None: no case at all), from the index on
    ``reported_at``."""
    first = run(conn, "SELECT min(reported_at) FROM case_event", {}).scalar()
    return None if first is None else first.astimezone(ZoneInfo(zone)).date()


def comparisons(query: CaseQuery, current: dict) -> dict[str, dict]:
    """The view's flows (``current``, :meth:`CaseQuery.closed`) against each compared
    period (``KINDS``): its local days, the figures there and each figure's change, or
    the reason there is none."""
    begins: list[date | None] = []
    found = {}
    for kind in KINDS:
        period = compared_days(kind, query.filters.start, query.filters.end, query.zone)
        if isinstance(period, str):
            found[kind] = absent(period)
            continue
        if not begins:
            begins.append(first_day(query.conn, query.zone))
        start, end = period
        days = _days(start, end)
        if begins[0] is None or start.date() < begins[0]:
            found[kind] = {**absent("before_data"), "period": days,
                           "data_from": begins[0].isoformat() if begins[0] else None}
            continue
        filters = replace(query.filters, start=start, end=end,
                          period=Period(start=days["start"][:10], end=days["last"]))
        figures = query.over(filters).closed()
        was = {name: figures[name] for name in FLOWS}
        found[kind] = {"period": days, "reason": None, "data_from": None, "figures": was,
                       "changes": {name: change(name, current[name], was[name])
                                   for name in FLOWS}}
    return found


def absent(reason: str) -> dict:
    """A comparison not made, and why (a ``REASONS`` word)."""
    return {"period": None, "reason": reason, "data_from": None, "figures": None,
            "changes": None}


def _days(start: datetime, end: datetime) -> dict:
    return {"start": start.isoformat(), "end": end.isoformat(),
            "last": (end.date() - timedelta(days=1)).isoformat()}


def change(name: str, now, was) -> dict:
    """The change of the figure ``name`` from ``was`` to ``now`` (``CHANGES``): ``by`` in
    its unit (None: nothing to compare), and whether it is ``better``, ``worse`` or neither
    (None: no change, a volume, or nothing to compare)."""
    rule = CHANGES[name]
    if now is None or was is None:
        by = None
    elif rule.unit == "percent":
        by = (0.0 if now == 0 else None) if was == 0 else round((now - was) / was * 100, 4)
    elif rule.unit == "points":
        by = round((now - was) * 100, 4)
    else:
        by = round(now - was, 4)
    verdict = None
    if by and rule.better:
        verdict = "better" if (by > 0) == (rule.better > 0) else "worse"
    return {"by": by, "unit": rule.unit, "verdict": verdict}

"""Case filters as SQL, for the raw table and for its daily aggregates.

The aggregates (``case_rollup``) answer whenever the filters are whole local days, top-level
categories, channels and open or closed; anything finer (overdue, bbox, lower category levels,
hours) reads ``case_event`` through its indexes instead. Both paths give the same figures.
"""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from layers.filters import Filters, Where
from layers.scope import Scope
from onemap.schema import LEVEL_COLUMN

CATEGORY_COLUMNS = ("category_1", "category_2", "category_3", "category_4")


def local_zone(conn: Connection, default: str) -> str:
    """The zone the aggregates count days in (as loaded), else ``default``."""
    zone = conn.execute(text("SELECT zone FROM rollup_zone")).scalar()
    return zone or default


def raw_where(filters: Filters, scope: Scope, alias: str = "c") -> Where:
    """Filters on ``case_event`` (aliased ``alias``), values bound."""
    where = Where()
    a = f"{alias}."
    if scope.column:
        where.add(f"{a}{scope.column} = :scope", scope=scope.code)
    if filters.start:
        where.add(f"{a}reported_at >= :start", start=filters.start)
    if filters.end:
        where.add(f"{a}reported_at < :end", end=filters.end)
    if filters.categories:
        any_level = " OR ".join(f"{a}{c} = ANY(:categories)" for c in CATEGORY_COLUMNS)
        where.add(f"({any_level})", categories=list(filters.categories))
    if filters.channels:
        where.add(f"{a}channel = ANY(:channels)", channels=list(filters.channels))
    if filters.statuses:
        where.add("(" + " OR ".join(_status(s, a) for s in filters.statuses) + ")")
    if filters.bbox:
        where.add(f"{a}geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)",
                  **dict(zip(("minx", "miny", "maxx", "maxy"), filters.bbox, strict=True)))
    return where


def _status(status: str, a: str) -> str:
    return {"open": f"{a}status = 'open'", "closed": f"{a}status = 'closed'",
            "overdue": f"({a}status = 'open' AND {a}deadline < now())"}[status]


def rollup_where(filters: Filters, level: int, unit: str | None, by_parent: bool,
                 zone: str) -> Where:
    """Filters on ``case_rollup`` rows of ``level`` for one unit, or for a parent's children."""
    where = Where().add("r.level = :level", level=level)
    if unit is not None and by_parent:
        # The children's own keys, so their rows come from the primary key.
        where.add("r.unit_code IN (SELECT a.code FROM admin_unit a "
                  "WHERE a.parent_code = :unit AND a.level = :level)", unit=unit)
    elif unit is not None:
        where.add("r.unit_code = :unit", unit=unit)
    if filters.start:
        where.add("r.day >= :start_day", start_day=filters.start.astimezone(ZoneInfo(zone)).date())
    if filters.end:
        where.add("r.day < :end_day", end_day=filters.end.astimezone(ZoneInfo(zone)).date())
    if filters.categories:
        where.add("r.category_1 = ANY(:categories)", categories=list(filters.categories))
    if filters.channels:
        where.add("r.channel = ANY(:channels)", channels=list(filters.channels))
    if filters.statuses:
        where.add("r.status = ANY(:statuses)", statuses=list(filters.statuses))
    return where


def rollup_table(filters: Filters) -> str:
    """Per unit and day when no category or channel filter applies, else the full grain."""
    return "case_rollup" if filters.categories or filters.channels else "case_unit_day"


def rollup_answers(conn: Connection, filters: Filters, zone: str) -> bool:
    """True when the aggregates can answer these filters exactly ("overdue" depends on the
    clock, so it is read live from the open cases)."""
    if "overdue" in filters.statuses or filters.bbox:
        return False
    if not all(_midnight(t, zone) for t in (filters.start, filters.end) if t):
        return False
    if filters.categories:
        tops = {r[0] for r in conn.execute(text(
            "SELECT DISTINCT category_1 FROM case_event WHERE category_1 = ANY(:c)"),
            {"c": list(filters.categories)})}
        return tops == set(filters.categories)
    return True


def _midnight(moment: datetime, zone: str) -> bool:
    return moment.astimezone(ZoneInfo(zone)).time() == time(0)


def child_column(scope: Scope) -> str:
    """The code column naming the children of ``scope`` on point tables."""
    return LEVEL_COLUMN[scope.child_level or 4]

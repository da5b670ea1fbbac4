"""Case filters as SQL, for the raw table and for its aggregates.

The aggregates (``onemap.aggregates``) answer whenever the filters are whole local days,
top-level categories, channels and open or closed, at the levels whose units they keep by
those keys (:func:`rollup_keeps`); anything finer (overdue, bbox, lower category levels,
hours), and a grid's category or channel filter or mixes, reads ``case_event`` through
its indexes instead. Both paths give the same figures. The aggregates of a range's
whole weeks come from the weekly tables, those of the days around them from the daily ones
(:func:`rollup_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from layers.filters import Filters, Where
from layers.scope import Scope
from onemap import aggregates as agg
from onemap.schema import LEVEL_COLUMN

CATEGORY_COLUMNS = ("category_1", "category_2", "category_3", "category_4")


@dataclass(frozen=True)
class Rows:
    """Rows to aggregate as a FROM item (aliased ``r`` or ``c``), with its bound values."""

    sql: str
    params: dict


def local_zone(conn: Connection, default: str) -> str:
    """The zone the aggregates count days in (as loaded), else ``default``."""
    zone = conn.execute(text(f"SELECT zone FROM {agg.ZONE_TABLE}")).scalar()
    return zone or default


def raw_where(filters: Filters, scope: Scope, alias: str = "c",
              top_level: bool = False) -> Where:
    """Filters on ``case_event`` (aliased ``alias``), values bound. A category matches at any
    of its levels, or, when the caller knows the filter names top-level categories only
    (``top_level``, as :func:`rollup_answers` found), as ``category_1`` alone, as the
    aggregates count it (and its index finds it)."""
    where = Where()
    a = f"{alias}."
    if scope.column:
        where.add(f"{a}{scope.column} = :scope", scope=scope.code)
    if filters.start:
        where.add(f"{a}reported_at >= :start", start=filters.start)
    if filters.end:
        where.add(f"{a}reported_at < :end", end=filters.end)
    if filters.categories:
        levels = CATEGORY_COLUMNS[:1] if top_level else CATEGORY_COLUMNS
        any_level = " OR ".join(f"{a}{c} = ANY(:categories)" for c in levels)
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


def raw_rows(filters: Filters, scope: Scope, top_level: bool = False) -> Rows:
    """The scope's cases under the filters, as ``c`` (``top_level``: see :func:`raw_where`)."""
    where = raw_where(filters, scope, top_level=top_level)
    return Rows(f"(SELECT * FROM case_event c WHERE {where.sql}) c", where.params)


def rollup_where(filters: Filters, level: int, unit: str | None, by_parent: bool) -> Where:
    """Filters other than days on aggregate rows (``r``) of ``level`` for one unit, or for a
    parent's children."""
    where = Where().add("r.level = :level", level=level)
    if unit is not None and by_parent:
        # The children's own keys, so their rows come from the primary key.
        where.add("r.unit_code IN (SELECT a.code FROM admin_unit a "
                  "WHERE a.parent_code = :unit AND a.level = :level)", unit=unit)
    elif unit is not None:
        where.add("r.unit_code = :unit", unit=unit)
    if filters.categories:
        where.add("r.category_1 = ANY(:categories)", categories=list(filters.categories))
    if filters.channels:
        where.add("r.channel = ANY(:channels)", channels=list(filters.channels))
    if filters.statuses:
        where.add("r.status = ANY(:statuses)", statuses=list(filters.statuses))
    return where


def rollup_rows(where: Where, filters: Filters, zone: str, table: str, level: int, *,
                cut: date | None = None, weeks: bool = True, counts: bool = False) -> Rows:
    """The rows of the daily aggregate ``table`` that ``where`` selects (units of
    ``level``), over the filters' local days: whole weeks from its weekly table and the days
    around them from ``table``, each side of the day ``cut`` apart (so that no week
    straddles it); all from ``table`` when not ``weeks``, when its weekly table keeps no
    units of ``level``, or when it lacks measures and not only the ``counts`` (``total``)
    are read. A weekly row's Monday is read as its ``day``."""
    daily, weekly = agg.TABLE[table], agg.WEEKLY[table]
    weeks = (weeks and weekly.keeps(level)
             and (counts or weekly.values == daily.values))
    shape = weekly if weeks else daily  # the columns both sides give
    start, end = (t.astimezone(ZoneInfo(zone)).date() if t else None
                  for t in (filters.start, filters.end))
    inside = (cut is not None and cut.weekday() != 0  # no week straddles a Monday
              and (start is None or start < cut) and (end is None or cut < end))
    bounds = [start, cut, end] if inside else [start, end]
    parts, params = [], dict(where.params)
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        for is_week, first, last in _spans(lo, hi, weeks):
            source = weekly if is_week else daily
            period, days = source.period, Where()
            for op, name, day in ((">=", "lo", first), ("<", "hi", last)):
                if day is not None:
                    days.add(f"r.{period} {op} :{name}{len(parts)}",
                             **{f"{name}{len(parts)}": day})
            params.update(days.params)
            parts.append(f"SELECT {shape.read_as_days(source)} FROM {source.name} r "
                         f"WHERE {where.sql} AND {days.sql}")
    return Rows("(" + " UNION ALL ".join(parts) + ") r", params)


def _spans(lo: date | None, hi: date | None,
           weeks: bool) -> list[tuple[bool, date | None, date | None]]:
    """The days [lo, hi) (None: open) as (weekly, first, last) spans: the whole weeks inside
    (Monday to Monday) and the days before and after them."""
    first = lo + timedelta(days=-lo.weekday() % 7) if lo else None  # the first Monday
    last = hi - timedelta(days=hi.weekday()) if hi else None        # the last Monday
    if not weeks or (first and last and first >= last):
        return [(False, lo, hi)]
    spans = [(True, first, last)]
    if lo and lo < first:
        spans.insert(0, (False, lo, first))
    if hi and last < hi:
        spans.append((False, last, hi))
    return spans


def rollup_table(filters: Filters) -> str:
    """Per unit and day when no category or channel filter applies, else the full grain."""
    return (agg.ROLLUP if filters.categories or filters.channels else agg.UNIT_DAY).name


def rollup_keeps(filters: Filters, level: int, table: str | None = None) -> bool:
    """Whether the aggregate ``table`` (by default the one the filters read) keeps units of
    ``level`` (0: every district, read from the districts' rows)."""
    return agg.TABLE[table or rollup_table(filters)].keeps(level)


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

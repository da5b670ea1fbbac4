"""One scope's cases under one set of filters, as a query object.

Where the period's flows are counted from: the aggregates (``onemap.aggregates``) when they
answer the filters exactly (``layers.cases.rollup_answers``, asked once when the query is
made) and keep the level the figures are of (a grid's by category or channel are not
kept: ``layers.cases.rollup_keeps``), else ``case_event`` through its
indexes; both give the same figures. Every case figure of a view is read through one
:class:`CaseQuery`: the scope's flows (:meth:`~CaseQuery.closed`), its children's
(:meth:`~CaseQuery.by_child`), the channel and category mixes, the trend, the reports by
weekday and hour, the backlog now (counted once, by child, and summed for the scope) and the
grid counts hotspots are judged on; the same query over another period
(:meth:`~CaseQuery.over`) gives 环比 and 同比.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Connection

from layers import backlog as stock
from layers.cases import (
    Rows,
    child_column,
    raw_rows,
    raw_where,
    rollup_answers,
    rollup_keeps,
    rollup_rows,
    rollup_table,
    rollup_where,
)
from layers.filters import Filters
from layers.scope import Scope
from layers.sql import run
from layers.summary import local_days, median_from_fine, series, summarize
from onemap import aggregates as agg
from onemap.settings import DUE_SOON_HOURS

TREND_WEEKLY_AFTER_DAYS = 120
# The fine handling-time histograms hold no grid, category or channel: for a grid, or under
# such a filter, the median is exact from the cases up to this many closed ones (a few ms),
# and beyond it the aggregates' hourly buckets give it, marked approximate.
EXACT_MEDIAN_MAX = 20_000

# The summed measures from cases (``c``, local days in :tz) or from aggregate rows (``r``):
# every declared measure, the hourly buckets only from the aggregates (the cases give the
# median exactly).
LOCAL_DAYS = {"day": "(c.reported_at AT TIME ZONE :tz)::date",
              "closed_day": "(c.closed_at AT TIME ZONE :tz)::date"}
RAW_MEASURES = ", ".join(
    [f"{m.counted(**LOCAL_DAYS)} AS {m.name}"
     for m in agg.MEASURES if m.name not in agg.HOURS_COLUMNS]
    + ["percentile_cont(0.5) WITHIN GROUP (ORDER BY c.handling_hours) AS median_hours"])
ROLLUP_MEASURES = ", ".join([f"{m.summed()} AS {m.name}" for m in agg.MEASURES]
                            + ["NULL::float8 AS median_hours"])

# The codes of every grid of a district (of every district: without :district).
DISTRICT_GRIDS = ("SELECT g.code FROM admin_unit g JOIN admin_unit c ON c.code = g.parent_code "
                  "JOIN admin_unit s ON s.code = c.parent_code "
                  "WHERE g.level = 4 AND s.parent_code = :district")
ALL_GRIDS = "SELECT g.code FROM admin_unit g WHERE g.level = 4"


class CaseQuery:
    """The cases of ``scope`` under ``filters``, their days local to ``zone``; open cases
    due within ``soon_hours`` are due soon. ``fast``: whether the aggregates answer, when
    the caller knows it already (:meth:`within`)."""

    def __init__(self, conn: Connection, scope: Scope, filters: Filters, zone: str,
                 soon_hours: float = DUE_SOON_HOURS, *, fast: bool | None = None):
        self.conn, self.scope, self.filters, self.zone = conn, scope, filters, zone
        self.soon_hours = soon_hours
        self.fast = rollup_answers(conn, filters, zone) if fast is None else fast
        self._backlog: dict | None = None
        self._now: datetime | None = None

    @property
    def source(self) -> str:
        """Where the scope's flows are counted: ``"rollup"`` (the aggregates) or
        ``"cases"``."""
        return "rollup" if self._aggregated(self.scope.level) else "cases"

    def _aggregated(self, level: int, table: str | None = None,
                    filters: Filters | None = None) -> bool:
        """Whether figures of units of ``level`` come from the aggregates: they answer the
        filters, and ``table`` (by default the one the filters read) keeps that level."""
        return self.fast and rollup_keeps(filters or self.filters, level, table)

    def within(self, scope: Scope) -> CaseQuery:
        """The same filters over another scope (whether the aggregates answer depends on
        the filters alone, so it is not asked again)."""
        return CaseQuery(self.conn, scope, self.filters, self.zone, self.soon_hours,
                         fast=self.fast)

    def over(self, filters: Filters) -> CaseQuery:
        """The same scope under ``filters`` (another period: 环比 and 同比,
        ``layers.comparison``), on the same connection; whether the aggregates answer is
        asked again (a period off local midnights is read from the cases)."""
        return CaseQuery(self.conn, self.scope, filters, self.zone, self.soon_hours)

    # -- flows ---------------------------------------------------------------------------
    def summed(self):
        """The scope's measures summed over the period (with the exact median when read
        from the cases), as one result row; the transaction's ``now()`` comes with it."""
        rows = self._rows()
        measures = ROLLUP_MEASURES if self.source == "rollup" else RAW_MEASURES
        row = run(self.conn, f"SELECT {measures}, now() AS now FROM {rows.sql}",
                  {**rows.params, "tz": self.zone}).mappings().one()
        self._now = row["now"]
        return row

    def now(self) -> datetime:
        """The instant the backlog is counted at: the transaction's ``now()``, which every
        statement of the query shares (read with the flows when they were read)."""
        if self._now is None:
            self._now = stock.database_now(self.conn)
        return self._now

    def closed(self) -> dict:
        """The scope's flows (``layers.summary.summarize``): the cases received in the
        period, and of them the closed, on time, satisfied ones, and the median handling."""
        figures = summarize(self.summed())
        if self.source == "rollup":
            figures.update(self.median(figures["closed"]))
        return figures

    def median(self, closed: int) -> dict:
        """The scope's median handling time when the aggregates answer: from the fine
        histograms (within 2.5 minutes or 1 %), or exact from the cases for a grid or under
        a category or channel filter when they are few (``closed`` of them); else nothing
        (the hourly buckets' value stays)."""
        if not closed:
            return {}
        if self.filters.categories or self.filters.channels or self.scope.level == 4:
            if closed > EXACT_MEDIAN_MAX:
                return {}
            rows = raw_rows(self.filters, self.scope, top_level=self.fast)
            value = run(self.conn, f"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY "
                                   f"c.handling_hours) FROM {rows.sql}", rows.params).scalar()
        else:
            rows = self._rows(replace(self.filters, statuses=()), table=agg.HISTOGRAM_DAY.name)
            value = median_from_fine(run(
                self.conn, f"SELECT u.b, sum(u.n) FROM {rows.sql} CROSS JOIN LATERAL "
                           f"unnest(r.buckets, r.counts) AS u(b, n) GROUP BY 1 ORDER BY 1",
                rows.params).all())
        return {"median_hours": None if value is None else round(float(value), 2),
                "median_approx": False}

    def by_child(self) -> list[dict]:
        """Every child unit of the scope (the drill-down's next level) in code order, with
        its flows, its backlog now and its cases per km², zero-filled; none at a grid."""
        if self.scope.child_level is None:
            return []
        backlog = self.backlog(by_child=True)
        children = []
        for unit in self._summed_by_child():
            figures = summarize(unit)
            now = backlog.get(unit["code"], stock.empty())
            figures.update({name: now[name] for name in stock.COUNTS})
            area = float(unit["area_km2"])
            figures["per_km2"] = round(figures["total"] / area, 2) if area else None
            children.append({"code": unit["code"], "name": unit["name"], "area_km2": area,
                             **figures})
        return children

    def _summed_by_child(self) -> list:
        """Every child unit (code, name, area) with its summed measures (NULL when it has
        no cases), in code order, in one statement."""
        scope, filters = self.scope, self.filters
        if self._aggregated(scope.child_level):
            where = rollup_where(filters, scope.child_level, scope.code, True)
            rows = rollup_rows(where, filters, self.zone, rollup_table(filters),
                               scope.child_level)
            figures = f"SELECT r.unit_code AS child, {ROLLUP_MEASURES} FROM {rows.sql} GROUP BY 1"
        else:
            column = child_column(scope)
            rows = raw_rows(filters, scope, top_level=self.fast)
            figures = (f"SELECT c.{column} AS child, {RAW_MEASURES} FROM {rows.sql} "
                       f"WHERE c.{column} IS NOT NULL GROUP BY 1")
        query = (f"SELECT a.code, a.name, a.area_km2, f.* FROM admin_unit a "
                 f"LEFT JOIN ({figures}) f ON f.child = a.code WHERE a.level = :child_level "
                 f"AND (CAST(:parent AS text) IS NULL OR a.parent_code = :parent) "
                 f"ORDER BY a.code")
        return run(self.conn, query, {**rows.params, "tz": self.zone,
                                      "child_level": scope.child_level,
                                      "parent": scope.code}).mappings().all()

    def mixes(self) -> dict[str, list[dict]]:
        """The channel mix (at most 50, largest first) and the top 10 categories, from one
        pass over the rows (grouping sets): the aggregates by category and channel, which
        hold both, where they keep the scope's level, else its cases."""
        aggregated = self._aggregated(self.scope.level, agg.ROLLUP.name)
        rows = self._rows(table=agg.ROLLUP.name, counts=True, aggregated=aggregated)
        a, measure = ("r", agg.TOTAL.summed()) if aggregated else ("c", "count(*)")
        query = (f"SELECT GROUPING({a}.channel) = 0 AS by_channel, "
                 f"coalesce({a}.channel, {a}.category_1) AS key, {measure} AS n "
                 f"FROM {rows.sql} GROUP BY GROUPING SETS (({a}.channel), ({a}.category_1)) "
                 f"ORDER BY 1, 3 DESC, 2")
        mixes: dict[str, list[dict]] = {"channels": [], "categories": []}
        for by_channel, key, n in run(self.conn, query, rows.params):
            mixes["channels" if by_channel else "categories"].append({"key": key, "n": int(n)})
        mixes["channels"] = mixes["channels"][:50]
        mixes["categories"] = mixes["categories"][:10]
        return mixes

    def trend(self) -> dict:
        """Cases per local day, or per week (from Monday) when the range is long: every
        period of the range, those without cases as 0; a week only partly inside the range
        is ``partial`` (its ``days`` say how many of its days are)."""
        filters = self.filters
        days = (filters.end - filters.start).days if filters.start and filters.end else 10_000
        unit = "week" if days > TREND_WEEKLY_AFTER_DAYS else "day"
        aggregated = self._aggregated(self.scope.level)
        rows = self._rows(weeks=unit == "week", counts=True, aggregated=aggregated)
        bucket, measure = (("r.day", agg.TOTAL.summed()) if aggregated else
                           ("(c.reported_at AT TIME ZONE :tz)::date", "count(*)"))
        query = (f"SELECT date_trunc('{unit}', {bucket})::date AS period, {measure} AS n "
                 f"FROM {rows.sql} GROUP BY 1 ORDER BY 1")
        counts = {p: int(n) for p, n in run(self.conn, query, {**rows.params, "tz": self.zone})}
        return {"unit": unit, "points": series(counts, unit, *local_days(filters, self.zone))}

    def weekday_hours(self, zone: str) -> list[list[int]]:
        """Cases by the weekday (Monday first) and hour of the day they were reported, local
        to ``zone`` (the deployment's): 7 rows of 24 counts, from the cases (the aggregates
        keep days, not hours). The cases are counted by quarter hour of UTC first, which is
        arithmetic, and only those quarters are put into the zone (a zone's name looked up
        per case took most of the time): every zone's offset since 1972 is a whole number
        of quarter hours, so each quarter lies in one local hour."""
        where = raw_where(self.filters, self.scope)
        query = (f"SELECT extract(isodow FROM local)::int - 1, extract(hour FROM local)::int, "
                 f"sum(n) FROM (SELECT q.quarter AT TIME ZONE :clock AS local, q.n FROM ("
                 f"SELECT date_bin('15 minutes', c.reported_at, timestamptz 'epoch') AS quarter, "
                 f"count(*) AS n FROM case_event c WHERE {where.sql} GROUP BY 1) q) l "
                 f"GROUP BY 1, 2")
        grid = [[0] * 24 for _ in range(7)]
        for weekday, hour, n in run(self.conn, query, {**where.params, "clock": zone}):
            grid[weekday][hour] = int(n)
        return grid

    # -- the backlog now -----------------------------------------------------------------
    def backlog(self, by_child: bool = False) -> dict:
        """The open, overdue and due-soon cases now and their stages, whatever the period
        (``layers.backlog``): the scope's, or by child code. Counted once, by child when
        the scope has children, and summed for the scope."""
        if self._backlog is None:
            self._backlog = stock.backlog(self.conn, self.scope, self.filters,
                                          self.soon_hours,
                                          by_child=self.scope.child_level is not None)
        return self._backlog if by_child else stock.total(self._backlog)

    # -- hotspots ------------------------------------------------------------------------
    def grid_counts(self, grids: list[str], middle: datetime | None) -> dict[str, np.ndarray]:
        """The whole-period, early and late counts (before and from ``middle``, a local
        midnight) of ``grids``, every grid of the scope, a district, in one pass, as arrays
        in the order of ``grids`` under ``"all"``, ``"early"`` and ``"late"``."""
        if self._aggregated(4):
            day = middle.astimezone(ZoneInfo(self.zone)).date() if middle else None
            rows = self._grid_rows(cut=day)
            n = agg.TOTAL.summed()
            counted = run(self.conn,
                          f"SELECT r.unit_code, {n}, {n} FILTER (WHERE r.day < :middle), "
                          f"{n} FILTER (WHERE r.day >= :middle) FROM {rows.sql} GROUP BY 1",
                          {**rows.params, "middle": day}).all()
        else:
            where = raw_where(self.filters, self.scope, top_level=self.fast).add(
                "c.grid_code IS NOT NULL")
            counted = run(self.conn,
                          f"SELECT c.grid_code, count(*), count(*) FILTER "
                          f"(WHERE c.reported_at < :middle), count(*) FILTER "
                          f"(WHERE c.reported_at >= :middle) FROM case_event c "
                          f"WHERE {where.sql} GROUP BY 1", {**where.params,
                                                            "middle": middle}).all()
        found = {code: (whole, early or 0, late or 0) for code, whole, early, late in counted}
        empty = (0, 0, 0)
        return {name: np.array([found.get(code, empty)[i] for code in grids], dtype=float)
                for i, name in enumerate(("all", "early", "late"))}

    def _grid_rows(self, cut) -> Rows:
        """The aggregate rows of every grid of the district: looked up by unit code in the
        primary key, day range included, the codes from admin_unit (a list of hundreds of
        bound codes took longer to plan than to run); no week of them straddles ``cut``."""
        grids = DISTRICT_GRIDS if self.scope.code else ALL_GRIDS
        where = rollup_where(self.filters, 4, None, False).add(
            f"r.unit_code IN ({grids})", district=self.scope.code)
        return rollup_rows(where, self.filters, self.zone, rollup_table(self.filters), 4,
                           cut=cut, counts=True)

    # -- sources -------------------------------------------------------------------------
    def _rows(self, filters: Filters | None = None, table: str | None = None,
              weeks: bool = True, counts: bool = False, aggregated: bool | None = None) -> Rows:
        """Where the scope's figures come from: its aggregate rows (alias ``r``; from
        ``table``, by day only unless ``weeks``, only ``total`` read if ``counts``) when
        ``aggregated`` (by default: when they answer and keep the scope's level), or its
        cases (alias ``c``), under ``filters`` (the query's by default)."""
        filters = filters or self.filters
        if aggregated is None:
            aggregated = self._aggregated(self.scope.level, table, filters)
        if aggregated:
            level = max(self.scope.level, 1)
            where = rollup_where(filters, level, self.scope.code, False)
            return rollup_rows(where, filters, self.zone, table or rollup_table(filters),
                               level, weeks=weeks, counts=counts)
        return raw_rows(filters, self.scope, top_level=self.fast)

"""Case aggregates refreshed at the end of a case batch, for the days the batch touched.

Days are local days in the zone recorded in ``rollup_zone`` (the settings' time zone at
load time); a batch recomputes whole days, so rows updated by a newer export move between
days correctly, and a load in another zone recounts every day. Each daily table has a
weekly one (weeks from Monday, keyed by their Monday) summed from it for the touched weeks:
a range's whole weeks are read from those (``layers.cases.rollup_rows``).
"""

from __future__ import annotations

from typing import NamedTuple

import psycopg
from psycopg import sql

from etl import indexes
from onemap.schema import (
    FINE_LINEAR_BUCKETS,
    FINE_RATIO,
    FINE_WIDTH_HOURS,
    HOUR_BUCKETS,
    HOURS_COLUMNS,
    LEVEL_COLUMN,
)

TOUCHED = """
CREATE TEMP TABLE touched_day ON COMMIT DROP AS
SELECT DISTINCT (reported_at AT TIME ZONE %(tz)s)::date AS day FROM case_event
WHERE %(everything)s
UNION
SELECT DISTINCT (reported_at AT TIME ZONE %(tz)s)::date AS day FROM stage
WHERE reported_at IS NOT NULL
UNION
SELECT DISTINCT (c.reported_at AT TIME ZONE %(tz)s)::date FROM case_event c
JOIN stage s ON s.id = c.id
"""

RESOLVED = {"res_grid": 4, "res_community": 3, "res_street": 2, "res_district": 1}


# The measures each aggregate row carries, counted from cases (integers, except the sum of
# hours); a coarser level sums them. The status decides what is closed (a closing time on an
# open case counts for nothing); on_time and handling_hours are set on closed cases only.
def _measures() -> list[tuple[str, str]]:
    bounds = (0, *HOUR_BUCKETS)
    hist = [f"handling_hours >= {lo} AND handling_hours < {hi}"
            for lo, hi in zip(bounds, bounds[1:], strict=False)]
    hist.append(f"handling_hours >= {HOUR_BUCKETS[-1]}")
    return [
        ("total", "count(*)"),
        ("closed", "count(*) FILTER (WHERE status = 'closed')"),
        ("closed_on_time", "count(*) FILTER (WHERE on_time)"),
        ("closed_late", "count(*) FILTER (WHERE NOT on_time)"),
        ("closed_same_day", "count(*) FILTER (WHERE status = 'closed' AND closed_day = day)"),
        ("closed_3d", "count(*) FILTER (WHERE status = 'closed' "
                      "AND closed_at <= reported_at + interval '72 hours')"),
        ("hours_sum", "coalesce(sum(handling_hours), 0)"),
        *((name, f"count(*) FILTER (WHERE {cond})")
          for name, cond in zip(HOURS_COLUMNS, hist, strict=True)),
        ("satisfaction_sum", "coalesce(sum(satisfaction), 0)"),
        ("satisfaction_n", "count(satisfaction)"),
        *((name, f"count(*) FILTER (WHERE resolved_level = {level} AND status = 'closed')")
          for name, level in RESOLVED.items()),
        ("above_grid", "count(*) FILTER (WHERE grid_code IS NULL)"),
    ]


MEASURES = _measures()
NAMES = [name for name, _ in MEASURES]
# A level's rows carry its own code column and its ancestors': grid first, district last.
ANCESTRY = tuple(LEVEL_COLUMN[level] for level in (4, 3, 2, 1))
GRAIN = "day, category_1, channel, status"

# The finest rows, counted once from the touched days' cases: one per grid (or, for cases
# placed above the grid, per community), day, category, channel and status.
LEAF = """
CREATE TEMP TABLE rollup_4 ON COMMIT DROP AS
SELECT {codes}, {grain}, {measures}
FROM (SELECT c.*, (c.reported_at AT TIME ZONE %(tz)s)::date AS day,
             (c.closed_at AT TIME ZONE %(tz)s)::date AS closed_day
      FROM case_event c
      WHERE (c.reported_at AT TIME ZONE %(tz)s)::date IN (SELECT day FROM touched_day)) c
GROUP BY {codes}, {grain}
"""

# Every coarser level sums the level below it (fewer rows each time than the cases).
COARSER = """
CREATE TEMP TABLE rollup_{level} ON COMMIT DROP AS
SELECT {codes}, {grain}, {sums} FROM rollup_{below} GROUP BY {codes}, {grain}
"""

# Rows are written in unit and day order: a unit's days then sit on a few pages, where in
# hash order each was on a page of its own (a community's 30 grids × 90 days at L: 2,800
# pages and 13 ms, clustered 180 pages and 2.4 ms).
ROLLUP = """
INSERT INTO case_rollup (level, unit_code, parent_code, day, category_1, channel, status,
                         {measures})
SELECT {level}, {unit}, {parent}, {grain}, {measures}
FROM rollup_{level} WHERE {unit} IS NOT NULL ORDER BY {unit}, day
"""

# The same measures summed over categories and channels: one row per unit, day and status.
UNIT_DAY = """
INSERT INTO case_unit_day (level, unit_code, parent_code, day, status, {measures})
SELECT {level}, {unit}, {parent}, day, status, {sums}
FROM rollup_{level} WHERE {unit} IS NOT NULL GROUP BY {group} ORDER BY {unit}, day
"""



class Weekly(NamedTuple):
    """A weekly table: the daily one it sums, its key columns beside unit and day, the
    measures it keeps, and whether it is written in unit and week order."""

    daily: str
    keys: str
    measures: list[str]
    clustered: bool


# By category and channel, the counts only: what the mixes, trends and hotspots read, by
# its key index alone (so its row order does not matter); the other figures under those
# filters come by day.
WEEKLY = {"case_rollup_week": Weekly("case_rollup", "category_1, channel, status", ["total"],
                                     clustered=False),
          "case_unit_week": Weekly("case_unit_day", "status", NAMES, clustered=True)}

# The handling-time histograms (onemap.schema.FINE_*): per unit and day, and per week.
HOURS_DAY, HOURS_WEEK = "case_hours_day", "case_hours_week"

TABLES = ("case_rollup", "case_unit_day", *WEEKLY, HOURS_DAY, HOURS_WEEK)

# The Monday of ``day``'s week (2000-01-03 was one), in date arithmetic: date_trunc('week')
# goes through timestamptz and took 1.6 s of a 1.65M-row weekly refresh.
MONDAY = "{day} - (({day} - DATE '2000-01-03') % 7 + 7) % 7"

TOUCHED_WEEK = f"""
CREATE TEMP TABLE touched_week ON COMMIT DROP AS
SELECT DISTINCT {MONDAY.format(day="day")} AS day FROM touched_day
"""

# A touched week's rows, from all of its days (untouched ones included). A unit's days may
# name different parents (cases keep the codes they were placed with when a unit moves):
# its week takes one of them, as its key has no parent.
WEEK = f"""
INSERT INTO {{week}} (level, unit_code, parent_code, day, {{keys}}, {{measures}})
SELECT level, unit_code, max(parent_code), week, {{keys}}, {{sums}}
FROM (SELECT *, {MONDAY.format(day="day")} AS week FROM {{daily}}) r
WHERE week IN (SELECT day FROM touched_week)
GROUP BY level, unit_code, week, {{keys}}{{order}}
"""


def mark_touched(conn: psycopg.Connection, timezone: str) -> None:
    """Before the upsert: note the days of staged rows and of the rows they will replace.
    A zone other than the one the aggregates were counted in touches every day."""
    row = conn.execute("SELECT zone FROM rollup_zone").fetchone()
    rezoned = row is not None and row[0] != timezone
    conn.execute(TOUCHED, {"tz": timezone, "everything": rezoned})
    if rezoned:
        for table in TABLES:
            conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
    conn.execute("INSERT INTO rollup_zone (zone) VALUES (%s) "
                 "ON CONFLICT (one) DO UPDATE SET zone = EXCLUDED.zone", (timezone,))


def refresh(conn: psycopg.Connection, timezone: str, changed: int) -> None:
    """After the upsert of ``changed`` cases: recompute every level's daily aggregates for
    the touched days, then the weekly ones for the weeks those fall in."""
    _count_levels(conn, timezone)
    _rewrite(conn, "case_rollup", changed, [_rollup(level) for level in LEVEL_COLUMN])
    _rewrite(conn, "case_unit_day", changed, [_unit_day(level) for level in LEVEL_COLUMN])
    conn.execute(TOUCHED_WEEK)
    for week, spec in WEEKLY.items():
        insert = WEEK.format(week=week, daily=spec.daily, keys=spec.keys,
                             measures=", ".join(spec.measures),
                             sums=", ".join(map(_sum, spec.measures)),
                             order=" ORDER BY unit_code, week" if spec.clustered else "")
        _rewrite(conn, week, changed, [insert], touched="touched_week")
    _refresh_hours(conn, timezone, changed)


def fine_bucket(column: str) -> str:
    """SQL giving the fine histogram bucket of a number of hours (``onemap.schema``)."""
    start = FINE_LINEAR_BUCKETS * FINE_WIDTH_HOURS
    return (f"CASE WHEN {column} < {start!r} THEN floor({column} / {FINE_WIDTH_HOURS!r}) "
            f"ELSE {FINE_LINEAR_BUCKETS} + floor(ln({column} / {start!r}) / ln({FINE_RATIO!r}))"
            f" END::smallint")


# The closed cases of the touched weeks' days by community (or the finest code they have
# above the grid), day and fine bucket; each coarser level sums the one below. Grids keep no
# histogram: a grid's cases are few, and a grid view's median is exact from them
# (layers.kpi). A view reads one unit's rows by their key (a few dozen), so their order on
# disk does not matter.
HOURS_LEAF = """
CREATE TEMP TABLE hours_3 ON COMMIT DROP AS
SELECT {codes}, day, {bucket} AS b, count(*)::int AS n
FROM (SELECT {codes}, handling_hours, (reported_at AT TIME ZONE %(tz)s)::date AS day
      FROM case_event WHERE handling_hours IS NOT NULL) c
WHERE {monday} IN (SELECT day FROM touched_week)
GROUP BY {codes}, day, b
"""
HOURS_COARSER = """
CREATE TEMP TABLE hours_{level} ON COMMIT DROP AS
SELECT {codes}, day, b, sum(n)::int AS n FROM hours_{below} GROUP BY {codes}, day, b
"""
HOURS_DAYS = f"""
INSERT INTO {HOURS_DAY} (level, unit_code, day, buckets, counts)
SELECT {{level}}, {{unit}}, day, array_agg(b ORDER BY b), array_agg(n ORDER BY b)
FROM hours_{{level}} WHERE {{unit}} IS NOT NULL AND day IN (SELECT day FROM touched_day)
GROUP BY {{unit}}, day
"""
HOURS_WEEKS = f"""
INSERT INTO {HOURS_WEEK} (level, unit_code, day, buckets, counts)
SELECT {{level}}, unit, week, array_agg(b ORDER BY b), array_agg(n ORDER BY b)
FROM (SELECT {{unit}} AS unit, {MONDAY.format(day="day")} AS week, b, sum(n)::int AS n
      FROM hours_{{level}} WHERE {{unit}} IS NOT NULL GROUP BY 1, 2, 3) w
GROUP BY unit, week
"""
HOURS_LEVELS = (3, 2, 1)


def _refresh_hours(conn: psycopg.Connection, timezone: str, changed: int) -> None:
    """The fine handling-time histograms of the touched days and weeks, from the cases of
    the touched weeks (a week's row needs all of its days)."""
    conn.execute(HOURS_LEAF.format(codes=", ".join(ANCESTRY[1:]),
                                   bucket=fine_bucket("handling_hours"),
                                   monday=MONDAY.format(day="day").replace("%", "%%")),
                 {"tz": timezone})
    for level in (2, 1):
        conn.execute(HOURS_COARSER.format(level=level, below=level + 1,
                                          codes=", ".join(ANCESTRY[4 - level:])))
    units = [(level, LEVEL_COLUMN[level]) for level in HOURS_LEVELS]
    _rewrite(conn, HOURS_DAY, changed, [HOURS_DAYS.format(level=level, unit=unit)
                                        for level, unit in units])
    _rewrite(conn, HOURS_WEEK, changed, [HOURS_WEEKS.format(level=level, unit=unit)
                                         for level, unit in units], touched="touched_week")


def _count_levels(conn: psycopg.Connection, timezone: str) -> None:
    """Temp tables ``rollup_4`` … ``rollup_1``: each level's rows for the touched days."""
    leaf = ", ".join(f"({expr})::{_type(name)} AS {name}" for name, expr in MEASURES)
    conn.execute(LEAF.format(codes=", ".join(ANCESTRY), grain=GRAIN, measures=leaf),
                 {"tz": timezone})
    for level in (3, 2, 1):
        conn.execute(COARSER.format(level=level, below=level + 1, grain=GRAIN,
                                    codes=", ".join(ANCESTRY[4 - level:]),
                                    sums=", ".join(_sum(n) + f" AS {n}" for n in NAMES)))


def _unit_and_parent(level: int) -> tuple[str, str]:
    """The code columns naming a level's unit and its parent (NULL for the district)."""
    return LEVEL_COLUMN[level], LEVEL_COLUMN.get(level - 1, "NULL")


def _rollup(level: int) -> str:
    unit, parent = _unit_and_parent(level)
    return ROLLUP.format(level=level, unit=unit, parent=parent, grain=GRAIN,
                         measures=", ".join(NAMES))


def _unit_day(level: int) -> str:
    unit, parent = _unit_and_parent(level)
    return UNIT_DAY.format(level=level, unit=unit, parent=parent,
                           group=", ".join(c for c in (unit, parent, "day", "status")
                                           if c != "NULL"),
                           measures=", ".join(NAMES), sums=", ".join(map(_sum, NAMES)))


def _type(name: str) -> str:
    return "float8" if name == "hours_sum" else "int"


def _sum(name: str) -> str:
    return f"sum({name})::{_type(name)}"


def _rewrite(conn: psycopg.Connection, table: str, changed: int, inserts: list[str],
             touched: str = "touched_day") -> None:
    """Replace ``table``'s rows of the days (or weeks) in ``touched``; when that is most of
    the table (a first load, a full re-export), with its indexes built afterwards instead of
    kept up row by row."""
    before = indexes.row_estimate(conn, table)
    deleted = conn.execute(sql.SQL("DELETE FROM {} WHERE day IN (SELECT day FROM {})")
                           .format(sql.Identifier(table), sql.Identifier(touched))).rowcount
    with indexes.rebuilt_if_large(conn, table, max(changed, deleted), before - deleted,
                                  constraints=True):
        for insert in inserts:
            conn.execute(insert)

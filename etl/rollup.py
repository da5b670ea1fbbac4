"""Case aggregates refreshed at the end of a case batch, for the days the batch touched.

What the tables hold is declared in ``onemap.aggregates``; the statements here are built
from it. Days are local days in the zone recorded in its ``ZONE_TABLE`` (the settings' time
zone at load time); a batch recomputes whole days, so rows updated by a newer export move
between days correctly, and a load in another zone recounts every day. The weekly
``case_rollup_week`` and ``case_unit_week`` are summed from their daily tables for the
touched weeks; ``case_hours_week`` is written from the same bucket counts of the touched
weeks' cases that its daily table is written from.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from etl import indexes
from onemap import aggregates as agg
from onemap.schema import LEVEL_COLUMN

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

# The finest rows, counted once from the touched days' cases: one per grid (or, for cases
# placed above the grid, per community), day and key of the full grain; ``c.day`` and
# ``c.closed_day`` are the local days the measures' expressions name.
GRAIN = ", ".join(("day", *agg.ROLLUP.keys))
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
SELECT {codes}, {grain}, {sums} FROM rollup_{below} r GROUP BY {codes}, {grain}
"""

# A daily table's rows of one level, from that level's temp table; summed over the keys
# it lacks. Rows are written in unit and day order: a unit's days then sit on a few pages,
# where in hash order each was on a page of its own (a community's 30 grids × 90 days at L:
# 2,800 pages and 13 ms, clustered 180 pages and 2.4 ms).
DAILY = """
INSERT INTO {table} ({columns})
SELECT {level}, {unit}, day, {keys}, {values}
FROM rollup_{level} r WHERE {unit} IS NOT NULL{group} ORDER BY {unit}, day
"""

# The Monday of ``day``'s week (2000-01-03 was one), in date arithmetic: date_trunc('week')
# goes through timestamptz and took 1.6 s of a 1.65M-row weekly refresh.
MONDAY = "{day} - (({day} - DATE '2000-01-03') % 7 + 7) % 7"

TOUCHED_WEEK = f"""
CREATE TEMP TABLE touched_week ON COMMIT DROP AS
SELECT DISTINCT {MONDAY.format(day="day")} AS week FROM touched_day
"""

# A touched week's rows, from all of its days (untouched ones included).
WEEK = f"""
INSERT INTO {{table}} ({{columns}})
SELECT level, unit_code, week, {{keys}}{{values}}
FROM (SELECT *, {MONDAY.format(day="day")} AS week FROM {{daily}}) r
WHERE week IN (SELECT week FROM touched_week)
GROUP BY level, unit_code, week, {{keys}}{{order}}
"""


def mark_touched(conn: psycopg.Connection, timezone: str) -> None:
    """Before the upsert: note the days of staged rows and of the rows they will replace.
    A zone other than the one the aggregates were counted in touches every day."""
    zone = sql.Identifier(agg.ZONE_TABLE)
    row = conn.execute(sql.SQL("SELECT zone FROM {}").format(zone)).fetchone()
    rezoned = row is not None and row[0] != timezone
    conn.execute(TOUCHED, {"tz": timezone, "everything": rezoned})
    if rezoned:
        for table in agg.TABLES:
            conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table.name)))
    conn.execute(sql.SQL("INSERT INTO {} (zone) VALUES (%s) ON CONFLICT (one) "
                         "DO UPDATE SET zone = EXCLUDED.zone").format(zone), (timezone,))


def refresh(conn: psycopg.Connection, timezone: str, changed: int) -> None:
    """After the upsert of ``changed`` cases: recompute every level's daily aggregates for
    the touched days, then the weekly ones for the weeks those fall in."""
    _count_levels(conn, timezone)
    for table in (agg.ROLLUP, agg.UNIT_DAY):
        _rewrite(conn, table, changed, [_daily(table, level) for level in table.levels])
    conn.execute(TOUCHED_WEEK)
    for table in (agg.ROLLUP_WEEK, agg.UNIT_WEEK):
        _rewrite(conn, table, changed, [_weekly(table)])
    _refresh_histograms(conn, timezone, changed)


def _count_levels(conn: psycopg.Connection, timezone: str) -> None:
    """Temp tables ``rollup_4`` … ``rollup_1``: each level's rows for the touched days."""
    leaf = ", ".join(f"({m.counted('c.day', 'c.closed_day')})::{m.type} AS {m.name}"
                     for m in agg.MEASURES)
    conn.execute(LEAF.format(codes=", ".join(agg.ANCESTRY), grain=GRAIN, measures=leaf),
                 {"tz": timezone})
    sums = ", ".join(f"{m.summed(cast=True)} AS {m.name}" for m in agg.MEASURES)
    for level in (3, 2, 1):
        conn.execute(COARSER.format(level=level, below=level + 1, grain=GRAIN, sums=sums,
                                    codes=", ".join(agg.ANCESTRY[4 - level:])))


def _daily(table: agg.Table, level: int) -> str:
    """The insert of ``table``'s rows of ``level`` from its temp table."""
    unit = LEVEL_COLUMN[level]
    whole = table.keys == agg.ROLLUP.keys   # the temp tables' own grain: nothing to sum
    values = (", ".join(m.name for m in table.measures) if whole else
              ", ".join(m.summed(cast=True) for m in table.measures))
    group = "" if whole else f" GROUP BY {', '.join((unit, 'day', *table.keys))}"
    return DAILY.format(table=table.name, columns=_names(table.columns), level=level,
                        unit=unit, keys=", ".join(table.keys), values=values, group=group)


def _weekly(table: agg.Table) -> str:
    """The insert of ``table``'s touched weeks from its daily table."""
    keys = ", ".join(table.keys)
    values = "".join(f", {m.summed(cast=True)}" for m in table.measures)
    return WEEK.format(table=table.name, columns=_names(table.columns), daily=table.daily,
                       keys=keys, values=values,
                       order=" ORDER BY unit_code, week" if table.clustered else "")


def _names(columns) -> str:
    return ", ".join(c.name for c in columns)


# The closed cases of the touched weeks' days by community (or the finest code they have
# above the grid), day and fine bucket; each coarser level sums the one below.
HISTOGRAM_LEAF = """
CREATE TEMP TABLE hours_3 ON COMMIT DROP AS
SELECT {codes}, day, {bucket} AS b, count(*)::int AS n
FROM (SELECT {codes}, handling_hours, (reported_at AT TIME ZONE %(tz)s)::date AS day
      FROM case_event WHERE handling_hours IS NOT NULL) c
WHERE {monday} IN (SELECT week FROM touched_week)
GROUP BY {codes}, day, b
"""
HISTOGRAM_COARSER = """
CREATE TEMP TABLE hours_{level} ON COMMIT DROP AS
SELECT {codes}, day, b, sum(n)::int AS n FROM hours_{below} GROUP BY {codes}, day, b
"""
HISTOGRAM_DAYS = """
INSERT INTO {table} (level, unit_code, day, buckets, counts)
SELECT {level}, {unit}, day, array_agg(b ORDER BY b), array_agg(n ORDER BY b)
FROM hours_{level} WHERE {unit} IS NOT NULL AND day IN (SELECT day FROM touched_day)
GROUP BY {unit}, day
"""
HISTOGRAM_WEEKS = f"""
INSERT INTO {{table}} (level, unit_code, week, buckets, counts)
SELECT {{level}}, unit, week, array_agg(b ORDER BY b), array_agg(n ORDER BY b)
FROM (SELECT {{unit}} AS unit, {MONDAY.format(day="day")} AS week, b, sum(n)::int AS n
      FROM hours_{{level}} WHERE {{unit}} IS NOT NULL GROUP BY 1, 2, 3) w
GROUP BY unit, week
"""


def _refresh_histograms(conn: psycopg.Connection, timezone: str, changed: int) -> None:
    """The fine handling-time histograms of the touched days and weeks, from the cases of
    the touched weeks (a week's row needs all of its days)."""
    levels = agg.HISTOGRAM_DAY.levels
    conn.execute(HISTOGRAM_LEAF.format(codes=", ".join(agg.ANCESTRY[4 - max(levels):]),
                                       bucket=agg.fine_bucket("handling_hours"),
                                       monday=MONDAY.format(day="day").replace("%", "%%")),
                 {"tz": timezone})
    for level in sorted(levels, reverse=True)[1:]:
        conn.execute(HISTOGRAM_COARSER.format(level=level, below=level + 1,
                                              codes=", ".join(agg.ANCESTRY[4 - level:])))
    for table, insert in ((agg.HISTOGRAM_DAY, HISTOGRAM_DAYS),
                          (agg.HISTOGRAM_WEEK, HISTOGRAM_WEEKS)):
        _rewrite(conn, table, changed, [insert.format(table=table.name, level=level,
                                                      unit=LEVEL_COLUMN[level])
                                        for level in levels])


def _rewrite(conn: psycopg.Connection, table: agg.Table, changed: int,
             inserts: list[str]) -> None:
    """Replace ``table``'s rows of the touched days (or weeks); when that is most of the
    table (a first load, a full re-export), with its indexes built afterwards instead of
    kept up row by row."""
    before = indexes.row_estimate(conn, table.name)
    period = sql.Identifier(table.period)
    deleted = conn.execute(sql.SQL("DELETE FROM {} WHERE {} IN (SELECT {} FROM {})").format(
        sql.Identifier(table.name), period, period,
        sql.Identifier(f"touched_{table.period}"))).rowcount
    with indexes.rebuilt_if_large(conn, table.name, max(changed, deleted), before - deleted,
                                  constraints=True):
        for insert in inserts:
            conn.execute(insert)

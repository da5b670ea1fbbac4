"""Case aggregates brought up to date at the end of a case batch, in its transaction.

What the tables hold is declared in ``onemap.aggregates``; the statements here are built
from it. Days are local days in the zone recorded in its ``ZONE_TABLE`` (the settings' time
zone at load time). A batch takes one of two paths:

- **By delta** (:func:`apply_delta`), when it is small (at most ``DELTA_MAX_CASES`` cases
  staged and changed, and not large next to ``case_event``) and counted in the aggregates'
  zone: each changed case's row before
  the batch (kept in ``case_before`` by :func:`mark_touched` before the upsert, and by the
  removal of cases the source no longer holds) counts with sign -1 and its row after with
  +1; the declared measures' expressions count both per key of the full grain and every
  level from the case's own unit up to the district, and each table's rows of the levels
  it keeps (and its weekly table's, on the Monday of the day) are added to with ``ON
  CONFLICT … DO UPDATE SET m = t.m + excluded.m``. A row whose count falls to 0 is
  deleted (a recount has no row for a key without cases). The fine histograms' bucket
  counts are merged the same way: each changed unit-day's (and week's) arrays are
  unnested, added to and aggregated again.
- **By recount** (:func:`refresh`), for larger batches and a load in another zone: whole
  days are recomputed from ``case_event``, so rows updated by a newer export move between
  days correctly, and a load in another zone recounts every day. The weekly
  ``case_rollup_week`` and ``case_unit_week`` are summed from their daily tables for the
  touched weeks; ``case_hours_week`` is written from the same bucket counts of the touched
  weeks' cases that its daily table is written from.

A delta costs in proportion to the changed cases, a recount to the cases of the touched
days (a 10-case batch into the M city: 0.35 s against 13.3 s, ``bench/bench_delta.py``);
both leave the same rows (``tests/test_rollup_delta.py`` holds them to a recount after
random batches).
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from etl import indexes
from onemap import aggregates as agg
from onemap.schema import LEVEL_COLUMN

# The most cases a batch may stage, and change, to go by delta. A delta's cost follows the
# changed cases (two rows each, a few aggregate rows per level), a recount's the cases of
# every touched day (about 1,400 a day in the M city, wherever the batch's cases fall): at
# M a 1,000-case batch took 4.9 s by delta against 124 s by recount
# (bench/results/delta.json), so at this bound a delta stays well under a recount and its
# transaction short. Larger batches (a first load, a re-export), and any batch whose rows
# rebuild the indexes of case_event (etl.indexes), recount.
DELTA_MAX_CASES = 5_000

# The rows, as they are before the upsert, of the cases a batch stages and did not reject
# (a rejected row stays as it is, or is removed and kept then by ``etl.replace``). The
# cases' key is ``id``, staged as it is stored.
BEFORE_TABLE = "case_before"
BEFORE = f"""
CREATE TEMP TABLE {BEFORE_TABLE} ON COMMIT DROP AS
SELECT c.* FROM case_event c
WHERE c.id IN (SELECT s.id FROM stage s WHERE NOT EXISTS (
    SELECT 1 FROM stage_reject r WHERE r.row_number = s.row_number
                                   AND r.source_file = s.source_file))
"""

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
CREATE TEMP TABLE {name}_{level} ON COMMIT DROP AS
SELECT {codes}, {grain}, {sums} FROM {name}_{below} r GROUP BY {codes}, {grain}
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

# A touched week's rows, of the levels the weekly table keeps, from all of its days
# (untouched ones included).
WEEK = f"""
INSERT INTO {{table}} ({{columns}})
SELECT level, unit_code, week, {{keys}}{{values}}
FROM (SELECT *, {MONDAY.format(day="day")} AS week FROM {{daily}}) r
WHERE week IN (SELECT week FROM touched_week) AND level IN ({{levels}})
GROUP BY level, unit_code, week, {{keys}}{{order}}
"""


def mark_touched(conn: psycopg.Connection, timezone: str) -> bool:
    """Before the upsert: note the days of staged rows and of the rows they will replace.
    A zone other than the one the aggregates were counted in touches every day. Return
    whether the batch may go by delta (small, also next to the cases there are, and in the
    same zone); then the rows of the cases it stages (not rejected) are kept as they are
    now in ``case_before``."""
    zone = sql.Identifier(agg.ZONE_TABLE)
    row = conn.execute(sql.SQL("SELECT zone FROM {}").format(zone)).fetchone()
    rezoned = row is not None and row[0] != timezone
    conn.execute(TOUCHED, {"tz": timezone, "everything": rezoned})
    if rezoned:
        for table in agg.TABLES:
            conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table.name)))
    conn.execute(sql.SQL("INSERT INTO {} (zone) VALUES (%s) ON CONFLICT (one) "
                         "DO UPDATE SET zone = EXCLUDED.zone").format(zone), (timezone,))
    staged = conn.execute("SELECT count(*) FROM stage").fetchone()[0]
    large = indexes.worth_rebuilding(staged, indexes.row_estimate(conn, "case_event"))
    by_delta = not rezoned and staged <= DELTA_MAX_CASES and not large
    if by_delta:
        conn.execute(BEFORE)
    return by_delta


def update(conn: psycopg.Connection, timezone: str, batch_id: int, changed: int,
           by_delta: bool) -> None:
    """After the upsert (and the removals) of batch ``batch_id``, which inserted, updated
    or removed ``changed`` cases: the aggregates by delta when :func:`mark_touched` allowed
    it and few enough cases changed, else by recounting the touched days."""
    if by_delta and changed <= DELTA_MAX_CASES:
        apply_delta(conn, timezone, batch_id)
    else:
        refresh(conn, timezone, changed)


def refresh(conn: psycopg.Connection, timezone: str, changed: int) -> None:
    """After the upsert of ``changed`` cases: recompute the daily aggregates, at every level
    they keep, for the touched days, then the weekly ones for the weeks those fall in."""
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
        conn.execute(COARSER.format(name="rollup", level=level, below=level + 1, grain=GRAIN,
                                    sums=sums, codes=", ".join(agg.ANCESTRY[4 - level:])))


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
                       keys=keys, values=values, levels=", ".join(map(str, table.levels)),
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
CREATE TEMP TABLE {name}_{level} ON COMMIT DROP AS
SELECT {codes}, day, b, sum(n)::int AS n FROM {name}_{below} GROUP BY {codes}, day, b
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
        conn.execute(HISTOGRAM_COARSER.format(name="hours", level=level, below=level + 1,
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


# The changed cases' rows: before the batch with sign -1 (those of cases it updated or
# removed; an unchanged one kept its batch), after it with +1 (those it wrote), each with
# its local days.
SIGNED = f"""
CREATE TEMP TABLE case_signed ON COMMIT DROP AS
SELECT c.*, (c.reported_at AT TIME ZONE %(tz)s)::date AS day,
       (c.closed_at AT TIME ZONE %(tz)s)::date AS closed_day
FROM (SELECT b.*, -1 AS sign FROM {BEFORE_TABLE} b
      WHERE NOT EXISTS (SELECT 1 FROM case_event c
                        WHERE c.id = b.id AND c.batch_id IS DISTINCT FROM %(batch)s)
      UNION ALL
      SELECT c.*, 1 FROM case_event c
      WHERE c.id IN (SELECT s.id FROM stage s) AND c.batch_id = %(batch)s) c
"""

# The change of every measure per grid (or the finest unit above it), day and key of the
# full grain: the measures counted over each sign's rows, then summed with their signs.
DELTA_LEAF = """
CREATE TEMP TABLE delta_4 ON COMMIT DROP AS
SELECT {codes}, {grain}, {sums}
FROM (SELECT {codes}, {grain}, sign, {measures} FROM case_signed c
      GROUP BY {codes}, {grain}, sign) r
GROUP BY {codes}, {grain}
"""

# A table's rows of one level added to (new keys inserted); keys whose change is nil are
# left alone. ``week`` is the Monday of the row's day.
ADD = f"""
INSERT INTO {{table}} AS t ({{columns}})
SELECT {{level}}, {{unit}}, {{period}}, {{keys}}{{values}}
FROM (SELECT *, {MONDAY.format(day="day")} AS week FROM delta_{{level}}) r
WHERE {{unit}} IS NOT NULL
GROUP BY {{unit}}, {{period}}{{group}}
HAVING NOT ({{nil}})
ON CONFLICT ({{key}}) DO UPDATE SET {{added}}
"""

# Rows of the changed units and periods left with no case: a recount has none.
EMPTIED = f"""
DELETE FROM {{table}} t
WHERE t.level = {{level}} AND t.total = 0 AND (t.unit_code, t.{{period}}) IN (
    SELECT {{unit}}, {{period}}
    FROM (SELECT *, {MONDAY.format(day="day")} AS week FROM delta_{{level}}) r
    WHERE {{unit}} IS NOT NULL)
"""


def apply_delta(conn: psycopg.Connection, timezone: str, batch_id: int) -> None:
    """Add the change batch ``batch_id`` made (``case_before`` against ``case_event``) to
    every aggregate table, at each level it keeps, daily and weekly."""
    conn.execute(SIGNED, {"tz": timezone, "batch": batch_id})
    conn.execute("ANALYZE case_signed")
    leaf = ", ".join(f"({m.counted('c.day', 'c.closed_day')})::{m.type} AS {m.name}"
                     for m in agg.MEASURES)
    signed = ", ".join(f"sum(sign * {m.name})::{m.type} AS {m.name}" for m in agg.MEASURES)
    conn.execute(DELTA_LEAF.format(codes=", ".join(agg.ANCESTRY), grain=GRAIN,
                                   measures=leaf, sums=signed))
    sums = ", ".join(f"{m.summed(cast=True)} AS {m.name}" for m in agg.MEASURES)
    for level in (3, 2, 1):
        conn.execute(COARSER.format(name="delta", level=level, below=level + 1, grain=GRAIN,
                                    sums=sums, codes=", ".join(agg.ANCESTRY[4 - level:])))
    # Planned on their real (small) sizes, the statements below look up the changed keys
    # by index rather than scanning the tables they change.
    for level in (4, 3, 2, 1):
        conn.execute(f"ANALYZE delta_{level}")
    for table in (agg.ROLLUP, agg.UNIT_DAY, agg.ROLLUP_WEEK, agg.UNIT_WEEK):
        for level in table.levels:
            _add(conn, table, level)
    _merge_histograms(conn)


def _add(conn: psycopg.Connection, table: agg.Table, level: int) -> None:
    """Add the change to ``table``'s rows of ``level``; delete those left empty."""
    unit = LEVEL_COLUMN[level]
    names = [m.name for m in table.measures]
    conn.execute(ADD.format(
        table=table.name, columns=_names(table.columns), level=level, unit=unit,
        period=table.period, keys="".join(f"{k}, " for k in table.keys),
        values=", ".join(m.summed(cast=True) for m in table.measures),
        group="".join(f", {k}" for k in table.keys),
        nil=" AND ".join(f"{m.summed()} = 0" for m in table.measures),
        key=", ".join(table.key),
        added=", ".join(f"{n} = t.{n} + EXCLUDED.{n}" for n in names)))
    conn.execute(EMPTIED.format(table=table.name, level=level, unit=unit,
                                period=table.period))


# The fine histograms' change: per community (or the finest unit above it), day and
# bucket, the closed cases after the batch less those before it; coarser levels sum it.
HOURS_DELTA_LEAF = """
CREATE TEMP TABLE hours_delta_3 ON COMMIT DROP AS
SELECT {codes}, day, {bucket} AS b, sum(sign)::int AS n
FROM case_signed WHERE handling_hours IS NOT NULL
GROUP BY {codes}, day, b
"""

# One histogram table's change per unit and period: the buckets whose count changes and
# by how much, as two arrays.
HOURS_CHANGE = """
CREATE TEMP TABLE hours_change ON COMMIT DROP AS
SELECT level, unit_code, {period}, array_agg(b) AS b, array_agg(n) AS n
FROM (SELECT level, unit_code, {period}, b, sum(n)::int AS n FROM ({levels}) x
      GROUP BY level, unit_code, {period}, b HAVING sum(n) <> 0) c
GROUP BY level, unit_code, {period}
"""
HOURS_LEVEL = ("SELECT {level} AS level, {unit} AS unit_code, {period} AS {name}, b, n "
               "FROM hours_delta_{level} WHERE {unit} IS NOT NULL")

# Each changed row's buckets and counts with its change added, buckets left empty dropped
# (merged row by row: a few hundred buckets each, where one sort of them all took seconds);
# a row left with none is not written again.
HOURS_REPLACED = """
CREATE TEMP TABLE hours_merged ON COMMIT DROP AS
SELECT c.level, c.unit_code, c.{period}, m.buckets, m.counts
FROM hours_change c
LEFT JOIN {table} h USING (level, unit_code, {period})
CROSS JOIN LATERAL (
    SELECT array_agg(b ORDER BY b) AS buckets, array_agg(n ORDER BY b) AS counts
    FROM (SELECT b, sum(n)::int AS n
          FROM (SELECT * FROM unnest(h.buckets, h.counts)
                UNION ALL SELECT * FROM unnest(c.b, c.n)) x(b, n)
          GROUP BY b HAVING sum(n) <> 0) y) m;
DELETE FROM {table} WHERE (level, unit_code, {period}) IN (
    SELECT level, unit_code, {period} FROM hours_change);
INSERT INTO {table} (level, unit_code, {period}, buckets, counts)
SELECT level, unit_code, {period}, buckets, counts FROM hours_merged
WHERE buckets IS NOT NULL;
DROP TABLE hours_change, hours_merged
"""


def _merge_histograms(conn: psycopg.Connection) -> None:
    """Add the change to the fine histograms of the changed units' days and weeks."""
    levels = sorted(agg.HISTOGRAM_DAY.levels, reverse=True)
    conn.execute(HOURS_DELTA_LEAF.format(codes=", ".join(agg.ANCESTRY[4 - levels[0]:]),
                                         bucket=agg.fine_bucket("handling_hours")))
    for level in levels[1:]:
        conn.execute(HISTOGRAM_COARSER.format(name="hours_delta", level=level,
                                              below=level + 1,
                                              codes=", ".join(agg.ANCESTRY[4 - level:])))
    for table in (agg.HISTOGRAM_DAY, agg.HISTOGRAM_WEEK):
        period = "day" if table.period == "day" else MONDAY.format(day="day")
        parts = " UNION ALL ".join(
            HOURS_LEVEL.format(level=level, unit=LEVEL_COLUMN[level], period=period,
                               name=table.period) for level in table.levels)
        conn.execute(HOURS_CHANGE.format(period=table.period, levels=parts))
        conn.execute("ANALYZE hours_change")
        conn.execute(HOURS_REPLACED.format(period=table.period, table=table.name))

"""Case aggregates refreshed at the end of a case batch, for the days the batch touched.

Days are local days in the zone recorded in ``rollup_zone`` (the settings' time zone at
load time); a batch recomputes whole days, so rows updated by a newer export move between
days correctly, and a load in another zone recounts every day.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from etl import indexes
from onemap.schema import HOUR_BUCKETS

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

# One pass over the touched days computes all four levels (GROUPING SETS), each split by
# status so a status filter reads the aggregates too; a level's groups with no unit (cases
# placed above the grid) are left out.
AGGREGATE = """
INSERT INTO case_rollup
SELECT level,
       CASE level WHEN 4 THEN grid_code WHEN 3 THEN community_code
                  WHEN 2 THEN street_code ELSE district_code END,
       CASE level WHEN 4 THEN community_code WHEN 3 THEN street_code
                  WHEN 2 THEN district_code END,
       day, category_1, channel, total, closed, closed_on_time, closed_late, closed_same_day,
       closed_3d, hours_sum, hours_hist, satisfaction_sum, satisfaction_n, resolved, status
FROM (
    SELECT CASE GROUPING(grid_code, community_code, street_code, district_code)
                WHEN 3 THEN 4 WHEN 9 THEN 3 WHEN 12 THEN 2 ELSE 1 END AS level,
           grid_code, community_code, street_code, district_code, day, category_1, channel,
           status, count(*) AS total,
           count(*) FILTER (WHERE closed_at IS NOT NULL) AS closed,
           count(*) FILTER (WHERE on_time) AS closed_on_time,
           count(*) FILTER (WHERE NOT on_time) AS closed_late,
           count(*) FILTER (WHERE closed_day = day) AS closed_same_day,
           count(*) FILTER (WHERE closed_at <= reported_at + interval '72 hours') AS closed_3d,
           coalesce(sum(handling_hours), 0) AS hours_sum,
           ARRAY[{hist}] AS hours_hist,
           coalesce(sum(satisfaction), 0) AS satisfaction_sum,
           count(satisfaction) AS satisfaction_n,
           ARRAY[count(*) FILTER (WHERE resolved_level = 4 AND closed_at IS NOT NULL),
                 count(*) FILTER (WHERE resolved_level = 3 AND closed_at IS NOT NULL),
                 count(*) FILTER (WHERE resolved_level = 2 AND closed_at IS NOT NULL),
                 count(*) FILTER (WHERE resolved_level = 1 AND closed_at IS NOT NULL)]
               AS resolved
    FROM (SELECT c.*, (c.reported_at AT TIME ZONE %(tz)s)::date AS day,
                 (c.closed_at AT TIME ZONE %(tz)s)::date AS closed_day
          FROM case_event c
          WHERE (c.reported_at AT TIME ZONE %(tz)s)::date IN (SELECT day FROM touched_day)) c
    GROUP BY GROUPING SETS (
        (district_code, day, category_1, channel, status),
        (district_code, street_code, day, category_1, channel, status),
        (street_code, community_code, day, category_1, channel, status),
        (community_code, grid_code, day, category_1, channel, status))
) g
WHERE CASE level WHEN 4 THEN grid_code WHEN 3 THEN community_code
                 WHEN 2 THEN street_code ELSE district_code END IS NOT NULL
"""


# The same measures summed over categories and channels: one row per unit and day.
UNIT_DAY = """
INSERT INTO case_unit_day
SELECT level, unit_code, parent_code, day, sum(total), sum(closed), sum(closed_on_time),
       sum(closed_late), sum(closed_same_day), sum(closed_3d), sum(hours_sum), ARRAY[{hist}],
       sum(satisfaction_sum), sum(satisfaction_n),
       ARRAY[sum(resolved[1]), sum(resolved[2]), sum(resolved[3]), sum(resolved[4])], status
FROM case_rollup WHERE day IN (SELECT day FROM touched_day)
GROUP BY level, unit_code, parent_code, day, status
"""


def mark_touched(conn: psycopg.Connection, timezone: str) -> None:
    """Before the upsert: note the days of staged rows and of the rows they will replace.
    A zone other than the one the aggregates were counted in touches every day."""
    row = conn.execute("SELECT zone FROM rollup_zone").fetchone()
    rezoned = row is not None and row[0] != timezone
    conn.execute(TOUCHED, {"tz": timezone, "everything": rezoned})
    if rezoned:
        conn.execute("DELETE FROM case_rollup")
        conn.execute("DELETE FROM case_unit_day")
    conn.execute("INSERT INTO rollup_zone (zone) VALUES (%s) "
                 "ON CONFLICT (one) DO UPDATE SET zone = EXCLUDED.zone", (timezone,))


def refresh(conn: psycopg.Connection, timezone: str, changed: int) -> None:
    """After the upsert of ``changed`` cases: recompute every level's aggregates for the
    touched days."""
    _rewrite(conn, "case_rollup", changed, AGGREGATE.format(hist=_histogram()), {"tz": timezone})
    _rewrite(conn, "case_unit_day", changed, UNIT_DAY.format(hist=", ".join(
        f"sum(hours_hist[{i + 1}])" for i in range(len(HOUR_BUCKETS) + 1))))


def _rewrite(conn: psycopg.Connection, table: str, changed: int, insert: str,
             params=None) -> None:
    """Replace ``table``'s rows of the touched days; when that is most of the table (a first
    load, a full re-export), with its indexes built afterwards instead of kept up row by row."""
    before = indexes.row_estimate(conn, table)
    deleted = conn.execute(sql.SQL("DELETE FROM {} WHERE day IN (SELECT day FROM touched_day)")
                           .format(sql.Identifier(table))).rowcount
    if not indexes.worth_rebuilding(max(changed, deleted), before - deleted):
        conn.execute(insert, params)
        return
    with indexes.rebuilt(conn, table, constraints=True):
        conn.execute(insert, params)


def _histogram() -> str:
    bounds = (0, *HOUR_BUCKETS)
    parts = [f"count(*) FILTER (WHERE handling_hours >= {lo} AND handling_hours < {hi})"
             for lo, hi in zip(bounds, bounds[1:], strict=False)]
    parts.append(f"count(*) FILTER (WHERE handling_hours >= {HOUR_BUCKETS[-1]})")
    return ", ".join(parts)

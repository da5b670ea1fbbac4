"""Case aggregates refreshed at the end of a case batch, for the days the batch touched.

Days are local days in the zone recorded in ``rollup_zone`` (the settings' time zone at
load time); a batch recomputes whole days, so rows updated by a newer export move between
days correctly, and a load in another zone recounts every day.
"""

from __future__ import annotations

import psycopg

from onemap.schema import HOUR_BUCKETS

LEVEL_COLUMNS = {1: ("district_code", None), 2: ("street_code", "district_code"),
                 3: ("community_code", "street_code"), 4: ("grid_code", "community_code")}

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

AGGREGATE = """
INSERT INTO case_rollup
SELECT %(level)s, {unit}, {parent}, (reported_at AT TIME ZONE %(tz)s)::date, category_1, channel,
       count(*),
       count(*) FILTER (WHERE closed_at IS NOT NULL),
       count(*) FILTER (WHERE on_time),
       count(*) FILTER (WHERE NOT on_time),
       count(*) FILTER (WHERE (closed_at AT TIME ZONE %(tz)s)::date
                              = (reported_at AT TIME ZONE %(tz)s)::date),
       count(*) FILTER (WHERE closed_at <= reported_at + interval '72 hours'),
       coalesce(sum(handling_hours), 0),
       ARRAY[{hist}],
       coalesce(sum(satisfaction), 0), count(satisfaction),
       ARRAY[count(*) FILTER (WHERE resolved_level = 4 AND closed_at IS NOT NULL),
             count(*) FILTER (WHERE resolved_level = 3 AND closed_at IS NOT NULL),
             count(*) FILTER (WHERE resolved_level = 2 AND closed_at IS NOT NULL),
             count(*) FILTER (WHERE resolved_level = 1 AND closed_at IS NOT NULL)]
FROM case_event
WHERE {unit} IS NOT NULL
  AND (reported_at AT TIME ZONE %(tz)s)::date IN (SELECT day FROM touched_day)
GROUP BY 1, 2, 3, 4, 5, 6
"""


def mark_touched(conn: psycopg.Connection, timezone: str) -> None:
    """Before the upsert: note the days of staged rows and of the rows they will replace.
    A zone other than the one the aggregates were counted in touches every day."""
    row = conn.execute("SELECT zone FROM rollup_zone").fetchone()
    rezoned = row is not None and row[0] != timezone
    conn.execute(TOUCHED, {"tz": timezone, "everything": rezoned})
    if rezoned:
        conn.execute("DELETE FROM case_rollup")
    conn.execute("INSERT INTO rollup_zone (zone) VALUES (%s) "
                 "ON CONFLICT (one) DO UPDATE SET zone = EXCLUDED.zone", (timezone,))


def refresh(conn: psycopg.Connection, timezone: str) -> None:
    """After the upsert: recompute every level's aggregates for the touched days."""
    conn.execute("DELETE FROM case_rollup WHERE day IN (SELECT day FROM touched_day)")
    for level, (unit, parent) in LEVEL_COLUMNS.items():
        query = AGGREGATE.format(unit=unit, parent=parent or "NULL", hist=_histogram())
        conn.execute(query, {"level": level, "tz": timezone})


def _histogram() -> str:
    bounds = (0, *HOUR_BUCKETS)
    parts = [f"count(*) FILTER (WHERE handling_hours >= {lo} AND handling_hours < {hi})"
             for lo, hi in zip(bounds, bounds[1:], strict=False)]
    parts.append(f"count(*) FILTER (WHERE handling_hours >= {HOUR_BUCKETS[-1]})")
    return ", ".join(parts)

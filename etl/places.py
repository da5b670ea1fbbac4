"""Set-based SQL for point loads: place every staged row, reject what cannot be placed,
then upsert the rest into the target table.

Rows with a point come with the grid that contains it, found while the chunk was
transformed (``etl.grids``: lowest code on a shared border, so the answer never depends on
scan order), and get that grid's ancestors here. Rows without a point are
placed by an admin code or name when the target allows it. IoT events take their device's.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from etl import indexes
from etl.targets import Target

CODES = ("grid_code", "community_code", "street_code", "district_code")

# The first matching rule names a row's problem: (field, reason expression, condition).
DUPLICATE = ("'duplicate key, first seen at row ' || p.first_row || CASE WHEN p.first_file "
             "<> s.source_file THEN ' of ' || p.first_file ELSE '' END")
COMMON_RULES = [("id", DUPLICATE, "p.occurrence > 1")]
POINT_RULES = [
    ("geometry", "'(' || round(ST_X(s.geom)::numeric, 6) || ', ' || round(ST_Y(s.geom)::numeric, 6)"
                 " || ') is outside the district (in no grid)'",
     "s.geom IS NOT NULL AND p.district_code IS NULL"),
    ("place", "'admin code ' || quote_literal(s.place_code) || ' is not a loaded unit'",
     "s.geom IS NULL AND s.place_code IS NOT NULL AND p.district_code IS NULL"),
    ("place", "'admin name ' || quote_literal(s.place_name) || ' matches no unit, or several'",
     "s.geom IS NULL AND s.place_name IS NOT NULL AND p.district_code IS NULL"),
    ("place", "'no coordinates and no admin code or name'",
     "s.geom IS NULL AND p.district_code IS NULL"),
    ("place", "'admin unit ' || quote_literal(s.place_code) || ' is a district; a street or "
              "finer unit is needed'", "p.street_code IS NULL"),
]
EXTRA_RULES = {
    "cases": [
        ("closed_at", "'closed_at ' || s.closed_at || ' is before reported_at ' || s.reported_at",
         "s.closed_at < s.reported_at"),
        ("deadline", "'deadline ' || s.deadline || ' is before reported_at ' || s.reported_at",
         "s.deadline < s.reported_at"),
    ],
    "iot-events": [
        ("device_id", "'unknown device ' || quote_literal(s.device_id) || ' (load devices first)'",
         "p.district_code IS NULL"),
        ("status", "'a status event needs a status'",
         "s.event_type = 'status' AND s.status IS NULL"),
        ("value", "'a reading needs a value'", "s.event_type = 'reading' AND s.value IS NULL"),
    ],
}


def place(conn: psycopg.Connection, target: Target, place_level: int | None) -> None:
    """Build ``placed``: each staged row's codes and its first problem (or none)."""
    key = sql.SQL(", ").join(sql.Identifier(k) for k in target.key)
    devices = target.kind == "iot-events"
    source = DEVICE_CODES if devices else POINT_CODES
    conn.execute(sql.SQL(PLACED).format(key=key, codes=sql.SQL(source)),
                 {"level": place_level})
    conn.execute("ANALYZE placed")  # the joins below are planned on its real size
    point_rules = [] if target.kind == "iot-events" else POINT_RULES
    rules = COMMON_RULES + point_rules + EXTRA_RULES.get(target.kind, [])
    cases = sql.SQL(" ").join(
        sql.SQL("WHEN {} THEN {}").format(sql.SQL(cond), sql.Literal(field))
        for field, _, cond in rules)
    reasons = sql.SQL(" ").join(
        sql.SQL("WHEN {} THEN {}").format(sql.SQL(cond), sql.SQL(reason))
        for _, reason, cond in rules)
    conn.execute(sql.SQL(
        "INSERT INTO stage_reject (row_number, source_file, field, reason, raw) "
        "SELECT * FROM (SELECT s.row_number, s.source_file, CASE {} END AS field, "
        "CASE {} END AS reason, NULL::jsonb AS raw "
        "FROM stage s JOIN placed p USING (row_number, source_file)) r "
        "WHERE r.reason IS NOT NULL"
    ).format(cases, reasons))


PLACED = """
CREATE TEMP TABLE placed ON COMMIT DROP AS
SELECT s.row_number, s.source_file,
       first_value(s.row_number) OVER w AS first_row,
       first_value(s.source_file) OVER w AS first_file,
       row_number() OVER w AS occurrence, c.*
FROM stage s
LEFT JOIN LATERAL ({codes}) c ON true
WINDOW w AS (PARTITION BY {key} ORDER BY s.file_no, s.row_number)
"""

POINT_CODES = """
SELECT a.grid_code, a.community_code, a.street_code, a.district_code
FROM admin_unit a
WHERE a.code = CASE
    WHEN s.geom IS NOT NULL THEN s.grid_code
    WHEN s.place_code IS NOT NULL THEN s.place_code
    ELSE (SELECT min(u.code) FROM admin_unit u
          WHERE (u.name = s.place_name OR regexp_replace(u.name, '(居委会|村委会)$', '')
                 = regexp_replace(s.place_name, '(居委会|村委会)$', ''))
            AND (CAST(%(level)s AS int) IS NULL OR u.level = %(level)s)
          HAVING count(*) = 1)
END
"""

DEVICE_CODES = """
SELECT d.grid_code, d.community_code, d.street_code, d.district_code
FROM iot_device d WHERE d.id = s.device_id
"""


def upsert(conn: psycopg.Connection, target: Target, batch_id: int) -> tuple[int, int]:
    """Insert accepted rows, update changed ones; return (inserted, updated)."""
    staged = conn.execute("SELECT count(*) FROM stage").fetchone()[0]
    existing = indexes.row_estimate(conn, target.table)
    with indexes.rebuilt_if_large(conn, target.table, staged, existing):
        return _upsert(conn, target, batch_id)


def _upsert(conn: psycopg.Connection, target: Target, batch_id: int) -> tuple[int, int]:
    geom = [] if target.geometry == "none" else ["geom", "h3"]
    columns = target.names + list(DERIVED.get(target.kind, {})) + geom + list(CODES)
    values = [_value(target, c) for c in columns]
    keys = sql.SQL(", ").join(sql.Identifier(k) for k in target.key)
    changeable = [c for c in columns if c not in target.key]
    conflict = sql.SQL(ON_CONFLICT).format(
        keys=keys,
        sets=sql.SQL(", ").join(
            [sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in changeable]
            + ([sql.SQL("updated_at = now()")] if target.stamped else [])),
        old=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in changeable),
        new=sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c))
                               for c in changeable),
    )
    statement = sql.SQL(UPSERT).format(
        table=sql.Identifier(target.table),
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        values=sql.SQL(", ").join(values),
        conflict=conflict if _any_existing(conn, target) else sql.SQL(""),
    )
    inserted, updated = conn.execute(statement, {"batch": batch_id}).fetchone()
    return inserted, updated


def _any_existing(conn: psycopg.Connection, target: Target) -> bool:
    """Whether any staged key is in the table already. When none is (a first load, a batch
    of new records), the rows are inserted without ON CONFLICT's speculative insertion,
    which costs nearly as much as the insert itself. Keys repeated within the batch were
    rejected by ``place``."""
    same = sql.SQL(" AND ").join(sql.SQL("t.{} = {}").format(sql.Identifier(k), _value(target, k))
                                 for k in target.key)
    return conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM stage s JOIN {} t ON {})").format(
        sql.Identifier(target.table), same)).fetchone()[0]


UPSERT = """
WITH up AS (
    INSERT INTO {table} AS t ({columns}, batch_id)
    SELECT {values}, %(batch)s
    FROM stage s JOIN placed p USING (row_number, source_file)
    WHERE NOT EXISTS (SELECT 1 FROM stage_reject r
                      WHERE r.row_number = s.row_number AND r.source_file = s.source_file)
    {conflict}
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up
"""

ON_CONFLICT = """
    ON CONFLICT ({keys}) DO UPDATE SET {sets}, batch_id = EXCLUDED.batch_id
    WHERE ({old}) IS DISTINCT FROM ({new})
"""

DERIVED = {
    "cases": {
        "on_time": "CASE WHEN s.closed_at IS NOT NULL AND s.deadline IS NOT NULL "
                   "THEN s.closed_at <= s.deadline END",
        "handling_hours": "extract(epoch FROM s.closed_at - s.reported_at) / 3600.0",
        "located_by": "CASE WHEN s.geom IS NULL THEN 'code' ELSE 'point' END",
    },
}


def _value(target: Target, column: str) -> sql.Composable:
    if column in CODES:
        return sql.SQL("p.{}").format(sql.Identifier(column))
    derived = DERIVED.get(target.kind, {}).get(column)
    if derived:
        return sql.SQL(derived)
    if column == "properties":
        return sql.SQL("COALESCE(s.properties, '{}'::jsonb)")
    if column == "metric":
        return sql.SQL("COALESCE(s.metric, '')")
    return sql.SQL("s.{}").format(sql.Identifier(column))

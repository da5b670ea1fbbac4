"""Set-based SQL for point loads: place every staged row, reject what cannot be placed,
then upsert the rest into the target table.

Rows with a point come with the grid that contains it, found while the chunk was
transformed (``etl.grids``: lowest code on a shared border, so the answer never depends on
scan order), and get that grid's ancestors here. Rows without a point are placed, when the
target allows it, by the mapping's placement rules tried in order: the first whose value
names a loaded unit (by code, or by a name that only one unit of the rule's level bears)
places the row at that unit, whatever its level. IoT events take their device's, grid
workers (the roster) the grid their row names.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from etl import indexes
from etl.mapping import PlaceSpec
from etl.staging import place_columns
from etl.targets import Target

CODES = ("grid_code", "community_code", "street_code", "district_code")

# A phone number once spaces, brackets and hyphens are gone: a mainland mobile (1 and ten
# digits, optionally after +86 or 86), or a landline with its area code (0 and 2-3 digits,
# then 7-8 digits). Bound as ``%(phone)s``.
PHONE = r"^((\+?86)?1[3-9][0-9]{9}|0[1-9][0-9]{1,2}[0-9]{7,8})$"

# The first matching rule names a row's problem: (field, reason expression, condition).
DUPLICATE = ("'duplicate key, first seen at row ' || p.first_row || CASE WHEN p.first_file "
             "<> s.source_file THEN ' of ' || p.first_file ELSE '' END")
COMMON_RULES = [("id", DUPLICATE, "p.occurrence > 1")]
POINT_RULES = [
    ("geometry", "'(' || round(ST_X(s.geom)::numeric, 6) || ', ' || round(ST_Y(s.geom)::numeric, 6)"
                 " || ') is outside the district (in no grid)'",
     "s.geom IS NOT NULL AND p.district_code IS NULL"),
    ("place", "'no coordinates, and no placement rule found a loaded unit: ' || "
              "(SELECT string_agg(quote_literal(v.value) || ' by ' || (%(rules)s::text[])[v.i]"
              " || CASE WHEN (%(by_name)s::bool[])[v.i] THEN ' names no unit, or several'"
              " ELSE ' is not a loaded unit' END, '; ' ORDER BY v.i) FROM {values} "
              "WHERE v.value IS NOT NULL)",
     "s.geom IS NULL AND p.district_code IS NULL AND EXISTS "
     "(SELECT 1 FROM {values} WHERE v.value IS NOT NULL)"),
    ("place", "'no coordinates and no admin code or name'",
     "s.geom IS NULL AND p.district_code IS NULL"),
]
EXTRA_RULES = {
    "cases": [
        ("closed_at", "'closed_at ' || s.closed_at || ' is before reported_at ' || s.reported_at",
         "s.closed_at < s.reported_at"),
        ("deadline", "'deadline ' || s.deadline || ' is before reported_at ' || s.reported_at",
         "s.deadline < s.reported_at"),
    ],
    "roster": [
        ("grid_code", "quote_literal(s.grid_code) || ' is not the code of a loaded grid'",
         "p.district_code IS NULL"),
        ("phone", "quote_literal(s.phone) || ' is not a phone number (an 11-digit mobile "
                  "number, or a landline with its area code: 0755-12345678)'",
         "regexp_replace(s.phone, '[ ()-]', '', 'g') !~ %(phone)s"),
    ],
    "iot-events": [
        ("device_id", "'unknown device ' || quote_literal(s.device_id) || ' (load devices first)'",
         "p.district_code IS NULL"),
        ("status", "'a status event needs a status'",
         "s.event_type = 'status' AND s.status IS NULL"),
        ("value", "'a reading needs a value'", "s.event_type = 'reading' AND s.value IS NULL"),
    ],
}


def place(conn: psycopg.Connection, target: Target, place_rules: list[PlaceSpec],
          checks: tuple[tuple[str, str, str], ...] = ()) -> None:
    """Build ``placed``: each staged row's codes and its first problem (or none).
    ``checks``: rules of the load's own, (field, reason, condition) as SQL over the staged
    row ``s`` and its place ``p``, tried after the kind's."""
    key = sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(k)) for k in target.key)
    values = _rule_values(len(place_rules))
    params = {"rules": [r.describe() for r in place_rules],
              "by_name": [r.by_name for r in place_rules],
              "levels": [r.level for r in place_rules], "phone": PHONE}
    if target.kind in UNIT_CODES:
        source, point_rules = UNIT_CODES[target.kind], []
    else:
        conn.execute(PLACE_KEY.format(values=values, name=_name_key("k.value"),
                                      unit_name=_name_key("u.name")), params)
        source, point_rules = POINT_CODES.format(values=values), POINT_RULES
    conn.execute(sql.SQL(PLACED).format(key=key, codes=sql.SQL(source)))
    conn.execute("ANALYZE placed")  # the joins below are planned on its real size
    rules = COMMON_RULES + point_rules + EXTRA_RULES.get(target.kind, []) + list(checks)
    cases = sql.SQL(" ").join(
        sql.SQL("WHEN {} THEN {}").format(sql.SQL(cond.format(values=values)),
                                          sql.Literal(field))
        for field, _, cond in rules)
    reasons = sql.SQL(" ").join(
        sql.SQL("WHEN {} THEN {}").format(sql.SQL(cond.format(values=values)),
                                          sql.SQL(reason.format(values=values)))
        for _, reason, cond in rules)
    conn.execute(sql.SQL(
        "INSERT INTO stage_reject (row_number, source_file, field, reason, raw) "
        "SELECT * FROM (SELECT s.row_number, s.source_file, CASE {} END AS field, "
        "CASE {} END AS reason, NULL::jsonb AS raw "
        "FROM stage s JOIN placed p USING (row_number, source_file)) r "
        "WHERE r.reason IS NOT NULL"
    ).format(cases, reasons), params)


# Suffixes a name may carry or lack and still match a unit's name (坑梓社区居委会 is the unit
# 坑梓社区): the office of a unit named in place of the unit. Names also match whatever
# their case and surrounding spaces.
NAME_SUFFIXES = ("居委会", "村委会", "办事处", "管委会")


def _name_key(column: str) -> str:
    """SQL comparing names as :data:`NAME_SUFFIXES` describes (the suffixes are constants)."""
    suffixes = "|".join(NAME_SUFFIXES)
    return f"lower(regexp_replace(btrim({column}), '({suffixes})$', ''))"


def _rule_values(rules: int) -> str:
    """A staged row's placement values as rows (value, i): i is the rule's 1-based number."""
    columns = ", ".join(f"s.{c}" for c in place_columns(rules))
    return f"unnest(ARRAY[{columns}]::text[]) WITH ORDINALITY AS v(value, i)"


# Each distinct (rule, value) of the staged rows without a point, looked up once: a code
# rule finds the unit of that code, a name rule the one unit bearing that name (none when
# several do); both limited to the rule's level when it gives one.
PLACE_KEY = """
CREATE TEMP TABLE place_key ON COMMIT DROP AS
SELECT k.i, k.value, CASE WHEN (%(by_name)s::bool[])[k.i] THEN
    (SELECT min(u.code) FROM admin_unit u
     WHERE {unit_name} = {name}
       AND ((%(levels)s::int[])[k.i] IS NULL OR u.level = (%(levels)s::int[])[k.i])
     HAVING count(*) = 1)
  ELSE
    (SELECT u.code FROM admin_unit u WHERE u.code = k.value
       AND ((%(levels)s::int[])[k.i] IS NULL OR u.level = (%(levels)s::int[])[k.i]))
  END AS code
FROM (SELECT DISTINCT v.i, v.value FROM stage s CROSS JOIN LATERAL {values}
      WHERE s.geom IS NULL AND v.value IS NOT NULL) k
"""


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

# A row's unit: its point's grid, else the unit of its first rule that found one.
POINT_CODES = """
SELECT a.grid_code, a.community_code, a.street_code, a.district_code
FROM admin_unit a
WHERE a.code = CASE
    WHEN s.geom IS NOT NULL THEN s.grid_code
    ELSE (SELECT k.code FROM {values} JOIN place_key k USING (i, value)
          WHERE k.code IS NOT NULL ORDER BY v.i LIMIT 1)
END
"""

DEVICE_CODES = """
SELECT d.grid_code, d.community_code, d.street_code, d.district_code
FROM iot_device d WHERE d.id = s.device_id
"""
# Kinds placed by a unit they name rather than by a point: an IoT event by its device, a
# grid worker by the grid's code.
UNIT_CODES = {
    "iot-events": DEVICE_CODES,
    "roster": """
SELECT a.grid_code, a.community_code, a.street_code, a.district_code
FROM admin_unit a WHERE a.code = s.grid_code AND a.level = 4
""",
}


def upsert(conn: psycopg.Connection, target: Target, batch_id: int,
           mapped: set[str] = frozenset()) -> tuple[int, int]:
    """Insert accepted rows, update changed ones; return (inserted, updated). ``mapped``: the
    fields the mapping gives (a derived field given by the source is taken as given)."""
    staged = conn.execute("SELECT count(*) FROM stage").fetchone()[0]
    existing = indexes.row_estimate(conn, target.table)
    with indexes.rebuilt_if_large(conn, target.table, staged, existing):
        return _upsert(conn, target, batch_id, mapped)


def _upsert(conn: psycopg.Connection, target: Target, batch_id: int,
            mapped: set[str]) -> tuple[int, int]:
    geom = [] if target.geometry == "none" else ["geom", "h3"]
    derived = [c for c in DERIVED.get(target.kind, {}) if c not in target.names]
    columns = list(dict.fromkeys(target.names + derived + geom + list(CODES)))
    values = [_value(target, c, mapped) for c in columns]
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


def staged_key(target: Target) -> dict[str, sql.Composable]:
    """Each key column's value as the upsert takes it from the stage (alias ``s``)."""
    return {k: _value(target, k, set()) for k in target.key}


def _any_existing(conn: psycopg.Connection, target: Target) -> bool:
    """Whether any staged key is in the table already. When none is (a first load, a batch
    of new records), the rows are inserted without ON CONFLICT's speculative insertion,
    which costs nearly as much as the insert itself. Keys repeated within the batch were
    rejected by ``place``."""
    same = sql.SQL(" AND ").join(sql.SQL("t.{} = {}").format(sql.Identifier(k),
                                                             _value(target, k, set()))
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

# Fields computed from others. The status decides whether a case is closed: a closed time
# on an open case makes it neither on time nor late and gives it no handling time. A source's
# own on-time (or, mapped through a value map, late) flag is taken as given when the mapping
# names one; only otherwise is it derived from the closing time and the deadline.
DERIVED = {
    "cases": {
        "on_time": "CASE WHEN s.status = 'closed' THEN {} END",
        "handling_hours": "CASE WHEN s.status = 'closed' "
                          "THEN extract(epoch FROM s.closed_at - s.reported_at) / 3600.0 END",
        "located_by": "CASE WHEN s.geom IS NULL THEN 'code' ELSE 'point' END",
    },
}
# What a derived field is when the source gives none (else: the source's value).
UNMAPPED = {"on_time": "s.closed_at <= s.deadline"}


def _value(target: Target, column: str, mapped: set[str]) -> sql.Composable:
    if column in CODES and column not in target.names:  # as placed
        return sql.SQL("p.{}").format(sql.Identifier(column))
    derived = DERIVED.get(target.kind, {}).get(column)
    if derived:
        given = f"s.{column}" if column in mapped else UNMAPPED.get(column)
        return sql.SQL(derived.format(given) if given else derived)
    if column == "properties":
        return sql.SQL("COALESCE(s.properties, '{}'::jsonb)")
    if column == "metric":
        return sql.SQL("COALESCE(s.metric, '')")
    return sql.SQL("s.{}").format(sql.Identifier(column))

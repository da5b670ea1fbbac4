"""Set-based SQL for admin loads, one level at a time: parents, ancestors, upsert, and a
report of the hierarchy's flaws (gaps, overlaps, children sticking out of their parent).
"""

from __future__ import annotations

import psycopg

from etl.errors import LoadError
from etl.places import DUPLICATE

# A child belongs to the parent holding most of it; under this share it fits no parent.
MIN_PARENT_SHARE = 0.5
# Flaws smaller than this (m²) are floating-point dust, not worth a line in the report.
MIN_FLAW_M2 = 1.0
# A district smaller than this (m²) is coordinates read in the wrong CRS (degrees read as
# metres land within a metre of 0°, 0°), not a district.
MIN_DISTRICT_M2 = 1e6

PLACED = """
CREATE TEMP TABLE placed ON COMMIT DROP AS
SELECT s.row_number, s.source_file,
       first_value(s.row_number) OVER w AS first_row,
       first_value(s.source_file) OVER w AS first_file,
       row_number() OVER w AS occurrence,
       par.code AS parent, par.share, par.district_code, par.street_code, par.community_code,
       ex.level AS existing_level
FROM stage s
LEFT JOIN admin_unit ex ON ex.code = s.code
LEFT JOIN LATERAL (
    -- A parent named by code is still checked against the shapes: the share of the unit
    -- inside it must pass as for a parent found by overlap.
    SELECT p.code, ST_Area(ST_Intersection(p.geom, s.geom)) / NULLIF(ST_Area(s.geom), 0)
                   AS share,
           p.district_code, p.street_code, p.community_code
    FROM admin_unit p
    WHERE s.parent_code IS NOT NULL AND p.code = s.parent_code AND p.level = %(level)s - 1
    UNION ALL
    SELECT * FROM (
        SELECT p.code,
               ST_Area(ST_Intersection(p.geom, s.geom)) / NULLIF(ST_Area(s.geom), 0),
               p.district_code, p.street_code, p.community_code
        FROM admin_unit p
        WHERE s.parent_code IS NULL AND p.level = %(level)s - 1 AND ST_Intersects(p.geom, s.geom)
        ORDER BY 2 DESC, 1 LIMIT 1) overlap
) par ON %(level)s > 1
WINDOW w AS (PARTITION BY s.code ORDER BY s.file_no, s.row_number)
"""

RULES = [
    ("code", DUPLICATE, "p.occurrence > 1"),
    ("geometry", "'its area is only ' || round(ST_Area(s.geom::geography)::numeric, 1) "
                 "|| ' m², too small for a district: coordinates in the wrong CRS?'",
     "%(level)s = 1 AND ST_Area(s.geom::geography) < " + str(MIN_DISTRICT_M2)),
    ("code", "'code ' || s.code || ' is already a level-' || p.existing_level || ' unit'",
     "p.existing_level IS NOT NULL AND p.existing_level <> %(level)s"),
    ("parent_code", "'parent ' || quote_literal(s.parent_code) || ' is not a loaded unit of "
                    "level ' || (%(level)s - 1)",
     "%(level)s > 1 AND s.parent_code IS NOT NULL AND p.parent IS NULL"),
    ("geometry", "'fits no parent: it lies outside every level-' || (%(level)s - 1) || ' unit'",
     "%(level)s > 1 AND p.parent IS NULL"),
    ("geometry", "'fits no parent: at most ' || round(100 * coalesce(p.share, 0)) "
                 "|| '%% of it lies in ' || p.parent || ' (coordinates in the wrong CRS?)'",
     "%(level)s > 1 AND coalesce(p.share, 0) < " + str(MIN_PARENT_SHARE)),
]

UPSERT = """
WITH up AS (
    INSERT INTO admin_unit AS t (code, name, level, parent_code, district_code, street_code,
                                 community_code, grid_code, geom, area_km2, properties, batch_id)
    SELECT s.code, s.name, %(level)s, p.parent,
           CASE WHEN %(level)s = 1 THEN s.code ELSE p.district_code END,
           CASE WHEN %(level)s = 2 THEN s.code WHEN %(level)s > 2 THEN p.street_code END,
           CASE WHEN %(level)s = 3 THEN s.code WHEN %(level)s > 3 THEN p.community_code END,
           CASE WHEN %(level)s = 4 THEN s.code END,
           ST_Multi(s.geom), ST_Area(s.geom::geography) / 1e6,
           COALESCE(s.properties, '{}'::jsonb), %(batch)s
    FROM stage s JOIN placed p USING (row_number, source_file)
    WHERE NOT EXISTS (SELECT 1 FROM stage_reject r
                      WHERE r.row_number = s.row_number AND r.source_file = s.source_file)
    ON CONFLICT (code) DO UPDATE SET
        name = EXCLUDED.name, parent_code = EXCLUDED.parent_code,
        district_code = EXCLUDED.district_code, street_code = EXCLUDED.street_code,
        community_code = EXCLUDED.community_code, grid_code = EXCLUDED.grid_code,
        geom = EXCLUDED.geom, area_km2 = EXCLUDED.area_km2, properties = EXCLUDED.properties,
        batch_id = EXCLUDED.batch_id, updated_at = now()
    WHERE (t.name, t.parent_code, t.properties, t.geom)
          IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.parent_code, EXCLUDED.properties, EXCLUDED.geom)
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up
"""

STICKING_OUT = """
SELECT c.code, c.parent_code AS parent,
       round(ST_Area(ST_Difference(c.geom, p.geom)::geography)::numeric, 1) AS area_m2
FROM admin_unit c JOIN admin_unit p ON p.code = c.parent_code
WHERE c.batch_id = %(batch)s AND NOT ST_CoveredBy(c.geom, p.geom)
  AND ST_Area(ST_Difference(c.geom, p.geom)::geography) > %(dust)s
ORDER BY area_m2 DESC
"""

OVERLAPS = """
SELECT a.code AS a, b.code AS b,
       round(ST_Area(ST_Intersection(a.geom, b.geom)::geography)::numeric, 1) AS area_m2
FROM admin_unit a JOIN admin_unit b
  ON a.level = b.level AND a.code < b.code AND a.geom && b.geom
 AND a.parent_code IS NOT DISTINCT FROM b.parent_code
WHERE a.level = %(level)s AND (a.batch_id = %(batch)s OR b.batch_id = %(batch)s)
  AND ST_Relate(a.geom, b.geom, '2********')
  AND ST_Area(ST_Intersection(a.geom, b.geom)::geography) > %(dust)s
ORDER BY area_m2 DESC
"""

GAPS = """
SELECT p.code AS parent,
       round(ST_Area(ST_Difference(p.geom, ST_Union(c.geom))::geography)::numeric, 1) AS area_m2
FROM admin_unit p JOIN admin_unit c ON c.parent_code = p.code
WHERE p.code IN (SELECT parent_code FROM admin_unit WHERE batch_id = %(batch)s)
GROUP BY p.code, p.geom
HAVING ST_Area(ST_Difference(p.geom, ST_Union(c.geom))::geography) > %(dust)s
ORDER BY area_m2 DESC
"""

REFRESH_PIECES = """
DELETE FROM grid_piece;
INSERT INTO grid_piece (grid_code, geom)
SELECT code, ST_Subdivide(geom, 64) FROM admin_unit WHERE level = 4;
ANALYZE grid_piece;
DELETE FROM grid_neighbour;
INSERT INTO grid_neighbour
SELECT a.code, b.code FROM admin_unit a JOIN admin_unit b
  ON b.level = 4 AND a.code <> b.code AND a.geom && b.geom AND ST_Intersects(a.geom, b.geom)
WHERE a.level = 4;
"""


def place(conn: psycopg.Connection, level: int) -> None:
    """Find each staged unit's parent and reject units that cannot be placed."""
    if level > 1 and not conn.execute(
            "SELECT 1 FROM admin_unit WHERE level = %s LIMIT 1", (level - 1,)).fetchone():
        raise LoadError(f"no level-{level - 1} units are loaded: load the level above first")
    conn.execute(PLACED, {"level": level})
    fields = " ".join(f"WHEN {cond} THEN '{field}'" for field, _, cond in RULES)
    reasons = " ".join(f"WHEN {cond} THEN {reason}" for _, reason, cond in RULES)
    conn.execute(
        "INSERT INTO stage_reject (row_number, source_file, field, reason, raw) "
        f"SELECT * FROM (SELECT s.row_number, s.source_file, CASE {fields} END AS field, "
        f"CASE {reasons} END AS reason, NULL::jsonb AS raw "
        "FROM stage s JOIN placed p USING (row_number, source_file)) r "
        "WHERE r.reason IS NOT NULL",
        {"level": level},
    )


def upsert(conn: psycopg.Connection, level: int, batch_id: int) -> tuple[int, int]:
    """Write the placed units with their ancestors' codes; return (inserted, updated)."""
    inserted, updated = conn.execute(UPSERT, {"level": level, "batch": batch_id}).fetchone()
    conn.execute(REFRESH_PIECES)
    return inserted, updated


def flaws(conn: psycopg.Connection, level: int, batch_id: int) -> dict:
    """Gaps, sibling overlaps and children sticking out, with their areas in m²."""
    params = {"level": level, "batch": batch_id, "dust": MIN_FLAW_M2}

    def rows(query: str) -> list[dict]:
        cur = conn.execute(query, params)
        names = [d.name for d in cur.description]
        return [{k: (float(v) if k == "area_m2" else v) for k, v in zip(names, r, strict=True)}
                for r in cur.fetchall()]

    return {"outside_parent": rows(STICKING_OUT), "overlaps": rows(OVERLAPS),
            "gaps": rows(GAPS)}

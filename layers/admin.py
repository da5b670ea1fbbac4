"""Admin units as GeoJSON for the map: simplified in the database, never raw polygons."""

from __future__ import annotations

import json

from sqlalchemy import Connection, text

# Degrees: about 5 m at the district's latitude; enough for a screen, a fraction of the bytes.
DEFAULT_TOLERANCE = 0.00005

UNITS_SQL = text("""
    SELECT code, name, level, parent_code, area_km2,
           ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, :tolerance), 6) AS geometry,
           ST_XMin(geom) AS minx, ST_YMin(geom) AS miny, ST_XMax(geom) AS maxx,
           ST_YMax(geom) AS maxy
    FROM admin_unit
    WHERE level = :level AND (CAST(:parent AS text) IS NULL OR parent_code = :parent)
    ORDER BY code
""")
UNIT_SQL = text(str(UNITS_SQL).replace(
    "WHERE level = :level AND (CAST(:parent AS text) IS NULL OR parent_code = :parent)",
    "WHERE code = :code"))


def units(conn: Connection, level: int = 1, parent: str | None = None,
          tolerance: float = DEFAULT_TOLERANCE, code: str | None = None) -> dict:
    """A FeatureCollection of the units at ``level`` (children of ``parent`` when given; the
    one unit ``code`` when given), with a ``bbox`` covering them all; empty when none."""
    query = UNIT_SQL if code else UNITS_SQL
    rows = conn.execute(query, {"level": level, "parent": parent, "tolerance": tolerance,
                                "code": code}).mappings().all()
    features = [_feature(row) for row in rows]
    collection: dict = {"type": "FeatureCollection", "features": features}
    if rows:
        collection["bbox"] = [
            min(r["minx"] for r in rows), min(r["miny"] for r in rows),
            max(r["maxx"] for r in rows), max(r["maxy"] for r in rows),
        ]
    return collection


def _feature(row) -> dict:
    props = {k: row[k] for k in ("code", "name", "level", "parent_code", "area_km2")}
    return {"type": "Feature", "id": row["code"], "properties": props,
            "geometry": json.loads(row["geometry"])}


def loaded_levels(conn: Connection) -> dict[int, int]:
    """How many units each level holds: ``{}`` means nothing is loaded yet."""
    rows = conn.execute(text("SELECT level, count(*) FROM admin_unit GROUP BY level"))
    return {int(level): int(n) for level, n in rows}

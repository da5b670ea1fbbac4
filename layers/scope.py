"""The admin unit a query is cut by: its level, the code column that selects its subtree,
its extent and its breadcrumb (district › street › community › grid)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from layers.errors import UnknownScope
from onemap.schema import LEVEL_COLUMN

SCOPE_SQL = text("""
    SELECT code, name, level, parent_code,
           ARRAY[ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom)] AS bbox,
           area_km2
    FROM admin_unit WHERE code = :code
""")
ROOT_SQL = text("""
    SELECT count(*) AS n, min(code) AS code,
           ARRAY[ST_XMin(ST_Extent(geom)), ST_YMin(ST_Extent(geom)),
                 ST_XMax(ST_Extent(geom)), ST_YMax(ST_Extent(geom))] AS bbox,
           sum(area_km2) AS area_km2
    FROM admin_unit WHERE level = 1
""")
CRUMBS_SQL = text("""
    WITH RECURSIVE up AS (
        SELECT code, name, level, parent_code FROM admin_unit WHERE code = :code
        UNION ALL
        SELECT a.code, a.name, a.level, a.parent_code FROM admin_unit a
        JOIN up ON a.code = up.parent_code)
    SELECT code, name, level FROM up ORDER BY level
""")


@dataclass(frozen=True)
class Scope:
    code: str | None          # None: every district loaded (the root)
    name: str
    level: int                # 0 for the root
    bbox: tuple[float, float, float, float] | None
    area_km2: float
    breadcrumb: tuple[tuple[str, str, int], ...]

    @property
    def column(self) -> str | None:
        """The code column of point tables that selects this scope's subtree."""
        return LEVEL_COLUMN.get(self.level)

    @property
    def child_level(self) -> int | None:
        return self.level + 1 if self.level < 4 else None


def resolve_scope(conn: Connection, code: str | None) -> Scope:
    """The scope named by ``code``; without one, the district (or all districts)."""
    if code is None:
        return _root(conn)
    row = conn.execute(SCOPE_SQL, {"code": code}).mappings().first()
    if row is None:
        raise UnknownScope(f"scope '{code}' is not a loaded admin unit")
    crumbs = tuple((r.code, r.name, r.level) for r in conn.execute(CRUMBS_SQL, {"code": code}))
    return Scope(row["code"], row["name"], row["level"], _box(row["bbox"]),
                 float(row["area_km2"]), crumbs)


def _root(conn: Connection) -> Scope:
    row = conn.execute(ROOT_SQL).mappings().first()
    if row["n"] == 1:
        return resolve_scope(conn, row["code"])
    return Scope(None, "", 0, _box(row["bbox"]), float(row["area_km2"] or 0), ())


def _box(values) -> tuple[float, float, float, float] | None:
    return None if values is None or values[0] is None else tuple(float(v) for v in values)

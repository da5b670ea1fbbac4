"""Mapbox vector tiles from PostGIS (ST_AsMVT), with the same filters as every query.

Polygons are simplified to the tile's pixel size. A point layer's tile carries at most
``MAX_POINTS`` of the points in it (tipg's default cap too), so a tile costs about the same
at any zoom and in a city of any size. They are the first found in table order: rows are
appended as they are loaded, so table order has nothing to do with place, and the points
kept are spread over the whole tile. Below ``POINT_DETAIL_ZOOM`` they are binned into
16-px cells, each a point with the count ``n`` of those points in it: exact while the tile
holds fewer than ``MAX_POINTS`` points, a relative density beyond (exact counts per area
come from the hex bins and the KPIs).
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, text

from layers.catalog import LayerSpec
from layers.errors import BadParameter
from layers.features import where_for
from layers.filters import Filters
from layers.scope import Scope

EXTENT = 4096
BUFFER = 64
POINT_DETAIL_ZOOM = 13
MAX_POINTS = 10_000
BIN_PIXELS = 16
TILE_PROPERTIES = {
    "admin_unit": ("code", "name", "level"),
    "facility": ("id", "kind", "name"),
    "iot_device": ("id", "kind", "status"),
    "case_event": ("id", "category_1", "status", "channel"),
}
# A point's pixel in tile z/x/y, unrounded: its Web Mercator coordinates (EPSG:3857 is
# spherical, so plain arithmetic on lon/lat) scaled to the tile. It is what
# ST_AsMVTGeom(ST_Transform(geom, 3857), …) computes for a point inside the tile, without
# a PROJ call and two geometry copies per point: about a third of a point's cost in a tile.
# Point tables are all EPSG:4326.
TILE_X = "((ST_X(t.geom) + 180) / 360 * :tiles - :x) * :extent"
TILE_Y = "((1 - asinh(tan(radians(ST_Y(t.geom)))) / pi()) / 2 * :tiles - :y) * :extent"


def check_tile(z: int, x: int, y: int) -> None:
    if not 0 <= z <= 22:
        raise BadParameter("z", z, "zoom must be 0–22")
    if not (0 <= x < 2 ** z and 0 <= y < 2 ** z):
        raise BadParameter("x/y", f"{x}/{y}", f"outside the tile grid at zoom {z}")


def tile(conn: Connection, layer: LayerSpec, scope: Scope, filters: Filters,
         z: int, x: int, y: int) -> bytes:
    """One MVT tile of ``layer``: the layer name inside the tile is the layer id."""
    check_tile(z, x, y)
    where = where_for(layer, scope, filters)
    where.add("t.geom && ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326)")
    props = ", ".join(layer.column(c) for c in TILE_PROPERTIES[layer.table])
    if layer.is_admin:
        query = _polygons(props, where.sql)
    elif z < POINT_DETAIL_ZOOM:
        query = _binned(where.sql).replace("{table}", layer.table)
    else:
        query = _points(props, where.sql).replace("{table}", layer.table)
    params = {**where.params, "z": z, "x": x, "y": y, "tiles": float(2 ** z), "name": layer.id,
              "extent": EXTENT, "buffer": BUFFER, "cap": MAX_POINTS, "cell": BIN_PIXELS}
    data = conn.execute(text(query), params).scalar_one()
    return bytes(data or b"")


def _polygons(props: str, where: str) -> str:
    # Simplify in Web Mercator to a quarter pixel of this zoom: invisible, far fewer vertices.
    return f"""
    WITH env AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e),
    mvt AS (
        SELECT {props}, ST_AsMVTGeom(
            ST_Simplify(ST_Transform(t.geom, 3857),
                        (ST_XMax(env.e) - ST_XMin(env.e)) / :extent / 4),
            env.e, :extent, :buffer, true) AS geom
        FROM admin_unit t, env WHERE {where})
    SELECT ST_AsMVT(mvt, :name, :extent, 'geom') FROM mvt WHERE geom IS NOT NULL"""


def _points(props: str, where: str) -> str:
    # Only points inside the tile are read (the WHERE), so none needs clipping.
    return f"""
    WITH mvt AS (
        SELECT {props}, ST_MakePoint(round({TILE_X}), round({TILE_Y})) AS geom
        FROM {{table}} t WHERE {where} LIMIT :cap)
    SELECT ST_AsMVT(mvt, :name, :extent, 'geom') FROM mvt"""


def _binned(where: str) -> str:
    return f"""
    WITH cells AS (
        SELECT round({TILE_X} / :cell) AS i, round({TILE_Y} / :cell) AS j
        FROM {{table}} t WHERE {where} LIMIT :cap),
    mvt AS (SELECT count(*) AS n, ST_MakePoint(i * :cell, j * :cell) AS geom
            FROM cells GROUP BY i, j)
    SELECT ST_AsMVT(mvt, :name, :extent, 'geom') FROM mvt"""


def etag(layer_id: str, z: int, x: int, y: int, query_string: str, version: str) -> str:
    """A validator that changes when the data (latest batch) or the request changes."""
    raw = f"{layer_id}/{z}/{x}/{y}?{query_string}#{version}".encode()
    return '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'


def data_version(conn: Connection) -> str:
    return str(conn.execute(text(
        "SELECT coalesce(max(id), 0) FROM load_batch WHERE status = 'committed'")).scalar_one())

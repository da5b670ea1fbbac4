"""Mapbox vector tiles from PostGIS (ST_AsMVT), with the same filters as every query.

Each layer's spec writes its tile's SQL (:meth:`layers.catalog.LayerSpec.tile_query`); this
module fixes the tile grid and its sizes and binds them.

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

from layers import changes
from layers.catalog import LayerSpec
from layers.errors import BadParameter
from layers.filters import Filters
from layers.scope import Scope

EXTENT = 4096
BUFFER = 64
POINT_DETAIL_ZOOM = 13
MAX_POINTS = 10_000
BIN_PIXELS = 16


def check_tile(z: int, x: int, y: int) -> None:
    if not 0 <= z <= 22:
        raise BadParameter("z", z, "zoom must be 0–22")
    if not (0 <= x < 2 ** z and 0 <= y < 2 ** z):
        raise BadParameter("x/y", f"{x}/{y}", f"outside the tile grid at zoom {z}")


def tile(conn: Connection, layer: LayerSpec, scope: Scope, filters: Filters,
         z: int, x: int, y: int) -> bytes:
    """One MVT tile of ``layer``: the layer name inside the tile is the layer id."""
    check_tile(z, x, y)
    query = layer.tile_query(scope, filters, binned=z < POINT_DETAIL_ZOOM)
    params = {**query.params, "z": z, "x": x, "y": y, "tiles": float(2 ** z), "name": layer.id,
              "extent": EXTENT, "buffer": BUFFER, "cap": MAX_POINTS, "cell": BIN_PIXELS}
    data = conn.execute(text(query.sql), params).scalar_one()
    return bytes(data or b"")


def etag(layer_id: str, z: int, x: int, y: int, query_string: str, version: str) -> str:
    """A validator that changes when the data (its version) or the request changes."""
    raw = f"{layer_id}/{z}/{x}/{y}?{query_string}#{version}".encode()
    return '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'


def data_version(conn: Connection) -> str:
    """The data's version (``layers.changes``): a tile's validator changes with a load, a
    case written and a device's status changed."""
    return changes.version(conn)

"""Features of a layer as GeoJSON: scoped, filtered, paged, with every row's admin names.

Queries are bounded (``limit`` ≤ ``MAX_LIMIT``) and run in the database; the same query
streams unbounded for exports (``iter_rows``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import Connection, text

from layers.cases import raw_where
from layers.catalog import LayerSpec
from layers.errors import NotFound
from layers.filters import Filters, Where
from layers.masking import personal_columns
from layers.scope import Scope
from layers.times import iso
from onemap.schema import LEVEL_COLUMN

MAX_LIMIT = 10_000
NAMES = {1: "district", 2: "street", 3: "community", 4: "grid"}
SIMPLIFY_DEG = 0.00002  # ~2 m: polygons for reading, not surveying


def where_for(layer: LayerSpec, scope: Scope, filters: Filters) -> Where:
    """The layer's filters; only those its spec declares apply."""
    if layer.table == "case_event":
        return raw_where(filters, scope, alias="t")
    where = Where()
    if layer.is_admin:
        where.add("t.level = :level", level=layer.level)
        if scope.level:
            where.add(f"t.{LEVEL_COLUMN[scope.level]} = :scope", scope=scope.code)
    elif scope.column:
        where.add(f"t.{scope.column} = :scope", scope=scope.code)
    if "kind" in layer.filters and filters.kinds:
        where.add("t.kind = ANY(:kinds)", kinds=list(filters.kinds))
    if "device_status" in layer.filters and filters.device_statuses:
        where.add(f"{layer.value('status')} = ANY(:device_statuses)",
                  device_statuses=list(filters.device_statuses))
    if "status" in layer.derived:  # how long a device may be silent and still be online
        where.params["offline_after"] = filters.device_offline_after
    if filters.bbox:
        where.add("t.geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)",
                  **dict(zip(("minx", "miny", "maxx", "maxy"), filters.bbox, strict=True)))
    return where


def select_sql(layer: LayerSpec, where: Where, personal: str | None = None,
               geometry: str = "geojson") -> str:
    """SELECT of the layer's columns, its personal fields when ``personal`` is 'clear' or
    'masked', its admin codes and names, and its geometry."""
    cols = [layer.column(c) for c in layer.columns]
    cols += personal_columns(layer.personal, personal)
    joins = []
    for level, name in NAMES.items():
        code = LEVEL_COLUMN[level]
        if f"t.{code}" not in cols:
            cols.append(f"t.{code}")
        cols.append(f"{name[0]}u.name AS {name}_name")
        joins.append(f"LEFT JOIN admin_unit {name[0]}u ON {name[0]}u.code = t.{code}")
    geom = "ST_SimplifyPreserveTopology(t.geom, :tol)" if layer.is_admin else "t.geom"
    if geometry == "geojson":
        cols.append(f"ST_AsGeoJSON({geom}, 7) AS geometry")
    else:
        cols.append(f"ST_AsBinary({geom}) AS geometry")
    return (f"SELECT {', '.join(cols)} FROM {layer.table} t {' '.join(joins)} "
            f"WHERE {where.sql} ORDER BY t.{layer.key}")


def items(conn: Connection, layer: LayerSpec, scope: Scope, filters: Filters,
          limit: int = 100, offset: int = 0, personal: str | None = None, *,
          zone: str) -> dict:
    """One page of features as a GeoJSON FeatureCollection with OGC counts; times in the
    local ``zone``."""
    where = where_for(layer, scope, filters)
    params = {**where.params, "tol": SIMPLIFY_DEG}
    matched = conn.execute(text(f"SELECT count(*) FROM {layer.table} t WHERE {where.sql}"),
                           params).scalar_one()
    query = select_sql(layer, where, personal) + " LIMIT :limit OFFSET :offset"
    result = conn.execute(text(query), {**params, "limit": limit, "offset": offset})
    # Plain tuples zipped with the column names once: a RowMapping per row rebuilds its keys,
    # a third of the time of a 5,000-point layer.
    keys = list(result.keys())
    features = [to_feature(layer, dict(zip(keys, row, strict=True)), zone) for row in result]
    return {"type": "FeatureCollection", "features": features,
            "numberMatched": int(matched), "numberReturned": len(features)}


def map_points(conn: Connection, layer: LayerSpec, scope: Scope, filters: Filters,
               limit: int) -> dict:
    """Up to ``limit`` points of a point layer for the map: each with its id, the layer's
    ``hover`` properties and its coordinates only (no admin names), several times cheaper
    than :func:`items` for the thousands of points a map layer holds. The rows the layer
    ``keep``s come first and are all drawn, over ``limit`` if need be. ``numberMatched``
    counts every matching row, ``numberUnlocated`` those with no point, so that the map can
    say what it leaves out."""
    where = where_for(layer, scope, filters)
    keep = layer.keep or "FALSE"
    matched, located, kept = conn.execute(text(
        f"SELECT count(*), count(t.geom), count(*) FILTER (WHERE {keep} "
        f"AND t.geom IS NOT NULL) FROM {layer.table} t WHERE {where.sql}"),
        where.params).one()
    hover = ", ".join(layer.column(c) for c in layer.hover)
    first = f"({layer.keep}) DESC, " if layer.keep else ""
    query = (f"SELECT t.{layer.key}, {hover}, ST_X(t.geom), ST_Y(t.geom) FROM {layer.table} t "
             f"WHERE {where.sql} AND t.geom IS NOT NULL "
             f"ORDER BY {first}t.{layer.key} LIMIT :limit")
    rows = conn.execute(text(query), {**where.params, "limit": max(limit, kept)}).all()
    features = [{"type": "Feature", "id": row[0],
                 "properties": dict(zip(layer.hover, row[1:-2], strict=True)),
                 "geometry": {"type": "Point", "coordinates": [row[-2], row[-1]]}}
                for row in rows]
    return {"type": "FeatureCollection", "features": features,
            "numberReturned": len(features), "numberMatched": int(matched),
            "numberUnlocated": int(matched - located)}


def one(conn: Connection, layer: LayerSpec, scope: Scope, feature_id: str,
        personal: str | None = None, *, zone: str) -> dict:
    """The feature ``feature_id`` of ``layer`` within ``scope``; times in the local
    ``zone``."""
    if "\x00" in feature_id:  # no id holds one, and PostgreSQL text cannot take it
        raise NotFound(f"no feature {feature_id!r} in layer '{layer.id}'")
    where = where_for(layer, scope, Filters()).add(f"t.{layer.key} = :fid", fid=feature_id)
    row = conn.execute(text(select_sql(layer, where, personal)),
                       {**where.params, "tol": SIMPLIFY_DEG}).mappings().first()
    if row is None:
        raise NotFound(f"no feature '{feature_id}' in layer '{layer.id}'")
    return to_feature(layer, row, zone)


def to_feature(layer: LayerSpec, row, zone: str) -> dict:
    props = {k: _jsonable(v, zone) for k, v in row.items() if k != "geometry"}
    geometry = json.loads(row["geometry"]) if row["geometry"] else None
    return {"type": "Feature", "id": props.get(layer.key), "properties": props,
            "geometry": geometry}


def iter_rows(conn: Connection, layer: LayerSpec, scope: Scope, filters: Filters,
              personal: str | None = None, batch: int = 20_000) -> Iterator[list[dict]]:
    """Every matching row, in batches, through a server-side cursor (for exports)."""
    where = where_for(layer, scope, filters)
    query = text(select_sql(layer, where, personal, geometry="wkb"))
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(
        query, {**where.params, "tol": SIMPLIFY_DEG}).mappings()
    for part in result.partitions(batch):
        yield [dict(r) for r in part]


def _jsonable(value, zone: str):
    if isinstance(value, datetime):
        return iso(value, zone)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)

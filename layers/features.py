"""Features of a layer as GeoJSON: scoped, filtered, paged, with every row's admin names.

Queries are bounded (``limit`` ≤ ``MAX_LIMIT``) and run in the database; the same query
streams unbounded for exports (``iter_rows``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import Connection, text

from layers.catalog import LayerSpec, PointLayer
from layers.errors import NotFound
from layers.filters import Filters
from layers.scope import Scope
from layers.times import iso

MAX_LIMIT = 10_000


def items(conn: Connection, layer: LayerSpec, scope: Scope, filters: Filters,
          limit: int = 100, offset: int = 0, personal: str | None = None, *,
          zone: str) -> dict:
    """One page of features as a GeoJSON FeatureCollection with OGC counts; times in the
    local ``zone``."""
    count = layer.count_query(scope, filters)
    matched = conn.execute(text(count.sql), count.params).scalar_one()
    page = layer.features_query(scope, filters, personal, limit=limit, offset=offset)
    result = conn.execute(text(page.sql), page.params)
    # Plain tuples zipped with the column names once: a RowMapping per row rebuilds its keys,
    # a third of the time of a 5,000-point layer.
    keys = list(result.keys())
    features = [to_feature(layer, dict(zip(keys, row, strict=True)), zone) for row in result]
    return {"type": "FeatureCollection", "features": features,
            "numberMatched": int(matched), "numberReturned": len(features)}


def map_points(conn: Connection, layer: PointLayer, scope: Scope, filters: Filters,
               limit: int) -> dict:
    """Up to ``limit`` points of a point layer for the map: each with its id, the layer's
    ``hover`` properties and its coordinates only (no admin names), several times cheaper
    than :func:`items` for the thousands of points a map layer holds. The rows the layer
    ``keep``s come first and are all drawn, over ``limit`` if need be. ``numberMatched``
    counts every matching row, ``numberUnlocated`` those with no point, so that the map can
    say what it leaves out."""
    count = layer.map_count_query(scope, filters)
    matched, located, kept = conn.execute(text(count.sql), count.params).one()
    query = layer.map_query(scope, filters)
    rows = conn.execute(text(query.sql), {**query.params, "limit": max(limit, kept)}).all()
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
    query = layer.feature_query(scope, feature_id, personal)
    row = conn.execute(text(query.sql), query.params).mappings().first()
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
    query = layer.export_query(scope, filters, personal)
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(
        text(query.sql), query.params).mappings()
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

"""The OpenAPI 3.0 description of the read API (served at ``/openapi.json``)."""

from __future__ import annotations

from layers.catalog import Catalog
from layers.filters import CASE_STATUSES, DEVICE_STATUSES, RANGES


def _param(name: str, description: str, schema: dict | None = None, where: str = "query",
           required: bool = False) -> dict:
    return {"name": name, "in": where, "required": required or where == "path",
            "description": description, "schema": schema or {"type": "string"}}


FILTERS = [
    _param("scope", "admin code: the unit and its whole subtree"),
    _param("range", "time range preset", {"type": "string", "enum": list(RANGES)}),
    _param("start", "ISO date or date-time (inclusive)"),
    _param("end", "ISO date or date-time (exclusive; a date includes that day)"),
    _param("datetime", "OGC interval: instant, start/end, ../end or start/.."),
    _param("category", "comma-separated categories of any level"),
    _param("channel", "comma-separated channels"),
    _param("status", "comma-separated case statuses",
           {"type": "string", "pattern": "^(" + "|".join(CASE_STATUSES) + ")(,(" +
            "|".join(CASE_STATUSES) + "))*$"}),
    _param("kind", "comma-separated facility or device kinds"),
    _param("device_status", "comma-separated device statuses",
           {"type": "string", "pattern": "^(" + "|".join(DEVICE_STATUSES) + ")(,(" +
            "|".join(DEVICE_STATUSES) + "))*$"}),
    _param("bbox", "minx,miny,maxx,maxy in WGS84"),
]
ERRORS = {
    "400": {"description": "a parameter is malformed; the message names it",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
    "404": {"description": "unknown layer, scope or feature",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
    "503": {"description": "database unavailable",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
}


def _get(summary: str, params: list[dict], media: str = "application/json") -> dict:
    return {"get": {"summary": summary, "parameters": params, "responses": {
        "200": {"description": "OK", "content": {media: {"schema": {"type": "object"}}}},
        **ERRORS}}}


def openapi_document(base: str, catalog: Catalog) -> dict:
    layer = _param("layer_id", "layer id", {"type": "string",
                                              "enum": [spec.id for spec in catalog]}, "path")
    tile = [layer, *(_param(n, n, {"type": "integer", "minimum": 0}, "path")
                     for n in ("z", "x", "y"))]
    paging = [_param("limit", "page size", {"type": "integer", "minimum": 1, "maximum": 10000}),
              _param("offset", "first row", {"type": "integer", "minimum": 0})]
    zoom = _param("zoom", "map zoom", {"type": "number", "minimum": 0, "maximum": 22})
    unit = _param("unit", "grid or hex", {"type": "string", "enum": ["grid", "hex"]})
    return {
        "openapi": "3.0.3",
        "info": {"title": "onemap 一张图", "version": "1.0",
                 "description": "OGC API – Features and the dashboard's data"},
        "servers": [{"url": base}],
        "paths": {
            "/ogc/": _get("landing page", []),
            "/conformance": _get("conformance classes", []),
            "/collections": _get("the layers", []),
            "/collections/{layer_id}": _get("one layer", [layer]),
            "/collections/{layer_id}/items": _get("features of a layer",
                                                  [layer, *paging, *FILTERS],
                                                  "application/geo+json"),
            "/collections/{layer_id}/items/{feature_id}": _get(
                "one feature", [layer, _param("feature_id", "feature id", where="path")],
                "application/geo+json"),
            "/api/kpi": _get("KPIs of a scope and of its children", FILTERS),
            "/api/hotspots": _get("Gi* hotspots", [*FILTERS, unit, zoom],
                                  "application/geo+json"),
            "/api/hexbins": _get("H3 hex bins", [*FILTERS, zoom], "application/geo+json"),
            "/tiles/{layer_id}/{z}/{x}/{y}.pbf": _get("a vector tile", [*tile, *FILTERS],
                                                     "application/vnd.mapbox-vector-tile"),
            "/export/{layer_id}.{fmt}": _get(
                "the layer as a file", [layer, _param("fmt", "file format", {
                    "type": "string", "enum": ["geojson", "gpkg", "shp", "csv", "xlsx", "html"]},
                    "path"), _param("crs", "output CRS", {"type": "string", "enum": [
                        "wgs84", "cgcs2000", "gcj02", "bd09"]}), *FILTERS],
                "application/octet-stream"),
        },
        "components": {"schemas": {"Error": {
            "type": "object", "properties": {"error": {"type": "string"}},
            "required": ["error"]}}},
    }

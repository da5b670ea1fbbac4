"""The layer catalog: one spec per map layer, looked up by id, each writing its own SQL.

A spec knows its table and columns and builds every statement that reads them, as tipg's
``Collection`` does: the WHERE of a scope and filters, the features query (select list with
every row's admin codes and names, geometry, order, paging), its count, the export's rows,
the map's points and the vector tile. ``features``, ``tiles``, ``exports`` and the other
readers run what the spec gives them and never ask which table it is.

Three kinds: :class:`AdminLayer` (the polygons of one admin level), :class:`PointLayer` (a
table with a point ``geom``, the four admin code columns and an ``id``) and
:class:`CaseLayer` (a point layer filtered as cases are everywhere else). Adding a point
layer (say remote-sensing change points) is a :class:`PointLayer` here plus a load mapping.

Identifiers come only from the specs and are quoted; every value is bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from layers.cases import raw_where
from layers.errors import UnknownLayer
from layers.filters import Filters, Where
from layers.masking import personal_columns
from layers.scope import Scope
from layers.sql import ident
from onemap.schema import LEVEL_COLUMN

NAMES = {1: "district", 2: "street", 3: "community", 4: "grid"}
SIMPLIFY_DEG = 0.00002  # ~2 m: polygons for reading, not surveying
TILE_ENVELOPE = "t.geom && ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326)"
# Values a derived column's SQL may name, taken from the request's filters.
DERIVED_VALUES: dict[str, Callable[[Filters], object]] = {
    "offline_after": lambda filters: filters.device_offline_after,
}


class Query(NamedTuple):
    """A statement with ``:name`` placeholders and the values bound to them."""

    sql: str
    params: dict


@dataclass(frozen=True, kw_only=True)
class LayerSpec:
    """What every layer has: its table (aliased ``t``) and the columns it serves. The
    statements are built by small methods (``_select``, ``_from``, ``_order``, ``where``)
    that the kinds below override where they differ."""

    id: str
    title: dict[str, str]                  # zh / en
    table: str
    columns: tuple[str, ...]               # properties served and exported
    tile_properties: tuple[str, ...]       # what a feature of a vector tile carries
    key: str = "id"
    personal: tuple[tuple[str, str], ...] = ()  # (column, mask kind): masked unless granted
    derived: dict[str, str] = field(default_factory=dict)  # column -> SQL over ``t``

    def column(self, name: str) -> str:
        """The SQL of column ``name`` of row ``t``, named ``name``."""
        derived = self.derived.get(name)
        return f"({derived}) AS {ident(name)}" if derived else f"t.{ident(name)}"

    def value(self, name: str) -> str:
        """The SQL of the value of column ``name`` of row ``t`` (for WHERE and GROUP BY)."""
        derived = self.derived.get(name)
        return f"({derived})" if derived else f"t.{ident(name)}"

    def where(self, scope: Scope, filters: Filters) -> Where:
        """The rows of ``scope`` under the filters this layer takes."""
        raise NotImplementedError

    # -- statements ------------------------------------------------------------------------
    def count_query(self, scope: Scope, filters: Filters) -> Query:
        """How many rows match."""
        where = self.where(scope, filters)
        return Query(f"SELECT count(*) FROM {self._from()} WHERE {where.sql}", where.params)

    def features_query(self, scope: Scope, filters: Filters, personal: str | None = None,
                       *, limit: int, offset: int = 0) -> Query:
        """One page of matching rows, GeoJSON geometry, in key order."""
        query = self._rows(self.where(scope, filters), personal, "geojson")
        return Query(query.sql + " LIMIT :limit OFFSET :offset",
                     {**query.params, "limit": limit, "offset": offset})

    def feature_query(self, scope: Scope, feature_id: str,
                      personal: str | None = None) -> Query:
        """The row ``feature_id`` if it lies in ``scope``, GeoJSON geometry."""
        where = self.where(scope, Filters()).add(f"t.{ident(self.key)} = :fid", fid=feature_id)
        return self._rows(where, personal, "geojson")

    def export_query(self, scope: Scope, filters: Filters,
                     personal: str | None = None) -> Query:
        """Every matching row, WKB geometry, in key order."""
        return self._rows(self.where(scope, filters), personal, "wkb")

    def tile_query(self, scope: Scope, filters: Filters, *, binned: bool) -> Query:
        """The MVT of the rows in tile ``:z/:x/:y``, named ``:name``; the caller binds those
        and ``:tiles`` (2^z), ``:extent``, ``:buffer``, ``:cap`` and ``:cell``."""
        raise NotImplementedError

    # -- parts -----------------------------------------------------------------------------
    def _rows(self, where: Where, personal: str | None, geometry: str) -> Query:
        sql = (f"{self._select(personal, geometry)} FROM {self._from()} {self._joins()} "
               f"WHERE {where.sql} {self._order()}")
        return Query(sql, {**where.params, **self._geometry_params()})

    def _select(self, personal: str | None, geometry: str) -> str:
        """The layer's columns, its personal fields when ``personal`` is 'clear' or
        'masked', its admin codes and names, and its geometry as GeoJSON or WKB."""
        cols = [self.column(c) for c in self.columns]
        cols += personal_columns(self.personal, personal)
        for level, name in NAMES.items():
            code = LEVEL_COLUMN[level]
            if code not in self.columns:
                cols.append(f"t.{ident(code)}")
            cols.append(f"{name[0]}u.name AS {ident(name + '_name')}")
        shape = f"ST_AsGeoJSON({self._geometry()}, 7)" if geometry == "geojson" else \
            f"ST_AsBinary({self._geometry()})"
        return f"SELECT {', '.join(cols)}, {shape} AS geometry"

    def _from(self) -> str:
        return f"{ident(self.table)} t"

    def _joins(self) -> str:
        """The admin units a row lies in, for their names."""
        return " ".join(f"LEFT JOIN admin_unit {name[0]}u ON {name[0]}u.code = "
                        f"t.{ident(LEVEL_COLUMN[level])}" for level, name in NAMES.items())

    def _order(self) -> str:
        return f"ORDER BY t.{ident(self.key)}"

    def _geometry(self) -> str:
        return "t.geom"

    def _geometry_params(self) -> dict:
        return {}

    def _derived_values(self, where: Where, filters: Filters) -> Where:
        """``where`` with the values its derived columns' SQL names (a device's status
        needs how long it may be silent and still be online)."""
        for name, value in DERIVED_VALUES.items():
            if any(f":{name}" in sql for sql in self.derived.values()):
                where.params[name] = value(filters)
        return where

    def _tile_where(self, scope: Scope, filters: Filters) -> Where:
        return self.where(scope, filters).add(TILE_ENVELOPE)

    def _tile_properties(self) -> str:
        return ", ".join(self.column(c) for c in self.tile_properties)


@dataclass(frozen=True, kw_only=True)
class AdminLayer(LayerSpec):
    """The units of one admin level, simplified polygons, keyed by code."""

    level: int
    table: str = "admin_unit"
    columns: tuple[str, ...] = ("code", "name", "level", "parent_code", "area_km2")
    tile_properties: tuple[str, ...] = ("code", "name", "level")
    key: str = "code"

    def where(self, scope: Scope, filters: Filters) -> Where:
        where = Where().add("t.level = :level", level=self.level)
        if scope.column:
            where.add(f"t.{ident(scope.column)} = :scope", scope=scope.code)
        return _bbox(where, filters)

    def tile_query(self, scope: Scope, filters: Filters, *, binned: bool) -> Query:
        # Simplified in Web Mercator to a quarter pixel of the zoom: invisible, far fewer
        # vertices. Polygons are never binned.
        where = self._tile_where(scope, filters)
        return Query(f"""
    WITH env AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e),
    mvt AS (
        SELECT {self._tile_properties()}, ST_AsMVTGeom(
            ST_Simplify(ST_Transform(t.geom, 3857),
                        (ST_XMax(env.e) - ST_XMin(env.e)) / :extent / 4),
            env.e, :extent, :buffer, true) AS geom
        FROM {self._from()}, env WHERE {where.sql})
    SELECT ST_AsMVT(mvt, :name, :extent, 'geom') FROM mvt WHERE geom IS NOT NULL""",
                     where.params)

    def _geometry(self) -> str:
        return "ST_SimplifyPreserveTopology(t.geom, :tol)"

    def _geometry_params(self) -> dict:
        return {"tol": SIMPLIFY_DEG}


# A point's pixel in tile z/x/y, unrounded: its Web Mercator coordinates (EPSG:3857 is
# spherical, so plain arithmetic on lon/lat) scaled to the tile. It is what
# ST_AsMVTGeom(ST_Transform(geom, 3857), …) computes for a point inside the tile, without
# a PROJ call and two geometry copies per point: about a third of a point's cost in a tile.
# Point tables are all EPSG:4326.
TILE_X = "((ST_X(t.geom) + 180) / 360 * :tiles - :x) * :extent"
TILE_Y = "((1 - asinh(tan(radians(ST_Y(t.geom)))) / pi()) / 2 * :tiles - :y) * :extent"


@dataclass(frozen=True, kw_only=True)
class PointLayer(LayerSpec):
    """A table of points, each with the codes of its grid, community, street and district."""

    filters: tuple[str, ...] = ()          # which point filters apply: kind, device_status
    hover: tuple[str, ...] = ()            # what a point on the map carries (its hover text)
    # Rows a map of this layer never leaves out when it holds more points than it draws
    # (a condition on the table ``t``, written here, never from a request): device alarms.
    keep: str | None = None

    def where(self, scope: Scope, filters: Filters) -> Where:
        where = Where()
        if scope.column:
            where.add(f"t.{ident(scope.column)} = :scope", scope=scope.code)
        if "kind" in self.filters and filters.kinds:
            where.add("t.kind = ANY(:kinds)", kinds=list(filters.kinds))
        if "device_status" in self.filters and filters.device_statuses:
            where.add(f"{self.value('status')} = ANY(:device_statuses)",
                      device_statuses=list(filters.device_statuses))
        return self._derived_values(_bbox(where, filters), filters)

    def map_count_query(self, scope: Scope, filters: Filters) -> Query:
        """How many rows match, how many of them have a point, and how many of those the
        map keeps whatever its limit."""
        where = self.where(scope, filters)
        return Query(f"SELECT count(*), count(t.geom), count(*) FILTER (WHERE "
                     f"{self.keep or 'FALSE'} AND t.geom IS NOT NULL) FROM {self._from()} "
                     f"WHERE {where.sql}", where.params)

    def map_query(self, scope: Scope, filters: Filters) -> Query:
        """Up to ``:limit`` located rows for the map (the caller binds it): the key, the
        ``hover`` columns, lon and lat; the rows it keeps first."""
        where = self.where(scope, filters)
        hover = ", ".join(self.column(c) for c in self.hover)
        first = f"({self.keep}) DESC, " if self.keep else ""
        key = f"t.{ident(self.key)}"
        return Query(f"SELECT {key}, {hover}, ST_X(t.geom), ST_Y(t.geom) FROM {self._from()} "
                     f"WHERE {where.sql} AND t.geom IS NOT NULL ORDER BY {first}{key} "
                     f"LIMIT :limit", where.params)

    def tile_query(self, scope: Scope, filters: Filters, *, binned: bool) -> Query:
        # Only points inside the tile are read (the WHERE), so none needs clipping; binned,
        # each ``:cell``-pixel cell is one point with the count ``n`` of those in it.
        where = self._tile_where(scope, filters)
        if binned:
            sql = f"""
    WITH cells AS (
        SELECT round({TILE_X} / :cell) AS i, round({TILE_Y} / :cell) AS j
        FROM {self._from()} WHERE {where.sql} LIMIT :cap),
    mvt AS (SELECT count(*) AS n, ST_MakePoint(i * :cell, j * :cell) AS geom
            FROM cells GROUP BY i, j)
    SELECT ST_AsMVT(mvt, :name, :extent, 'geom') FROM mvt"""
        else:
            sql = f"""
    WITH mvt AS (
        SELECT {self._tile_properties()}, ST_MakePoint(round({TILE_X}), round({TILE_Y})) AS geom
        FROM {self._from()} WHERE {where.sql} LIMIT :cap)
    SELECT ST_AsMVT(mvt, :name, :extent, 'geom') FROM mvt"""
        return Query(sql, where.params)


@dataclass(frozen=True, kw_only=True)
class CaseLayer(PointLayer):
    """Cases: filtered by time, category, channel and status exactly as the KPIs and lists
    filter them (:func:`layers.cases.raw_where`)."""

    def where(self, scope: Scope, filters: Filters) -> Where:
        return self._derived_values(raw_where(filters, scope, alias="t"), filters)


def _bbox(where: Where, filters: Filters) -> Where:
    if filters.bbox:
        where.add("t.geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)",
                  **dict(zip(("minx", "miny", "maxx", "maxy"), filters.bbox, strict=True)))
    return where


CASE_COLUMNS = (
    "id", "channel", "case_type", "category_1", "category_2", "category_3", "category_4",
    "title", "address", "reported_at", "accepted_at", "dispatched_at", "handled_at",
    "feedback_at", "closed_at", "evaluated_at", "deadline", "handling_unit", "handler", "status",
    "satisfaction", "resolved_level", "on_time", "handling_hours", "located_by",
    "placed_level",
)

# A device's status now: one not heard of for longer than ``:offline_after`` (the filters'
# ``device_offline_after``) is offline, whatever it said last. An alarm stays an alarm:
# silence does not clear it (a flooded or burnt sensor goes quiet), and its ``last_seen``
# says how old it is.
DEVICE_STATUS = ("CASE WHEN t.status = 'alarm' THEN 'alarm' "
                 "WHEN t.last_seen IS NULL OR t.last_seen < now() - :offline_after "
                 "THEN 'offline' ELSE t.status END")

LAYERS: tuple[LayerSpec, ...] = (
    *(AdminLayer(id=f"admin-{level}", title={"zh": zh, "en": en}, level=level)
      for level, zh, en in ((1, "区", "Districts"), (2, "街道", "Streets"),
                            (3, "社区", "Communities"), (4, "网格", "Grids"))),
    PointLayer(id="facilities", title={"zh": "公共设施", "en": "Facilities"}, table="facility",
               columns=("id", "kind", "name", "address"),
               tile_properties=("id", "kind", "name"), filters=("kind",),
               hover=("kind", "name", "address")),
    PointLayer(id="iot-devices", title={"zh": "物联感知设备", "en": "IoT devices"},
               table="iot_device", columns=("id", "kind", "name", "status", "last_seen"),
               tile_properties=("id", "kind", "status"), filters=("kind", "device_status"),
               hover=("kind", "name", "status"), keep="t.status = 'alarm'",
               derived={"status": DEVICE_STATUS}),
    CaseLayer(id="cases", title={"zh": "民生诉求", "en": "Cases"}, table="case_event",
              columns=CASE_COLUMNS, tile_properties=("id", "category_1", "status", "channel"),
              personal=(("reporter_name", "name"), ("reporter_phone", "phone")),
              hover=("category_1", "status", "deadline")),
)


class Catalog:
    """Layer specs by id."""

    def __init__(self, layers: tuple[LayerSpec, ...] = LAYERS):
        self._layers = {layer.id: layer for layer in layers}

    def get(self, layer_id: str) -> LayerSpec:
        try:
            return self._layers[layer_id]
        except KeyError:
            known = ", ".join(self._layers)
            raise UnknownLayer(f"unknown layer '{layer_id}'; known layers: {known}") from None

    def __iter__(self):
        return iter(self._layers.values())


def default_catalog() -> Catalog:
    return Catalog()

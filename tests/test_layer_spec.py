"""A new point layer is a spec and nothing else: registered over a table made here, it is
served as features, map points, vector tiles and exports by the public functions, with no
other module touched. Its columns ``from`` and ``to`` (land cover before and after a
remote-sensing change) are reserved words in SQL: they read back only if every identifier
the spec writes is quoted."""

from __future__ import annotations

import math
from zoneinfo import ZoneInfo

import geopandas as gpd
import mapbox_vector_tile
import pandas as pd
import pytest
from conftest import NYC_ZONE, connected
from sqlalchemy import text

from layers.catalog import LAYERS, Catalog, PointLayer
from layers.exports import export
from layers.features import items, map_points, one
from layers.filters import parse_filters
from layers.scope import resolve_scope
from layers.tiles import tile

pytestmark = pytest.mark.db

CHANGES = PointLayer(
    id="change-points", title={"zh": "遥感变化图斑", "en": "Change points"},
    table="change_point", columns=("id", "kind", "from", "to", "detected_at"),
    tile_properties=("id", "kind", "to"), filters=("kind",), hover=("kind", "to"))
KINDS = ("新增建筑", "违法用地")


@pytest.fixture
def conn(nyc_db):
    """A connection whose change points exist only inside its transaction, rolled back."""
    for connection in connected(nyc_db):
        with connection.begin() as transaction:
            connection.execute(text("""
                CREATE TABLE change_point (
                    id text PRIMARY KEY, kind text NOT NULL, "from" text, "to" text,
                    detected_at timestamptz, geom geometry(Point, 4326),
                    grid_code text, community_code text, street_code text,
                    district_code text)"""))
            # Three points in each of the first 60 grids (by code), on the grid's surface.
            connection.execute(text("""
                INSERT INTO change_point
                SELECT g.code || '-' || i, (ARRAY[:a, :b])[1 + (i % 2)], '耕地', '建设用地',
                       timestamptz '2026-06-01 09:30+08' + i * interval '1 day',
                       ST_PointOnSurface(g.geom), g.code,
                       g.community_code, g.street_code, g.district_code
                FROM (SELECT * FROM admin_unit WHERE level = 4 ORDER BY code LIMIT 60) g,
                     generate_series(0, 2) i"""), {"a": KINDS[0], "b": KINDS[1]})
            yield connection
            transaction.rollback()


def _rows(conn, where: str = "TRUE", **params) -> list[dict]:
    return [dict(r) for r in conn.execute(text(
        f"SELECT c.*, g.name AS grid_name FROM change_point c "
        f"JOIN admin_unit g ON g.code = c.grid_code WHERE {where} ORDER BY c.id"),
        params).mappings()]


def _busiest_district(conn) -> str:
    return conn.execute(text("SELECT district_code FROM change_point GROUP BY 1 "
                             "ORDER BY count(*) DESC, 1 LIMIT 1")).scalar_one()


def test_the_spec_is_found_in_a_catalog_that_registers_it():
    catalog = Catalog((*LAYERS, CHANGES))
    assert catalog.get("change-points") is CHANGES
    assert [layer.id for layer in catalog][-1] == "change-points"


def test_features_of_a_new_point_layer(conn):
    district = _busiest_district(conn)
    scope = resolve_scope(conn, district)
    page = items(conn, CHANGES, scope, parse_filters({"kind": KINDS[1]}), limit=1000,
                 zone=NYC_ZONE)
    expected = _rows(conn, "c.district_code = :d AND c.kind = :k", d=district, k=KINDS[1])
    assert expected and page["numberMatched"] == len(expected)
    assert [f["id"] for f in page["features"]] == [r["id"] for r in expected]
    first, row = page["features"][0], expected[0]
    assert first["properties"]["from"] == "耕地" and first["properties"]["to"] == "建设用地"
    assert first["properties"]["grid_name"] == row["grid_name"]
    assert first["properties"]["detected_at"] == row["detected_at"].astimezone(
        ZoneInfo(NYC_ZONE)).isoformat()
    assert first["geometry"]["type"] == "Point"
    assert one(conn, CHANGES, scope, row["id"], zone=NYC_ZONE)["id"] == row["id"]
    points = map_points(conn, CHANGES, scope, parse_filters({}), 5)
    assert points["numberMatched"] == len(_rows(conn, "c.district_code = :d", d=district))
    assert len(points["features"]) == 5
    assert set(points["features"][0]["properties"]) == {"kind", "to"}


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The slippy-map tile holding lon/lat (plain Web Mercator arithmetic)."""
    n = 2 ** z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


def test_tiles_of_a_new_point_layer(conn):
    scope = resolve_scope(conn, None)
    lon, lat = conn.execute(text(
        "SELECT ST_X(geom), ST_Y(geom) FROM change_point ORDER BY id LIMIT 1")).one()
    for z in (15, 11):  # points with their properties; binned with counts
        x, y = _tile_of(lon, lat, z)
        inside = _rows(conn, "c.geom && ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326)",
                       z=z, x=x, y=y)
        decoded = mapbox_vector_tile.decode(
            tile(conn, CHANGES, scope, parse_filters({}), z, x, y))
        features = decoded["change-points"]["features"]
        if z >= 13:
            assert inside
            assert sorted(f["properties"]["id"] for f in features) == [r["id"] for r in inside]
            assert set(features[0]["properties"]) == {"id", "kind", "to"}
        else:
            assert sum(f["properties"]["n"] for f in features) == len(inside) > 3


@pytest.mark.parametrize("fmt", ["gpkg", "csv"])
def test_exports_of_a_new_point_layer(conn, tmp_path, fmt):
    district = _busiest_district(conn)
    scope = resolve_scope(conn, district)
    out = tmp_path / f"changes.{fmt}"
    result = export(conn, CHANGES, scope, parse_filters({}), fmt, out, zone=NYC_ZONE)
    expected = _rows(conn, "c.district_code = :d", d=district)
    frame = (gpd.read_file(out) if fmt == "gpkg"
             else pd.read_csv(out, dtype=str, encoding="utf-8-sig"))
    assert result.rows == len(frame) == len(expected)
    assert frame["id"].tolist() == [r["id"] for r in expected]
    assert frame["grid_name"].tolist() == [r["grid_name"] for r in expected]
    assert set(frame["to"]) == {"建设用地"} and set(frame["from"]) == {"耕地"}

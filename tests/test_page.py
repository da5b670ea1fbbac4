"""The first true page in headless Chromium: the outline on an offline map, or the empty state."""

from __future__ import annotations

import json

import psycopg
import pytest
from conftest import bluish_share, screenshot

pytestmark = [pytest.mark.db, pytest.mark.browser]


@pytest.fixture(scope="module")
def district_db(fresh_db, shared_data):
    """A database holding just the district outline (the ETL tests cover the real loads)."""
    url = fresh_db()
    path = shared_data / "pingshan" / "district_440310_gcj02.geojson"
    geometry = json.loads(path.read_text())
    geometry = geometry.get("geometry", geometry) if geometry.get("type") == "Feature" else geometry
    if geometry.get("type") == "FeatureCollection":
        geometry = geometry["features"][0]["geometry"]
    with psycopg.connect(url) as conn:
        conn.execute(
            """INSERT INTO admin_unit (code, name, level, district_code, geom, area_km2)
               SELECT '440310', '坪山区', 1, '440310', g, ST_Area(g::geography) / 1e6
               FROM ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326)) AS g""",
            (json.dumps(geometry),),
        )
    return url


def test_empty_database_shows_a_friendly_state(fresh_db, serve, page):
    server = serve(fresh_db())
    page.goto(server.url + "/")
    page.wait_for_selector("#empty-state", timeout=30_000)
    assert "make demo" in page.inner_text("#empty-state")
    assert "尚未加载数据" in page.inner_text("#empty-state")
    screenshot(page, "page-empty")
    assert page.errors == [] and page.external == []


def test_outline_is_drawn_offline(district_db, serve, page):
    server = serve(district_db)
    page.goto(server.url + "/")
    page.wait_for_selector("#map .maplibregl-canvas", timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('#map .js-plotly-plot')?._fullData?.length === 1"
    )
    located = page.evaluate(
        "() => document.querySelector('#map .js-plotly-plot')._fullData[0].locations"
    )
    assert located == ["440310"]
    page.wait_for_timeout(1500)  # let MapLibre finish painting before the screenshot
    shot = screenshot(page, "page-outline")
    # The map canvas really holds drawn pixels of the outline colour, not a blank page.
    share = bluish_share(page.locator("#map").screenshot())
    assert 0.1 < share < 0.95, f"share of the map covered by the district: {share:.2f} ({shot})"
    assert "一张图" in page.inner_text("#header")
    assert page.errors == []
    assert page.external == [], f"requests left the machine: {page.external[:5]}"

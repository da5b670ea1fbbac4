"""The first true page in headless Chromium: the outline on an offline map, or the empty state."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import bluish_share, screenshot

from etl.load import load

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
PRESETS = ROOT / "etl" / "presets"

pytestmark = [pytest.mark.db, pytest.mark.browser]


@pytest.fixture(scope="module")
def district_db(fresh_db):
    """A database holding just the district outline, loaded through the ETL."""
    url = fresh_db()
    load(url, "admin", [DATA / "pingshan" / "district_440310_gcj02.geojson"],
         PRESETS / "pingshan-district.yaml")
    return url


def test_empty_database_shows_a_friendly_state(fresh_db, serve, page):
    server = serve(fresh_db())
    server.login(page)
    page.goto(server.url + "/")
    page.wait_for_selector("#empty-state", timeout=30_000)
    assert "make demo" in page.inner_text("#empty-state")
    assert "尚未加载数据" in page.inner_text("#empty-state")
    screenshot(page, "page-empty")
    assert page.errors == [] and page.external == []


def test_outline_is_drawn_offline(district_db, serve, page):
    server = serve(district_db)
    server.login(page)
    page.goto(server.url + "/")
    page.wait_for_selector("#map-box .maplibregl-canvas", timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('#map-box .js-plotly-plot')?._fullData?.length === 1"
    )
    located = page.evaluate(
        "() => document.querySelector('#map-box .js-plotly-plot')._fullData[0].locations"
    )
    assert located == ["440310"]
    page.wait_for_timeout(1500)  # let MapLibre finish painting before the screenshot
    shot = screenshot(page, "page-outline")
    # The map canvas really holds drawn pixels of the outline colour, not a blank page.
    share = bluish_share(page.locator("#map-box").screenshot())
    assert 0.1 < share < 0.95, f"share of the map covered by the district: {share:.2f} ({shot})"
    assert "一张图" in page.inner_text("#header")
    assert page.errors == []
    assert page.external == [], f"requests left the machine: {page.external[:5]}"

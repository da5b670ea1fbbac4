"""The dashboard in headless Chromium against the demo city: drill down three levels by
clicking the map with KPI cards equal to independent SQL, back up by the breadcrumb,
filters, a shared URL, an export download, the database going away and coming back, a
load holding the tables, and screenshots of both pages in both languages and both big-screen
sizes."""

from __future__ import annotations

import io
import json
import shutil
import time
import urllib.error
import uuid
from urllib.parse import parse_qs, urlparse

import pandas as pd
import psycopg
import pytest
from conftest import bluish_share, ensure_user, screenshot

from etl.load import load
from onemap.cluster import LocalCluster
from onemap.settings import PROJECT_ROOT, get_settings

pytestmark = [pytest.mark.db, pytest.mark.browser]

ROOT = PROJECT_ROOT
COUNT = "SELECT count(*) FROM case_event WHERE {where}"


def sql(url: str, query: str, *params):
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def kpi(page, key: str) -> int:
    return int(page.inner_text(f"#kpi-{key}").replace(",", ""))


def wait_for_scope(page, code: str | None, timeout: float = 30_000) -> None:
    page.wait_for_function(
        "code => (new URLSearchParams(location.search).get('scope') || null) === code", arg=code,
        timeout=timeout)


def wait_for_map(page, n_units: int) -> None:
    page.wait_for_function(
        "n => { const gd = document.querySelector('#map-box .js-plotly-plot');"
        " return gd && gd._fullData && gd._fullData[0] && gd._fullData[0].locations"
        " && gd._fullData[0].locations.length === n; }", arg=n_units, timeout=30_000)
    page.wait_for_timeout(800)


def click_unit(page, lon: float, lat: float, code: str) -> None:
    """A real mouse click where MapLibre draws (lon, lat), until the view is ``code``'s
    (the map takes clicks once MapLibre has finished loading, which takes a moment)."""
    for _ in range(10):
        _click_at(page, lon, lat)
        try:
            wait_for_scope(page, code, timeout=3_000)
            return
        except Exception:  # noqa: BLE001 - not yet interactive: try again
            page.wait_for_timeout(1_000)
    wait_for_scope(page, code)


def _click_at(page, lon: float, lat: float) -> None:
    x, y = page.evaluate(
        """([lon, lat]) => { const gd = document.querySelector('#map-box .js-plotly-plot');
            const m = gd._fullLayout.map._subplot.map; const p = m.project([lon, lat]);
            const r = m.getCanvas().getBoundingClientRect(); return [r.left + p.x, r.top + p.y];
        }""", [lon, lat])
    page.mouse.move(x, y)  # plotly picks the unit under the pointer on hover
    page.wait_for_timeout(300)
    page.mouse.click(x, y)


def inside(url: str, code: str) -> tuple[float, float]:
    return sql(url, "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p "
                    "FROM admin_unit WHERE code = %s) q", code)[0]


def children_of(url: str, code: str) -> list[str]:
    return [r[0] for r in sql(url, "SELECT code FROM admin_unit WHERE parent_code = %s "
                                   "ORDER BY area_km2 DESC", code)]


def test_drill_down_three_levels_and_back(city_db, serve, page):
    server = serve(city_db)
    server.login(page)
    page.goto(server.url + "/?range=all")
    wait_for_map(page, 7)
    assert kpi(page, "total") == sql(city_db, "SELECT count(*) FROM case_event")[0][0]
    screenshot(page, "main-district-zh")
    page.goto(server.url + "/?range=all&layers=units")  # only the units take clicks
    wait_for_map(page, 7)
    scope, columns = "440310", ("street_code", "community_code", "grid_code")
    for depth, column in enumerate(columns):
        target = children_of(city_db, scope)[0]
        click_unit(page, *inside(city_db, target), target)
        if depth < 2:
            wait_for_map(page, len(children_of(city_db, target)))
        else:
            wait_for_map(page, 1)  # a grid shows itself
        want = sql(city_db, COUNT.format(where=f"{column} = %s"), target)[0][0]
        page.wait_for_function("n => document.querySelector('#kpi-total') && "
                               "document.querySelector('#kpi-total').innerText"
                               ".replace(/,/g, '') == String(n)", arg=want, timeout=20_000)
        open_now = sql(city_db, COUNT.format(where=f"{column} = %s AND status = 'open'"),
                       target)[0][0]
        assert kpi(page, "open") == open_now
        scope = target
    crumbs = page.locator("#breadcrumb a, #breadcrumb .here")
    assert crumbs.count() == 4
    screenshot(page, "main-grid-zh")
    page.click("#breadcrumb a >> nth=0")  # 坪山区
    wait_for_scope(page, None)
    wait_for_map(page, 7)
    assert page.errors == [] and page.external == []


def test_filters_shared_url_and_export(city_db, serve, page, tmp_path):
    server = serve(city_db)
    server.login(page)
    street = children_of(city_db, "440310")[1]
    page.goto(f"{server.url}/?range=all&scope={street}")
    wait_for_map(page, len(children_of(city_db, street)))
    page.get_by_label("已办结").check()
    page.wait_for_function("() => location.search.includes('status=closed')")
    closed = sql(city_db, COUNT.format(where="street_code = %s AND status = 'closed'"),
                 street)[0][0]
    page.wait_for_function("n => document.querySelector('#kpi-total').innerText"
                           ".replace(/,/g, '') == String(n)", arg=closed, timeout=20_000)
    shared = page.url
    query = parse_qs(urlparse(shared).query)
    assert query["scope"] == [street] and query["status"] == ["closed"]
    # Someone opens the link: the same view.
    other = page.context.new_page()
    other.goto(shared)
    other.wait_for_function("n => document.querySelector('#kpi-total') && document"
                            ".querySelector('#kpi-total').innerText.replace(/,/g, '')"
                            " == String(n)", arg=closed, timeout=30_000)
    assert other.get_by_label("已办结").is_checked()
    # The export is exactly this view.
    with other.expect_download() as download:
        other.click("#export-csv")
    path = tmp_path / "export.csv"
    download.value.save_as(path)
    frame = pd.read_csv(io.StringIO(path.read_text(encoding="utf-8-sig")), dtype=str)
    assert len(frame) == closed
    assert set(frame["street_code"]) == {street} and set(frame["status"]) == {"closed"}
    assert "reporter_phone" not in frame.columns
    other.close()


def test_category_tree_filter(city_db, serve, page):
    """A second-level category from a link filters the view and shows in its dropdown."""
    top, sub = sql(city_db, "SELECT category_1, category_2 FROM case_event "
                            "GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1")[0]
    server = serve(city_db)
    server.login(page)
    page.goto(f"{server.url}/?range=all&category={sub}")
    want = sql(city_db, COUNT.format(where="category_2 = %s"), sub)[0][0]
    page.wait_for_function("n => document.querySelector('#kpi-total') && document"
                           ".querySelector('#kpi-total').innerText.replace(/,/g, '')"
                           " == String(n)", arg=want, timeout=30_000)
    assert sub in page.inner_text(f"#{'filter-subcategory'}")
    assert want < sql(city_db, COUNT.format(where="category_1 = %s"), top)[0][0]


def test_database_down_shows_a_banner_and_recovers(serve, page):
    """A private cluster we may stop: the banner comes, then goes by itself."""
    home = ROOT / ".onemap" / "test-clusters" / uuid.uuid4().hex[:8]
    cluster = LocalCluster(get_settings(home=home, pg_port=55500, database_url=None))
    cluster.up()
    try:
        from onemap.migrate import migrate

        migrate(cluster.url())
        load(cluster.url(), "admin", [ROOT / "data/pingshan/district_440310_gcj02.geojson"],
             ROOT / "etl/presets/pingshan-district.yaml")
        server = serve(cluster.url(), ONEMAP_REFRESH_SECONDS="2")
        server.login(page)
        page.goto(server.url + "/")
        page.wait_for_selector("#kpi-total", timeout=30_000)
        cluster.down()
        page.wait_for_selector("#db-down", timeout=30_000)
        assert "数据库不可用" in page.inner_text("#banner")
        screenshot(page, "main-db-down")
        cluster.up()
        page.wait_for_selector("#db-down", state="detached", timeout=60_000)
        assert "Traceback" not in page.content()
    finally:
        cluster.down()
        shutil.rmtree(home, ignore_errors=True)


def test_a_view_behind_a_load_says_so_and_recovers(city_db, serve, page):
    """A large load holds its tables from the index rebuild to the commit: views and the
    API stop waiting after the read lock timeout, say a load is being committed, and come
    back by themselves once it has."""
    server = serve(city_db, ONEMAP_READ_LOCK_TIMEOUT_SECONDS="1", ONEMAP_REFRESH_SECONDS="2",
                   ONEMAP_VIEW_CACHE_SECONDS="0")
    server.login(page)
    page.goto(server.url + "/")
    page.wait_for_selector("#kpi-total", timeout=30_000)
    before = kpi(page, "total")
    with psycopg.connect(city_db) as loader:
        loader.execute("LOCK TABLE case_event, case_unit_day, case_rollup "
                       "IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(urllib.error.HTTPError) as refused:
            server.open("/api/kpi")
        assert time.monotonic() - started < 10
        assert refused.value.code == 503
        assert refused.value.headers["Retry-After"] == "30"
        assert "data load" in json.loads(refused.value.read())["error"]
        page.wait_for_selector("#db-busy", timeout=30_000)
        assert "正在入库" in page.inner_text("#banner")
        screenshot(page, "main-load-busy")
        loader.rollback()
    page.wait_for_selector("#db-busy", state="detached", timeout=30_000)
    assert kpi(page, "total") == before > 0
    assert server.open("/api/kpi").status == 200


@pytest.mark.parametrize("width,height", [(1920, 1080), (3840, 2160)])
def test_bigscreen_fits_the_screen(city_db, serve, browser, width, height):
    server = serve(city_db)
    token = ensure_user(city_db, "wall", "kiosk")
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(server.url + f"/bigscreen?tour=off&kiosk={token}")  # the wall signs in
    assert "kiosk=" not in page.url
    page.wait_for_function("() => document.querySelector('#bs-kpi-cards .card')",
                           timeout=30_000)
    page.wait_for_function(  # the map holds the view's units, not just its empty style
        "() => document.querySelector('#bs-map .js-plotly-plot')?._fullData?.[0]"
        "?.locations?.length > 0", timeout=30_000)
    page.wait_for_timeout(2500)
    shot = screenshot(page, f"bigscreen-{width}x{height}")
    share = bluish_share(page.locator("#bs-map").screenshot())
    assert share > 0.1, f"share of the map showing the units: {share:.2f} ({shot})"
    size = page.evaluate("() => [document.documentElement.scrollWidth,"
                         " document.documentElement.scrollHeight]")
    assert size == [width, height]  # no scrollbars
    title = page.evaluate("() => parseFloat(getComputedStyle("
                          "document.querySelector('.bs-header h1')).fontSize)")
    assert title == pytest.approx(0.019 * width, rel=0.05)  # type scales with the screen
    assert "城市运行指挥中心" in page.inner_text(".bs-header")
    assert page.locator("#bs-ticker .tick").count() > 0
    assert page.locator("#export-csv").count() == 0  # the wall screen exports nothing
    context.close()


def test_both_languages(city_db, serve, page):
    server = serve(city_db)
    server.login(page)
    page.goto(server.url + "/?lang=en&range=all")
    wait_for_map(page, 7)
    text = page.inner_text("body")
    assert "Cases" in text and "On-time closure" in text and "诉求总量" not in text
    screenshot(page, "main-district-en")
    page.click("#lang-switch")
    page.wait_for_function("() => document.body.innerText.includes('诉求总量')")

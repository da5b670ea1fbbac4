"""The read side on real PostGIS: KPIs against independent SQL, features, hex bins and
hotspots, vector tiles, exports that reopen, and 4xx for bad input. NYC data."""

from __future__ import annotations

import json
from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

import geopandas as gpd
import h3
import mapbox_vector_tile
import numpy as np
import openpyxl
import pandas as pd
import pytest
from conftest import NYC_ZONE, PASSWORD, connected
from sqlalchemy import text

from layers import cases
from layers.case_query import CaseQuery
from layers.catalog import default_catalog
from layers.errors import BadParameter, UnknownLayer, UnknownScope
from layers.exports import FORMATS, export
from layers.features import items, map_points
from layers.filters import parse_filters
from layers.hotspots import _halves as hotspot_halves
from layers.hotspots import getis_ord, hexbins, hotspots, parent_sql
from layers.kpi import with_children
from layers.scope import resolve_scope
from layers.tiles import tile
from onemap import aggregates as agg
from onemap.database import make_engine

pytestmark = pytest.mark.db
CATALOG = default_catalog()


@pytest.fixture(scope="module")
def conn(nyc_db):
    yield from connected(nyc_db)


def sql(conn, query: str, **params):
    return conn.execute(text(query), params).mappings().all()


def independent(conn, where: str, **params) -> dict:
    """The KPIs straight from case_event, written without the read side's code."""
    row = sql(conn, f"""
        SELECT count(*) AS total, count(*) FILTER (WHERE status = 'closed') AS closed,
               count(*) FILTER (WHERE status = 'open') AS open,
               count(*) FILTER (WHERE status = 'open' AND deadline < now()) AS overdue,
               avg((closed_at <= deadline)::int) FILTER (WHERE closed_at IS NOT NULL
                                                         AND deadline IS NOT NULL) AS on_time,
               avg(((closed_at AT TIME ZONE '{NYC_ZONE}')::date
                    = (reported_at AT TIME ZONE '{NYC_ZONE}')::date)::int)
                   FILTER (WHERE closed_at IS NOT NULL) AS same_day,
               avg((closed_at - reported_at <= interval '3 days')::int)
                   FILTER (WHERE closed_at IS NOT NULL) AS within_3d,
               percentile_cont(0.5) WITHIN GROUP (
                   ORDER BY extract(epoch FROM closed_at - reported_at) / 3600) AS median
        FROM case_event WHERE {where}""", **params)[0]
    return dict(row)


def assert_both_paths_agree(conn, scope, filters, view: dict) -> None:
    """The figures a view read from the aggregates are those of the cases themselves, but
    for the median (the aggregates' is within 1 % or 5 minutes: checked against SQL)."""
    raw = CaseQuery(conn, scope, filters, NYC_ZONE, fast=False)
    assert raw.source == "cases" and view["source"] == "rollup"

    def flows(figures: dict) -> dict:
        return {k: v for k, v in figures.items() if k not in ("median_hours", "median_approx")}

    assert flows(raw.closed()) == flows({k: view["cases"][k] for k in raw.closed()})
    assert [flows(c) for c in raw.by_child()] == [flows(c) for c in view["children"]]
    assert raw.mixes() == {"channels": view["channels"], "categories": view["categories"]}
    assert raw.trend() == view["trend"]


@pytest.mark.parametrize("code", [None, "2", "BRONX 12", "BX1201"])
def test_kpis_equal_independent_sql(conn, code):
    scope = resolve_scope(conn, code)
    # The aggregates answer whole days and open/closed; "overdue" depends on the clock, so
    # asking for it (here with the others: every case) reads the raw table.
    for params, status, source in (({}, None, "rollup"), ({"status": "closed"}, "closed", "rollup"),
                                   ({"status": "open"}, "open", "rollup"),
                                   ({"status": "closed,open,overdue"}, None, "cases")):
        filters = parse_filters(params, NYC_ZONE)
        got = with_children(conn, scope, filters, NYC_ZONE)
        if source == "rollup":  # the cases give the same figures (the median exactly)
            assert_both_paths_agree(conn, scope, filters, got)
        where = f"{scope.column} = :code" if scope.column else "TRUE"
        if status:
            where += f" AND status = '{status}'"
        want = independent(conn, where, code=code)
        cases = got["cases"]
        assert got["source"] == source
        assert (cases["total"], cases["closed"], cases["open"], cases["overdue"]) == (
            want["total"], want["closed"], want["open"], want["overdue"])
        for key, ref in (("on_time_rate", "on_time"), ("same_day_rate", "same_day"),
                         ("within_3d_rate", "within_3d")):
            expected = None if want[ref] is None else pytest.approx(float(want[ref]), abs=1e-4)
            assert cases[key] == expected, key
        if want["median"] is None:  # open cases: nothing closed, no handling time
            assert cases["median_hours"] is None
            continue
        # Exact on the raw path; within 1 % or 5 minutes on the aggregates' path (plus the
        # rounding to 2 decimals).
        tolerance = 0.01 if source == "cases" else max(5 / 60, float(want["median"]) * 0.01) \
            + 0.005
        assert cases["median_hours"] == pytest.approx(float(want["median"]), abs=tolerance)
        assert sum(c["n"] for c in got["channels"]) == want["total"]


@pytest.mark.parametrize("key, column", [("category", "category_1"), ("channel", "channel")])
@pytest.mark.parametrize("code", [None, "2", "BRONX 12", "BX1201", "its busiest grid"])
def test_a_filtered_view_is_the_cases_own_at_every_level(conn, code, key, column):
    """Under a category or a channel filter the aggregates keep no grid
    (onemap.aggregates.COARSE): a grid's flows, trend and mixes, and a community's
    children, come from the cases, the rest from the aggregates; every figure is the one
    the cases alone give, and the total the one plain SQL counts."""
    if code == "its busiest grid":
        code = sql(conn, "SELECT grid_code AS g FROM case_event WHERE community_code = "
                         "'BX1201' AND grid_code IS NOT NULL GROUP BY 1 "
                         "ORDER BY count(*) DESC LIMIT 1")[0]["g"]
    scope = resolve_scope(conn, code)
    value = sql(conn, f"SELECT {column} AS v FROM case_event GROUP BY 1 "
                      f"ORDER BY count(*) DESC LIMIT 1")[0]["v"]
    filters = parse_filters({key: value}, NYC_ZONE)
    view = with_children(conn, scope, filters, NYC_ZONE)
    assert view["source"] == ("cases" if scope.level == 4 else "rollup")
    raw = CaseQuery(conn, scope, filters, NYC_ZONE, fast=False)

    def flows(figures: dict) -> dict:
        return {k: v for k, v in figures.items() if k not in ("median_hours", "median_approx")}

    assert flows(raw.closed()) == flows({k: view["cases"][k] for k in raw.closed()})
    assert [flows(c) for c in raw.by_child()] == [flows(c) for c in view["children"]]
    assert raw.mixes() == {"channels": view["channels"], "categories": view["categories"]}
    assert raw.trend() == view["trend"]
    where = f"{scope.column} = :code" if scope.column else "TRUE"
    want = sql(conn, f"SELECT count(*) AS n FROM case_event WHERE {where} "
                     f"AND {column} = :value", code=code, value=value)[0]["n"]
    assert view["cases"]["total"] == want > 0


@pytest.mark.parametrize("start, end", [
    ("2011-03-02", "2011-11-08"),  # days Mar 2-6, weeks Mar 7 - Nov 6, days Nov 7-8
    ("2011-02-21", "2011-03-02"),  # the week of Feb 21, days Feb 28 - Mar 2
])
@pytest.mark.parametrize("code", [None, "2", "BRONX 12"])
def test_whole_weeks_from_the_weekly_aggregates_give_the_days_figures(conn, monkeypatch, code,
                                                                       start, end):
    """A range's whole weeks come from the weekly aggregates and the days around them from
    the daily ones: every figure of the view is the one the daily aggregates alone give, and
    the totals are those of case_event over the range's local days."""
    scope = resolve_scope(conn, code)
    filters = parse_filters({"start": start, "end": end}, NYC_ZONE)

    def view() -> tuple[dict, dict]:
        return (with_children(conn, scope, filters, NYC_ZONE),
                hotspots(conn, scope, filters, "grid", 12, NYC_ZONE))

    read = view()
    # The daily tables read with the weeks' bounds hold exactly the weeks' days.
    monkeypatch.setattr(agg, "WEEKLY", {t.name: t for t in agg.TABLES if not t.daily})
    assert view() == read
    where = f"{scope.column} = :code" if scope.column else "TRUE"
    want = sql(conn, f"SELECT count(*) AS n FROM case_event WHERE {where} AND "
                     f"(reported_at AT TIME ZONE '{NYC_ZONE}')::date >= :start AND "
                     f"(reported_at AT TIME ZONE '{NYC_ZONE}')::date <= :end",
               code=code, start=date.fromisoformat(start), end=date.fromisoformat(end))
    data = read[0]
    assert data["source"] == "rollup" and data["cases"]["total"] == want[0]["n"] > 0
    assert sum(p["n"] for p in data["trend"]["points"]) == want[0]["n"]


def test_a_range_is_read_as_its_whole_weeks_and_the_days_around_them():
    wed, mon, mon2, thu = (date(2026, 9, 2), date(2026, 9, 7), date(2026, 11, 30),
                           date(2026, 12, 3))
    assert cases._spans(wed, thu, True) == [(False, wed, mon), (True, mon, mon2),
                                            (False, mon2, thu)]
    assert cases._spans(mon, mon2, True) == [(True, mon, mon2)]
    assert cases._spans(None, wed, True) == [(True, None, date(2026, 8, 31)),
                                             (False, date(2026, 8, 31), wed)]
    assert cases._spans(wed, date(2026, 9, 6), True) == [(False, wed, date(2026, 9, 6))]
    assert cases._spans(wed, thu, False) == [(False, wed, thu)]


def test_long_periods_are_halved_on_a_monday(conn):
    for start, end in (("2026-09-02", "2026-12-01"), ("2026-09-04", "2026-10-05")):
        early, late = hotspot_halves(conn, parse_filters({"start": start, "end": end},
                                                         NYC_ZONE), NYC_ZONE)
        middle = late.start.astimezone(ZoneInfo(NYC_ZONE))
        assert early.end == late.start and middle.time() == time(0) and middle.weekday() == 0
        halfway = early.start + (late.end - early.start) / 2
        assert abs(late.start - halfway) <= timedelta(days=4)
    early, late = hotspot_halves(conn, parse_filters({"start": "2026-09-02", "end": "2026-09-10"},
                                                     NYC_ZONE), NYC_ZONE)
    assert late.start.astimezone(ZoneInfo(NYC_ZONE)).date() == date(2026, 9, 6)  # a Sunday


def test_open_cases_above_the_child_level_count_for_the_scope(conn):
    """Cases placed by community board have no NTA: the board's open cases include them,
    although none of its NTAs (the children) has them."""
    code = sql(conn, "SELECT street_code FROM case_event WHERE status = 'open' AND "
                     "community_code IS NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
               )[0]["street_code"]
    data = with_children(conn, resolve_scope(conn, code), parse_filters({}, NYC_ZONE), NYC_ZONE)
    want = sql(conn, "SELECT count(*) AS open, count(*) FILTER (WHERE deadline < now()) "
                     "AS overdue FROM case_event WHERE street_code = :code AND status = 'open'",
               code=code)[0]
    assert (data["cases"]["open"], data["cases"]["overdue"]) == (want["open"], want["overdue"])
    assert sum(child["open"] for child in data["children"]) < want["open"]


def test_children_add_up_and_match_sql(conn):
    scope = resolve_scope(conn, "2")  # the Bronx: its community districts
    rows = with_children(conn, scope, parse_filters({}, NYC_ZONE), NYC_ZONE)["children"]
    counts = {r["street_code"]: r["n"] for r in sql(
        conn, "SELECT street_code, count(*) AS n FROM case_event WHERE district_code = '2' "
              "GROUP BY 1")}
    assert {r["code"]: r["total"] for r in rows if r["total"]} == counts
    units = sql(conn, "SELECT code FROM admin_unit WHERE parent_code = '2' ORDER BY code")
    assert [r["code"] for r in rows] == [u["code"] for u in units]  # zero-filled


def test_filters_by_category_time_and_bbox(conn):
    scope = resolve_scope(conn, None)
    cases = lambda p: with_children(conn, scope, parse_filters(p, NYC_ZONE),  # noqa: E731
                                    NYC_ZONE)["cases"]["total"]
    count = lambda w: sql(conn, f"SELECT count(*) AS n FROM case_event WHERE {w}")[0]["n"]  # noqa: E731
    assert cases({"category": "NYPD"}) == count("category_1 = 'NYPD'")
    assert cases({"category": "Noise - Residential"}) == count(
        "category_2 = 'Noise - Residential'")
    assert cases({"start": "2011-03-02", "end": "2011-03-02"}) == count(
        f"(reported_at AT TIME ZONE '{NYC_ZONE}')::date = '2011-03-02'")
    box = "-73.95,40.80,-73.85,40.90"
    assert cases({"bbox": box}) == count(
        "geom && ST_MakeEnvelope(-73.95, 40.80, -73.85, 40.90, 4326)")


def test_items_page_with_codes_and_names(conn):
    scope = resolve_scope(conn, "BRONX 12")
    page = items(conn, CATALOG.get("cases"), scope, parse_filters({}), limit=5, offset=0,
                 zone=NYC_ZONE)
    assert page["numberReturned"] == 5 and page["numberMatched"] == 32
    props = page["features"][0]["properties"]
    for level in ("district", "street", "community", "grid"):
        assert f"{level}_code" in props and f"{level}_name" in props
    assert props["street_code"] == "BRONX 12" and props["district_name"] == "Bronx"
    assert "reporter_name" not in props and "reporter_phone" not in props


def test_map_points_carry_only_their_hover_fields_within_the_scope(conn):
    scope = resolve_scope(conn, "BRONX 12")
    filters = parse_filters({"status": "closed"})
    layer = CATALOG.get("cases")
    found = map_points(conn, layer, scope, filters, 1000)
    want = sql(conn, "SELECT id, category_1, status, deadline, ST_X(geom) AS x, "
                     "ST_Y(geom) AS y "
                     "FROM case_event WHERE street_code = 'BRONX 12' AND status = 'closed' "
                     "AND geom IS NOT NULL ORDER BY id")
    assert want and [f["id"] for f in found["features"]] == [w["id"] for w in want]
    first = found["features"][0]
    # The deadline rides along for the overdue marks (the view turns it into one).
    assert first["properties"] == {"category_1": want[0]["category_1"], "status": "closed",
                                   "deadline": want[0]["deadline"]}
    assert first["geometry"] == {"type": "Point", "coordinates": [want[0]["x"], want[0]["y"]]}
    assert len(map_points(conn, layer, scope, filters, 3)["features"]) == 3


def test_hexbins_follow_zoom_and_count_in_the_database(conn):
    scope = resolve_scope(conn, None)
    coarse = hexbins(conn, scope, parse_filters({}), zoom=9)
    fine = hexbins(conn, scope, parse_filters({}), zoom=14)
    assert coarse["resolution"] < fine["resolution"]
    located = sql(conn, "SELECT count(*) AS n FROM case_event WHERE h3 IS NOT NULL")[0]["n"]
    for collection in (coarse, fine):
        assert sum(f["properties"]["n"] for f in collection["features"]) == located
    # The SQL parent of a stored cell is H3's own parent.
    cell = sql(conn, f"SELECT h3, {parent_sql(7)} AS parent FROM case_event c "
                     "WHERE h3 IS NOT NULL LIMIT 1")[0]
    assert h3.int_to_str(cell["parent"]) == h3.cell_to_parent(h3.int_to_str(cell["h3"]), 7)


def test_getis_ord_finds_the_planted_cluster():
    # A 10×10 lattice with a hot 3×3 block: Gi* is highest in the block's centre.
    values = np.ones(100)
    block = [r * 10 + c for r in range(3, 6) for c in range(3, 6)]
    values[block] = 10
    neighbours = [[(r + dr) * 10 + c + dc for dr in (-1, 0, 1) for dc in (-1, 0, 1)
                   if (dr or dc) and 0 <= r + dr < 10 and 0 <= c + dc < 10]
                  for r in range(10) for c in range(10)]
    z = getis_ord(values, neighbours)
    assert int(np.argmax(z)) == 44 and z[44] > 2.58 and z[0] < 1.0


def test_hotspots_have_significance_and_trend(conn):
    result = hotspots(conn, resolve_scope(conn, None), parse_filters({}), "grid")
    assert result["features"] and result["alpha"] == 0.05
    for feature in result["features"]:
        props = feature["properties"]
        assert props["confidence"] in (0.95, 0.99, None)
        assert props["trend"] in ("persistent", "emerging", "fading", None)
        assert props["confidence"] or props["trend"]
        assert props["name"] and (props["n"] > 0 or not props["hot"])
    # A single grid shows the verdict of the whole district on it.
    district = {f["id"]: f["properties"] for f in hotspots(
        conn, resolve_scope(conn, None), parse_filters({}), "grid")["features"]}
    for code, props in list(district.items())[:3]:
        one = hotspots(conn, resolve_scope(conn, code), parse_filters({}), "grid")
        assert [f["properties"] for f in one["features"]] == [props]


def test_hotspots_of_an_open_period_with_no_cases(nyc_db):
    """With no cases the open period has no span to halve: no hotspots, and no error."""
    engine = make_engine(nyc_db)
    with engine.connect() as empty:
        for table in ("case_event", *agg.TABLE):  # rolled back below
            empty.execute(text(f"DELETE FROM {table}"))
        found = hotspots(empty, resolve_scope(empty, "2"), parse_filters({}), "grid")
        empty.rollback()
    engine.dispose()
    assert found["features"] == []


def test_tiles_decode_to_the_expected_features(conn):
    scope = resolve_scope(conn, None)
    z, x, y = 12, 1206, 1538  # over the Bronx
    decoded = mapbox_vector_tile.decode(
        tile(conn, CATALOG.get("admin-4"), scope, parse_filters({}), z, x, y))
    codes = {f["properties"]["code"] for f in decoded["admin-4"]["features"]}
    expected = {r["code"] for r in sql(conn, """
        SELECT code FROM admin_unit WHERE level = 4 AND ST_Intersects(geom,
            ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326))""", z=z, x=x, y=y)}
    assert codes == expected and codes
    detail = mapbox_vector_tile.decode(tile(conn, CATALOG.get("cases"), scope,
                                            parse_filters({}), 14, 4825, 6155))
    ids = {f["properties"]["id"] for f in detail.get("cases", {"features": []})["features"]}
    inside = {r["id"] for r in sql(conn, """SELECT id FROM case_event WHERE geom &&
        ST_Transform(ST_TileEnvelope(14, 4825, 6155), 4326)""")}
    assert ids == inside


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_export_reopens_with_the_same_rows_and_codes(conn, tmp_path, fmt):
    scope = resolve_scope(conn, "2")
    out = tmp_path / f"bronx{FORMATS[fmt][0]}"
    result = export(conn, CATALOG.get("cases"), scope, parse_filters({}), fmt, out,
                    zone=NYC_ZONE)
    expected = {r["id"]: r["grid_code"] for r in sql(
        conn, "SELECT id, grid_code FROM case_event WHERE district_code = '2'")}
    assert result.rows == len(expected)
    if fmt == "html":
        html = out.read_text(encoding="utf-8")
        assert "http://" not in html.replace("http://www.w3.org", "")
        assert "https://" not in html
        assert html.count('"id": "') >= len(expected)
        return
    frame = _reopen(out, fmt)
    ids = frame["id"].astype(str).tolist()
    assert sorted(ids) == sorted(expected)
    grid_column = "grid_code" if "grid_code" in frame else "grid_code"
    got = {str(i): (None if pd.isna(g) else str(g)) for i, g in zip(ids, frame[grid_column],
                                                                    strict=True)}
    assert got == expected
    assert {"district_name", "street_name"} <= set(frame.columns)
    assert set(frame["district_name"]) == {"Bronx"}


def _reopen(path, fmt):
    if fmt in ("geojson", "gpkg"):
        return gpd.read_file(path)
    if fmt == "shp":
        frame = gpd.read_file(f"zip://{path}")  # 10-character field names, UTF-8 .cpg
        return frame.rename(columns={"dist_name": "district_name", "strt_name": "street_name"})
    if fmt == "csv":
        assert path.read_bytes()[:3] == b"\xef\xbb\xbf"  # BOM: Excel opens it as UTF-8
        return pd.read_csv(path, dtype=str, encoding="utf-8-sig")
    sheet = openpyxl.load_workbook(path, read_only=True).active
    header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    return pd.DataFrame([r + [None] * (len(header) - len(r)) for r in rows], columns=header)


def test_chinese_survives_every_tabular_format(fresh_db, tmp_path):
    """Shapefile .cpg, CSV BOM and XLSX keep 坪山's names intact."""
    from pathlib import Path

    from conftest import PRESETS

    from etl.load import load

    url = fresh_db()
    data = Path(__file__).resolve().parents[1] / "data" / "pingshan"
    load(url, "admin", [data / "district_440310_gcj02.geojson"],
         PRESETS / "pingshan-district.yaml")
    engine = make_engine(url)
    with engine.connect() as c:
        scope = resolve_scope(c, None)
        for fmt in ("shp", "csv", "xlsx", "gpkg"):
            out = tmp_path / f"d{FORMATS[fmt][0]}"
            export(c, CATALOG.get("admin-1"), scope, parse_filters({}), fmt, out, crs="gcj02",
                   zone="Asia/Shanghai")
            assert "坪山区" in _reopen(out, fmt)["name"].tolist()
    engine.dispose()


def test_bad_input_is_a_clear_error(conn):
    with pytest.raises(UnknownLayer, match="unknown layer 'nope'"):
        CATALOG.get("nope")
    with pytest.raises(UnknownScope, match="'XX99'"):
        resolve_scope(conn, "XX99")
    for params, name in (({"bbox": "1,2,3"}, "bbox"), ({"start": "soon"}, "start"),
                         ({"status": "lost"}, "status"), ({"range": "decade"}, "range"),
                         ({"start": "2011-03-05", "end": "2011-03-01"}, "end"),
                         ({"scope": "a;drop table x"}, "scope")):
        with pytest.raises(BadParameter, match=f"'{name}'"):
            parse_filters(params)


def test_http_api_answers_4xx_not_500(nyc_db, serve):
    import urllib.error

    server = serve(nyc_db, ONEMAP_TIMEZONE=NYC_ZONE)
    ok = json.load(server.open("/api/kpi?scope=2&range=all"))
    assert ok["cases"]["total"] > 0 and ok["children"]
    for path, status in (("/collections/nope/items", 404), ("/api/kpi?scope=XX", 404),
                         ("/api/kpi?bbox=a,b", 400), ("/collections/cases/items?limit=-1", 400),
                         ("/export/cases.pdf", 400), ("/tiles/cases/3/99/0.pbf", 400),
                         ("/api/hotspots?unit=square", 400)):
        with pytest.raises(urllib.error.HTTPError) as info:
            server.open(path)
        assert info.value.code == status, path
        assert "error" in json.load(info.value)
    first = server.open("/tiles/admin-4/12/1206/1538.pbf")
    assert first.headers["Cache-Control"] and first.headers["ETag"]
    with pytest.raises(urllib.error.HTTPError) as info:
        server.open("/tiles/admin-4/12/1206/1538.pbf",
                    headers={"If-None-Match": first.headers["ETag"]})
    assert info.value.code == 304


def test_owslib_lists_and_reads_a_collection(nyc_db, serve):
    from owslib.ogcapi.features import Features
    from owslib.util import Authentication

    server = serve(nyc_db, ONEMAP_TIMEZONE=NYC_ZONE)
    api = Features(server.url + "/ogc", auth=Authentication("tester", PASSWORD))
    ids = [c["id"] for c in api.collections()["collections"]]
    assert {"cases", "admin-4", "facilities"} <= set(ids)
    page = api.collection_items("cases", limit=10, scope="BRONX 12")
    assert page["numberMatched"] == 32 and len(page["features"]) == 10

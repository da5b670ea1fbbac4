"""A corpus of bad files through the ETL: each gives a clear message and loses nothing.

Every bad file is generated in ``tmp_path``. The database is a fresh one holding 坪山区 (the
preset) and a small synthetic hierarchy under it (2 streets, 4 communities, 8 grids cut from
the district outline), loaded through the ETL itself, so point loads can be placed.

Two kinds of outcome are checked:

* whole-file problems (broken GeoJSON, truncated zip, missing columns, merged XLSX header...)
  raise an :class:`OnemapError` whose message names the file (and row/field/cell when known),
  change nothing, and leave a ``failed`` batch with that message in ``load_batch``;
* row-level problems (bad dates, wrong CRS, swapped coordinates, duplicate ids, empty or
  invalid geometries) commit the batch; every row is loaded or kept in ``rejected_row`` with
  file, row number, field, a reason naming the problem and the raw source record.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import psycopg
import pyogrio
import pytest
import shapely
from psycopg import sql
from shapely.geometry import box, mapping

from etl.load import load
from etl.mapping import MappingError
from etl.readers import SourceError
from onemap.errors import OnemapError

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[1]
DISTRICT = ROOT / "data" / "pingshan" / "district_440310_gcj02.geojson"
DISTRICT_PRESET = ROOT / "etl" / "presets" / "pingshan-district.yaml"

ADMIN_MAPPING = "kind: admin\nfields:\n  code: code\n  name: name\n  parent_code: parent\n"
CASE_COLUMNS = ["编号", "渠道", "类别", "上报时间", "办结时间", "状态", "经度", "纬度"]
CASES_MAPPING = """\
kind: cases
fields:
  id: 编号
  channel: 渠道
  category_1: 类别
  reported_at: 上报时间
  closed_at: 办结时间
  status: {column: 状态, map: {已办结: closed, 办理中: open}}
geometry: {x: 经度, y: 纬度}
"""
XLSX_MAPPING = """\
kind: cases
fields:
  id: 编号
  channel: {value: 12345热线}
  category_1: {value: 城市管理}
  reported_at: 上报时间
  status: {column: 状态, map: {已办结: closed, 办理中: open}}
geometry: {x: 经度, y: 纬度}
"""
FACILITIES_MAPPING = """\
kind: facilities
fields:
  id: 编号
  kind: {value: school}
  name: 名称
"""


# --------------------------------------------------------------------------- shared helpers


def query(url: str, statement: str, *params) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(statement, params).fetchall()


def _halves(geom, vertical: bool) -> list:
    """``geom`` cut in two along the middle of its bounding box."""
    x0, y0, x1, y1 = geom.bounds
    if vertical:
        mid = (x0 + x1) / 2
        return [geom & box(x0 - 1, y0 - 1, mid, y1 + 1), geom & box(mid, y0 - 1, x1 + 1, y1 + 1)]
    mid = (y0 + y1) / 2
    return [geom & box(x0 - 1, y0 - 1, x1 + 1, mid), geom & box(x0 - 1, mid, x1 + 1, y1 + 1)]


def write_units(path: Path, units: list[tuple[str, str, str | None, object]]) -> Path:
    """A GeoJSON of admin units: (code, name, parent, shapely geometry or None)."""
    features = [{"type": "Feature", "properties": {"code": c, "name": n, "parent": p},
                 "geometry": None if g is None else mapping(g)} for c, n, p, g in units]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features},
                               ensure_ascii=False), encoding="utf-8")
    return path


def load_district(url: str):
    """Load 坪山区 with its preset; return its outline in WGS84 as stored."""
    report = load(url, "admin", [DISTRICT], DISTRICT_PRESET)
    assert report.status == "committed" and report.inserted == 1
    wkt = query(url, "SELECT ST_AsText(geom) FROM admin_unit WHERE level = 1")[0][0]
    return shapely.from_wkt(wkt)


def build_hierarchy(url: str, folder: Path):
    """坪山区 plus 2 streets, 4 communities and 8 grids cut from it, loaded through the ETL.

    Returns the area points can safely be drawn from: the union of the grids, shrunk by ~10 m
    so coordinates rounded to 6 decimals stay inside.
    """
    folder.mkdir(parents=True, exist_ok=True)
    district = load_district(url)
    levels: dict[int, list] = {2: [], 3: [], 4: []}
    for i, street in enumerate(_halves(district, vertical=True), start=1):
        street_code = f"440310{i:03d}"
        levels[2].append((street_code, f"测试街道{i}", "440310", street))
        for j, community in enumerate(_halves(street, vertical=False), start=1):
            community_code = f"{street_code}{j:03d}"
            levels[3].append((community_code, f"测试社区{i}{j}", street_code, community))
            for k, grid in enumerate(_halves(community, vertical=True), start=1):
                levels[4].append((f"{community_code}{k:02d}", f"测试网格{i}{j}{k}",
                                  community_code, grid))
    admin_mapping = folder / "admin.yaml"
    admin_mapping.write_text(ADMIN_MAPPING, encoding="utf-8")
    for level, units in levels.items():
        path = write_units(folder / f"level{level}.geojson", units)
        report = load(url, "admin", [path], admin_mapping, level=level)
        assert (report.status, report.inserted, report.rejected) == ("committed", len(units), 0)
    grids = shapely.union_all([g for *_, g in levels[4]])
    area = grids.buffer(-1e-4)
    shapely.prepare(area)
    return area


def points_inside(area, n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random (lon, lat) inside ``area``, rounded to 6 decimals (~0.1 m)."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = area.bounds
    xs, ys = np.empty(0), np.empty(0)
    while len(xs) < n:
        x, y = rng.uniform(x0, x1, 3 * n + 10), rng.uniform(y0, y1, 3 * n + 10)
        keep = shapely.contains_xy(area, x, y)
        xs, ys = np.concatenate([xs, x[keep]]), np.concatenate([ys, y[keep]])
    return np.round(xs[:n], 6), np.round(ys[:n], 6)


def write_csv(path: Path, rows: list[dict], columns: list[str] = CASE_COLUMNS) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows([[row.get(c) or "" for c in columns] for row in rows])
    return path


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def source_record(row: dict, columns: list[str] = CASE_COLUMNS) -> dict:
    """What ``rejected_row.raw`` should hold for a CSV row: every column, blank -> null."""
    return {c: (row.get(c) or None) for c in columns}


def stored_rejects(url: str, batch_id: int) -> dict[int, tuple]:
    """row_number -> (source_file, field, reason, raw) of a batch's rejected rows."""
    rows = query(url, "SELECT row_number, source_file, field, reason, raw FROM rejected_row "
                      "WHERE batch_id = %s ORDER BY row_number", batch_id)
    assert len({r[0] for r in rows}) == len(rows), "a row was rejected twice"
    return {r[0]: r[1:] for r in rows}


def snapshot(url: str, *, failed_batches: bool = False) -> dict[str, tuple]:
    """Row count and a hash of the rows of every table: what a load could have changed.

    Batches that did not commit (failed, or killed: running or interrupted) are left out
    unless ``failed_batches``: they are the one trace a failed load must leave (with the
    screens' change counter, ``data_change``, which every write of a batch row moves).
    """
    out = {}
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'spatial_ref_sys' ORDER BY 1")
            if failed_batches or r[0] != "data_change"]
        for table in tables:
            where = (sql.SQL("WHERE t.status NOT IN ('failed', 'running', 'interrupted')")
                     if table == "load_batch" and not failed_batches else sql.SQL(""))
            out[table] = conn.execute(sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) "
                "FROM {} t {}").format(sql.Identifier(table), where)).fetchone()
    return out


def last_batch_id(url: str) -> int:
    return query(url, "SELECT coalesce(max(id), 0) FROM load_batch")[0][0]


def check_row_level(url: str, report, path: Path, rows: list[dict],
                    expected: dict[int, tuple[str, list[str]]]) -> dict[int, tuple]:
    """The batch committed, every row is loaded or rejected as ``expected``.

    ``expected`` maps a 1-based row number to (field, regexes its reason must match).
    """
    assert report.status == "committed"
    assert report.read == len(rows) == report.loaded + report.rejected
    assert report.rejected == len(expected)
    assert report.inserted + report.updated + report.unchanged == report.loaded
    assert query(url, "SELECT status, read_count, loaded_count, rejected_count FROM load_batch "
                      "WHERE id = %s", report.batch_id) == [
        ("committed", report.read, report.loaded, report.rejected)]
    stored = stored_rejects(url, report.batch_id)
    assert sorted(stored) == sorted(expected)
    for number, (field, patterns) in expected.items():
        source_file, got_field, reason, _ = stored[number]
        assert source_file == str(path)
        assert got_field == field, (number, reason)
        for pattern in patterns:
            assert re.search(pattern, reason, re.I), (number, pattern, reason)
    kept = {rows[i]["编号"] for i in range(len(rows)) if i + 1 not in expected}
    ids = [row["编号"] for row in rows]
    loaded = query(url, "SELECT id FROM case_event WHERE id = ANY(%s)", ids)
    assert {r[0] for r in loaded} == kept
    return stored


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def db(fresh_db, tmp_path_factory):
    """(url, area): a fresh database with 坪山区 and a small synthetic hierarchy under it."""
    url = fresh_db()
    area = build_hierarchy(url, tmp_path_factory.mktemp("hierarchy"))
    return url, area


@pytest.fixture
def cases_yaml(tmp_path: Path) -> Path:
    return write_text(tmp_path / "cases.yaml", CASES_MAPPING)


def make_cases(area, prefix: str, n: int, seed: int = 3) -> list[dict]:
    """``n`` good case rows with ids ``prefix1..n`` at points inside the grids."""
    xs, ys = points_inside(area, n, seed)
    return [{"编号": f"{prefix}{i + 1}", "渠道": "12345热线", "类别": "城市管理",
             "上报时间": f"2024-03-{i % 28 + 1:02d} 09:30:00", "办结时间": "",
             "状态": "已办结" if i % 2 else "办理中",
             "经度": f"{xs[i]:.6f}", "纬度": f"{ys[i]:.6f}"} for i in range(n)]


# --------------------------------------------------------------------------- whole-file problems


def _facility_features(area, n: int) -> list[dict]:
    xs, ys = points_inside(area, n, seed=11)
    return [{"type": "Feature", "properties": {"编号": f"F{i}", "名称": f"学校{i}"},
             "geometry": {"type": "Point", "coordinates": [xs[i], ys[i]]}} for i in range(n)]


def _facilities_gdf(area, n: int) -> gpd.GeoDataFrame:
    xs, ys = points_inside(area, n, seed=12)
    return gpd.GeoDataFrame({"编号": [f"Z{i}" for i in range(n)],
                             "名称": [f"学校{i}" for i in range(n)]},
                            geometry=shapely.points(xs, ys), crs="EPSG:4326")


def _zipped_shapefile(area, folder: Path) -> Path:
    shp = folder / "shp"
    shp.mkdir()
    pyogrio.write_dataframe(_facilities_gdf(area, 300), shp / "schools.shp", encoding="UTF-8")
    target = folder / "schools.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(shp.iterdir()):
            archive.write(file, file.name)
    return target


def broken_geojson(area, tmp: Path):
    text = json.dumps({"type": "FeatureCollection", "features": _facility_features(area, 40)})
    path = write_text(tmp / "schools.geojson", text[: len(text) // 2])
    return "facilities", path, FACILITIES_MAPPING, SourceError, [r"GeoJSON"]


def geojson_not_json(area, tmp: Path):
    path = write_text(tmp / "schools.geojson", "编号,名称\nF1,学校\n")
    return "facilities", path, FACILITIES_MAPPING, SourceError, [r"corrupt|truncated|not .*GeoJSON"]


def truncated_zip(area, tmp: Path):
    whole = _zipped_shapefile(area, tmp).read_bytes()
    path = tmp / "schools_cut.zip"
    path.write_bytes(whole[: len(whole) // 2])
    return "facilities", path, FACILITIES_MAPPING, SourceError, [r"zip", r"truncated|corrupt"]


def damaged_zip_member(area, tmp: Path):
    """The central directory is intact but a member's compressed bytes are garbage."""
    source = _zipped_shapefile(area, tmp)
    with zipfile.ZipFile(source) as archive:
        info = archive.getinfo("schools.shp")
    data = bytearray(source.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + info.compress_size // 3
    data[start:start + 64] = bytes(b ^ 0xFF for b in data[start:start + 64])
    path = tmp / "schools_damaged.zip"
    path.write_bytes(bytes(data))
    return "facilities", path, FACILITIES_MAPPING, SourceError, [r"schools\.shp", r"damaged"]


def missing_columns(area, tmp: Path):
    rows = make_cases(area, "MC", 3)
    columns = [c for c in CASE_COLUMNS if c != "类别"]
    path = write_csv(tmp / "cases.csv", rows, columns)
    return "cases", path, CASES_MAPPING, MappingError, [
        r"'类别'", r"missing", r"编号, 渠道, 上报时间, 办结时间, 状态, 经度, 纬度"]


def xlsx_merged_header(area, tmp: Path):
    """Two header cells merged over 上报时间 (date and time columns): C1 is left empty."""
    wb = openpyxl.Workbook()
    sheet = wb.active
    sheet.append(["编号", "上报时间", None, "状态", "经度", "纬度"])
    sheet.merge_cells("B1:C1")
    sheet.append(["X1", "2024-03-01", "09:30", "已办结", 114.35, 22.7])
    path = tmp / "cases.xlsx"
    wb.save(path)
    return "cases", path, XLSX_MAPPING, SourceError, [r"\bC1\b", r"merged"]


def xlsx_title_row(area, tmp: Path):
    """A merged title row above the real header, as many exports have."""
    wb = openpyxl.Workbook()
    sheet = wb.active
    sheet.append(["坪山区12345工单导出（2024年3月）"])
    sheet.merge_cells("A1:F1")
    sheet.append(["编号", "上报时间", "办结时间", "状态", "经度", "纬度"])
    sheet.append(["X1", "2024-03-01 09:30", None, "已办结", 114.35, 22.7])
    path = tmp / "cases_title.xlsx"
    wb.save(path)
    return "cases", path, XLSX_MAPPING, SourceError, [r"\bB1\b", r"merged"]


def csv_unclosed_quote(area, tmp: Path):
    rows = make_cases(area, "UQ", 5)
    path = write_csv(tmp / "cases.csv", rows)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace("城市管理", '"城市管理', 1)  # data row 3
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return "cases", path, CASES_MAPPING, SourceError, [r"row 3\b", r"quote|never closed"]


WHOLE_FILE = {f.__name__: f for f in (
    broken_geojson, geojson_not_json, truncated_zip, damaged_zip_member, missing_columns,
    xlsx_merged_header, xlsx_title_row, csv_unclosed_quote)}


def _run_bad(db, tmp_path: Path, case: str):
    url, area = db
    kind, path, mapping_text, cause, patterns = WHOLE_FILE[case](area, tmp_path)
    mapping_path = write_text(tmp_path / f"{kind}.yaml", mapping_text)
    before, last = snapshot(url), last_batch_id(url)
    with pytest.raises(OnemapError) as info:
        load(url, kind, [path], mapping_path)
    return url, path, before, last, info.value, cause, patterns


@pytest.mark.parametrize("case", list(WHOLE_FILE))
def test_whole_file_problem_is_a_clear_error_and_changes_nothing(db, tmp_path, case):
    url, path, before, _, error, cause, patterns = _run_bad(db, tmp_path, case)
    message = str(error)
    assert str(path) in message, message
    for pattern in patterns:
        assert re.search(pattern, message, re.I), (pattern, message)
    assert "Traceback" not in message and len(message) < 1000
    # The domain error is the error itself or what the LoadError wraps.
    assert isinstance(error, cause) or isinstance(error.__cause__, cause), repr(error)
    assert snapshot(url) == before


@pytest.mark.parametrize("case", list(WHOLE_FILE))
def test_whole_file_problem_is_recorded_as_a_failed_batch(db, tmp_path, case):
    url, path, _, last, error, _, _ = _run_bad(db, tmp_path, case)
    batches = query(url, "SELECT kind, source, status, message, finished_at IS NOT NULL "
                         "FROM load_batch WHERE id > %s", last)
    assert len(batches) == 1, f"no failed batch recorded for: {error}"
    _, source, status, message, finished = batches[0]
    assert (status, finished) == ("failed", True)
    assert source == str(path)
    assert message and str(path) in message
    assert query(url, "SELECT count(*) FROM rejected_row WHERE batch_id > %s", last) == [(0,)]


# --------------------------------------------------------------------------- row-level problems


def test_bad_dates_are_rejected_with_their_field(db, tmp_path, cases_yaml):
    url, area = db
    rows = make_cases(area, "BD", 10)
    rows[1]["上报时间"] = "2024-13-45"
    rows[3]["上报时间"] = "yesterday"
    rows[4]["上报时间"] = "2024-02-30 10:00"
    rows[5]["上报时间"] = ""
    rows[6]["办结时间"] = "2024-03-07 25:61"
    rows[7]["上报时间"] = "2024/03/08 08:00"  # another spelling, still a date: loaded
    path = write_csv(tmp_path / "cases.csv", rows)
    report = load(url, "cases", [path], cases_yaml)
    stored = check_row_level(url, report, path, rows, {
        2: ("reported_at", [r"'2024-13-45'", r"date"]),
        4: ("reported_at", [r"'yesterday'", r"date"]),
        5: ("reported_at", [r"'2024-02-30 10:00'", r"date"]),
        6: ("reported_at", [r"missing"]),
        7: ("closed_at", [r"'2024-03-07 25:61'", r"date"]),
    })
    for number, (*_, raw) in stored.items():
        assert raw == source_record(rows[number - 1]), number
    # Good rows keep their wall-clock time, read in Asia/Shanghai.
    assert query(url, "SELECT to_char(reported_at AT TIME ZONE 'Asia/Shanghai', "
                      "'YYYY-MM-DD HH24:MI') FROM case_event WHERE id = 'BD8'") == [
        ("2024-03-08 08:00",)]
    assert any(k.startswith("reported_at") for k in report.by_reason)


def test_points_in_web_mercator_metres_read_as_wgs84_are_rejected(db, tmp_path, cases_yaml):
    url, area = db
    rows = make_cases(area, "WC", 8)
    for i in (2, 5):
        lon, lat = float(rows[i]["经度"]), float(rows[i]["纬度"])
        x, y = gpd.points_from_xy([lon], [lat], crs=4326).to_crs(3857)[0].coords[0]
        rows[i]["经度"], rows[i]["纬度"] = f"{x:.2f}", f"{y:.2f}"
    path = write_csv(tmp_path / "cases.csv", rows)
    report = load(url, "cases", [path], cases_yaml)
    stored = check_row_level(url, report, path, rows, {
        3: ("geometry", [r"far outside|outside the district", r"CRS"]),
        6: ("geometry", [r"far outside|outside the district", r"CRS"]),
    })
    for number, (*_, raw) in stored.items():
        assert raw == source_record(rows[number - 1])


def test_a_whole_file_in_the_wrong_crs_is_rejected_row_by_row_then_loads_with_crs(
        db, tmp_path, cases_yaml):
    url, area = db
    rows = make_cases(area, "WF", 6)
    for row in rows:
        x, y = gpd.points_from_xy([float(row["经度"])], [float(row["纬度"])],
                                  crs=4326).to_crs(3857)[0].coords[0]
        row["经度"], row["纬度"] = f"{x:.3f}", f"{y:.3f}"
    path = write_csv(tmp_path / "cases_3857.csv", rows)
    report = load(url, "cases", [path], cases_yaml)
    check_row_level(url, report, path, rows, {
        n: ("geometry", [r"wrong CRS"]) for n in range(1, 7)})
    assert report.loaded == 0
    fixed = load(url, "cases", [path], cases_yaml, crs="EPSG:3857")
    assert (fixed.status, fixed.inserted, fixed.rejected) == ("committed", 6, 0)


def test_swapped_latitude_and_longitude_are_rejected(db, tmp_path, cases_yaml):
    url, area = db
    rows = make_cases(area, "SW", 6)
    rows[0]["经度"], rows[0]["纬度"] = rows[0]["纬度"], rows[0]["经度"]
    rows[4]["经度"], rows[4]["纬度"] = rows[4]["纬度"], rows[4]["经度"]
    path = write_csv(tmp_path / "cases.csv", rows)
    report = load(url, "cases", [path], cases_yaml)
    stored = check_row_level(url, report, path, rows, {
        1: ("geometry", [r"swapped"]), 5: ("geometry", [r"swapped"])})
    assert stored[5][3] == source_record(rows[4])


@pytest.mark.parametrize("suffix", [".gpkg", ".shp"])
def test_a_file_that_declares_its_crs_is_converted(db, tmp_path, suffix):
    """A GeoPackage/shapefile in EPSG:3857 that says so (.prj, gpkg srs) needs no crs option."""
    url, area = db
    gdf = _facilities_gdf(area, 5).to_crs(3857)
    path = tmp_path / f"schools_3857{suffix}"
    pyogrio.write_dataframe(gdf, path)
    mapping_path = write_text(tmp_path / "facilities.yaml", FACILITIES_MAPPING)
    report = load(url, "facilities", [path], mapping_path)
    assert report.status == "committed" and report.read == 5
    assert report.rejected == 0, report.by_reason


def test_a_file_whose_declared_crs_is_wrong_is_rejected_row_by_row(db, tmp_path):
    """A shapefile whose .prj says WGS84 while its coordinates are metres."""
    url, area = db
    gdf = _facilities_gdf(area, 4).to_crs(3857).set_crs(4326, allow_override=True)
    gdf["编号"] = [f"WP{i}" for i in range(4)]
    path = tmp_path / "schools.shp"
    pyogrio.write_dataframe(gdf, path, encoding="UTF-8")
    mapping_path = write_text(tmp_path / "facilities.yaml", FACILITIES_MAPPING)
    report = load(url, "facilities", [path], mapping_path)
    assert report.status == "committed"
    assert (report.read, report.loaded, report.rejected) == (4, 0, 4)
    stored = stored_rejects(url, report.batch_id)
    assert sorted(stored) == [1, 2, 3, 4]
    for number, (source_file, field, reason, raw) in stored.items():
        assert source_file == str(path) and field == "geometry"
        assert "wrong CRS" in reason
        assert raw["编号"] == f"WP{number - 1}" and raw["geometry"].startswith("POINT (")


def test_duplicate_ids_keep_the_first_and_reject_the_others(db, tmp_path, cases_yaml):
    url, area = db
    rows = make_cases(area, "DU", 8)
    rows[4]["编号"] = "DU2"
    rows[6]["编号"] = "DU2"
    rows[7]["编号"] = "DU4"
    path = write_csv(tmp_path / "cases.csv", rows)
    report = load(url, "cases", [path], cases_yaml)
    check_row_level(url, report, path, rows, {
        5: ("id", [r"duplicate", r"row 2\b"]),
        7: ("id", [r"duplicate", r"row 2\b"]),
        8: ("id", [r"duplicate", r"row 4\b"]),
    })
    # The first occurrence is the one kept.
    assert query(url, "SELECT reported_at = %s::timestamptz FROM case_event WHERE id = 'DU2'",
                 "2024-03-02 09:30:00+08") == [(True,)]


def test_duplicate_ids_across_the_files_of_one_batch(db, tmp_path, cases_yaml):
    """Two exports loaded together that share an id: the later occurrence is rejected."""
    url, area = db
    first = make_cases(area, "DX", 3, seed=5)
    second = make_cases(area, "DY", 3, seed=6)
    second[0]["编号"] = "DX1"  # both files' row 1 carry the same id
    second[2]["编号"] = "DX2"
    path1 = write_csv(tmp_path / "cases_a.csv", first)
    path2 = write_csv(tmp_path / "cases_b.csv", second)
    report = load(url, "cases", [path1, path2], cases_yaml)
    assert report.status == "committed"
    assert report.read == 6 == report.loaded + report.rejected
    stored = query(url, "SELECT source_file, row_number, field, reason FROM rejected_row "
                        "WHERE batch_id = %s ORDER BY source_file, row_number", report.batch_id)
    assert [(f, n, fld) for f, n, fld, _ in stored] == [(str(path2), 1, "id"),
                                                       (str(path2), 3, "id")]
    assert all("duplicate" in reason for *_, reason in stored)
    assert query(url, "SELECT id FROM case_event WHERE id IN ('DX1', 'DX2', 'DX3', 'DY2') "
                      "ORDER BY id") == [("DX1",), ("DX2",), ("DX3",), ("DY2",)]


def test_rows_rejected_in_the_database_keep_their_source_record(db, tmp_path, cases_yaml):
    """raw is the record as read, whichever check (chunk or SQL) rejected the row."""
    url, area = db
    rows = make_cases(area, "RW", 6)
    rows[2]["编号"] = "RW1"  # duplicate: rejected by SQL
    rows[2]["上报时间"] = "2024-03-03 09:30"
    x0, y0, x1, y1 = area.bounds
    clear = area.buffer(0.002)  # well away from every grid, but inside the district's extent
    corner = next((x, y) for x in np.linspace(x0, x1, 40) for y in np.linspace(y0, y1, 40)
                  if not clear.contains(shapely.Point(x, y)))
    rows[4]["经度"], rows[4]["纬度"] = f"{corner[0]:.6f}", f"{corner[1]:.6f}"  # in no grid
    path = write_csv(tmp_path / "cases.csv", rows)
    report = load(url, "cases", [path], cases_yaml)
    stored = check_row_level(url, report, path, rows, {
        3: ("id", [r"duplicate"]), 5: ("geometry", [r"outside the district"])})
    for number, (*_, raw) in stored.items():
        assert raw == source_record(rows[number - 1]), (number, raw)


@pytest.mark.filterwarnings("ignore:OGRGeoJSONReadRawPoint:RuntimeWarning")
def test_points_without_geometry_are_rejected(db, tmp_path):
    url, area = db
    features = _facility_features(area, 5)
    for feature in features:
        feature["properties"]["编号"] = "NG" + feature["properties"]["编号"]
    features[1]["geometry"] = None
    features[3]["geometry"] = {"type": "Point", "coordinates": []}
    path = write_text(tmp_path / "schools.geojson",
                      json.dumps({"type": "FeatureCollection", "features": features},
                                 ensure_ascii=False))
    mapping_path = write_text(tmp_path / "facilities.yaml", FACILITIES_MAPPING)
    report = load(url, "facilities", [path], mapping_path)
    assert report.status == "committed"
    assert (report.read, report.loaded, report.rejected) == (5, 3, 2)
    stored = stored_rejects(url, report.batch_id)
    assert sorted(stored) == [2, 4]
    for number in (2, 4):
        source_file, field, reason, raw = stored[number]
        assert (source_file, field) == (str(path), "geometry")
        assert re.search(r"empty|missing|no location", reason)
        assert raw == features[number - 1]["properties"]
    assert query(url, "SELECT count(*) FROM facility WHERE batch_id = %s", report.batch_id) == [
        (3,)]


def test_empty_and_invalid_admin_geometries(fresh_db, tmp_path):
    """A bow-tie street is repaired (and said so); empty, missing and line geometries are not
    streets and are rejected with the raw record."""
    url = fresh_db()
    district = load_district(url)
    centre = district.representative_point()
    x, y, d = centre.x, centre.y, 0.004
    bow_tie = shapely.Polygon([(x - d, y - d), (x + d, y + d), (x + d, y - d), (x - d, y + d)])
    assert not bow_tie.is_valid
    square = box(x - d, y - d, x + d, y + d).intersection(district)
    units = [("S1", "蝴蝶街道", None, bow_tie), ("S2", "无形街道", None, None),
             ("S3", "空街道", None, shapely.Polygon()), ("S4", "正常街道", None, square),
             ("S5", "线状街道", None, shapely.LineString([(x, y), (x + d, y)]))]
    path = write_units(tmp_path / "streets.geojson", units)
    mapping_path = write_text(tmp_path / "admin.yaml", ADMIN_MAPPING)
    report = load(url, "admin", [path], mapping_path, level=2)
    assert report.status == "committed"
    assert (report.read, report.loaded, report.rejected) == (5, 2, 3)
    assert report.repaired == [1]
    stored = stored_rejects(url, report.batch_id)
    assert sorted(stored) == [2, 3, 5]
    for number, pattern in ((2, r"empty|missing"), (3, r"empty|missing"), (5, r"polygon")):
        source_file, field, reason, raw = stored[number]
        assert (source_file, field) == (str(path), "geometry")
        assert re.search(pattern, reason), reason
        assert raw["code"] == units[number - 1][0] and raw["name"] == units[number - 1][1]
    assert stored[5][3]["geometry"].startswith("LINESTRING")
    valid, parts, area = query(url, "SELECT ST_IsValid(geom), ST_NumGeometries(geom), "
                                    "ST_Area(geom) FROM admin_unit WHERE code = 'S1'")[0]
    assert valid and parts == 2
    assert area == pytest.approx(2 * d * d, rel=1e-6)
    # The repair is kept with the batch for a person to check.
    assert query(url, "SELECT report->'repaired_rows' FROM load_batch WHERE id = %s",
                 report.batch_id) == [([1],)]


# --------------------------------------------------------------------------- the CLI


def run_cli(url: str, kind: str, path: Path, mapping_path: Path):
    env = {**os.environ, "DATABASE_URL": url}
    env.pop("ONEMAP_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "onemap.cli", "load", kind, str(path), "--mapping",
         str(mapping_path)], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.mark.parametrize("case", ["missing_columns", "csv_unclosed_quote", "truncated_zip"])
def test_cli_exits_non_zero_with_a_message_not_a_traceback(db, tmp_path, case):
    url, area = db
    kind, path, mapping_text, _, patterns = WHOLE_FILE[case](area, tmp_path)
    mapping_path = write_text(tmp_path / f"{kind}.yaml", mapping_text)
    before = snapshot(url)
    result = run_cli(url, kind, path, mapping_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error:"), result.stderr
    assert str(path) in result.stderr.replace("\n", "")
    for pattern in patterns:
        assert re.search(pattern, result.stderr, re.I), (pattern, result.stderr)
    assert snapshot(url) == before


def test_cli_error_is_the_first_thing_on_stderr(db, tmp_path):
    """Not on a terminal (a cron job, a log file), stderr is the message and nothing else."""
    url, area = db
    kind, path, mapping_text, *_ = csv_unclosed_quote(area, tmp_path)
    result = run_cli(url, kind, path, write_text(tmp_path / "cases.yaml", mapping_text))
    assert result.returncode == 1
    assert result.stderr.startswith("error:"), repr(result.stderr[:80])
    assert result.stderr.count("\n") == 1, result.stderr


# --------------------------------------------------------------------------- hostile values

HOSTILE_COLUMNS = [*CASE_COLUMNS, "满意度"]
HOSTILE_MAPPING = CASES_MAPPING.replace("geometry:", "  satisfaction: 满意度\ngeometry:")


def test_one_bad_value_is_one_rejected_row_not_a_failed_batch(db, tmp_path):
    """Values that once aborted a whole load (a NUL, an infinite coordinate, numbers past
    any integer type) are rejected one row each, with their field and a reason."""
    url, area = db
    rows = make_cases(area, "HV", 9)
    for row in rows:
        row["满意度"] = "4"
    rows[0]["类别"] = "城市\x00管理"
    rows[1]["经度"] = "inf"
    rows[2]["满意度"] = "1e400"
    rows[3]["满意度"] = str(2 ** 63)
    rows[4]["满意度"] = "3000000000"
    rows[5]["纬度"] = "nan"
    rows[6]["满意度"] = "9"   # a number, but outside the column's 1-5
    path = write_csv(tmp_path / "hostile.csv", rows, HOSTILE_COLUMNS)
    mapping_path = write_text(tmp_path / "hostile.yaml", HOSTILE_MAPPING)
    report = load(url, "cases", [path], mapping_path)
    stored = check_row_level(url, report, path, rows, {
        1: ("category_1", [r"NUL"]),
        2: ("经度", [r"'inf'", r"finite|number"]),
        3: ("satisfaction", [r"1e400", r"range|finite"]),
        4: ("satisfaction", [str(2 ** 63), r"range"]),
        5: ("satisfaction", [r"3000000000", r"range"]),
        6: ("纬度", [r"'nan'", r"number"]),
        7: ("satisfaction", [r"'9'", r"1.+5"]),
    })
    # The raw record keeps the NUL as visible text (jsonb cannot hold the character).
    assert stored[1][3]["类别"] == "城市\\x00管理"
    assert stored[2][3]["经度"] == "inf"


def test_an_unexpected_error_still_records_the_batch_as_failed(db, tmp_path, cases_yaml,
                                                               monkeypatch):
    """A fault nobody foresaw (here: the transform raising) fails the load with a clear
    message and leaves the batch recorded as failed with it; nothing else changes."""
    url, area = db
    path = write_csv(tmp_path / "cases.csv", make_cases(area, "UE", 4))
    before = snapshot(url)

    def broken(chunk, ctx):
        raise RuntimeError("transform fault")

    monkeypatch.setattr("etl.load.transform", broken)
    with pytest.raises(OnemapError, match=r"unexpected error \(RuntimeError\): transform fault"):
        load(url, "cases", [path], cases_yaml)
    assert snapshot(url) == before
    assert query(url, "SELECT status, message FROM load_batch ORDER BY id DESC LIMIT 1") == [
        ("failed", "unexpected error (RuntimeError): transform fault")]


def test_the_cli_prints_markup_in_data_literally(db, tmp_path, cases_yaml):
    """A rejected value ``[/x]`` and a file named ``a[/x].csv`` are data, not rich markup:
    ``onemap load``, ``onemap rejects`` and ``onemap batches`` print them as they are."""
    url, area = db
    rows = make_cases(area, "MK", 3)
    rows[1]["上报时间"] = "[/x]"
    (tmp_path / "a[").mkdir()  # the path a[/x].csv: a folder "a[" holding "x].csv"
    path = write_csv(tmp_path / "a[/x].csv", rows)
    loaded = run_cli(url, "cases", path, cases_yaml)
    assert loaded.returncode == 0, loaded.stderr
    batch = last_batch_id(url)
    env = {**os.environ, "DATABASE_URL": url, "COLUMNS": "250"}
    env.pop("ONEMAP_DATABASE_URL", None)
    for args in (["rejects", str(batch)], ["batches"]):
        shown = subprocess.run([sys.executable, "-m", "onemap.cli", *args], env=env, cwd=ROOT,
                               capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, (args, shown.stderr[-2000:])
        assert "Traceback" not in shown.stderr
        assert "[/x]" in shown.stdout, (args, shown.stdout)


def test_admin_units_in_a_wrong_crs_are_rejected_not_placed_near_null_island(fresh_db, tmp_path):
    """Degree coordinates read as EPSG:3857 metres land within a metre of (0°, 0°): a district
    there is refused for its implausible size, and grids naming their parent explicitly are
    still checked against the parent's shape."""
    url = fresh_db()
    district = load_district(url)
    x0, y0, x1, y1 = district.bounds
    wrong_district = write_units(tmp_path / "district.geojson",
                                 [("440399", "错区", None, district)])
    mapping_path = write_text(tmp_path / "admin.yaml", ADMIN_MAPPING)
    report = load(url, "admin", [wrong_district], mapping_path, level=1, crs="EPSG:3857")
    assert (report.read, report.loaded, report.rejected) == (1, 0, 1)
    [(_, field, reason, _)] = stored_rejects(url, report.batch_id).values()
    assert field == "geometry" and re.search(r"m².*wrong CRS", reason), reason

    street = box(x0, y0, (x0 + x1) / 2, y1) & district
    assert load(url, "admin", [write_units(tmp_path / "street.geojson", [
        ("440310001", "左街道", "440310", street)])], mapping_path, level=2).rejected == 0
    cx, cy = street.representative_point().coords[0]
    grids = [(f"G{i}", f"社区{i}", "440310001", box(cx + i * 1e-3, cy, cx + (i + 1) * 1e-3,
                                                   cy + 1e-3)) for i in range(3)]
    path = write_units(tmp_path / "grids.geojson", grids)
    report = load(url, "admin", [path], mapping_path, level=3, crs="EPSG:3857")
    assert (report.read, report.loaded, report.rejected) == (3, 0, 3)
    for _, field, reason, _ in stored_rejects(url, report.batch_id).values():
        assert field == "geometry" and re.search(r"fits no parent|wrong CRS", reason), reason
    assert query(url, "SELECT count(*) FROM admin_unit WHERE code LIKE 'G%%'") == [(0,)]

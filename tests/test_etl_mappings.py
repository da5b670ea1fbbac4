"""Mappings that say what real exports say, on PostGIS and in headless Chromium: a status
decides what is closed, a source's own late flag is its on-time figure, and placement rules
tried in order place rows that name only a grid, a community, a street or nothing at all.
The test writes a small four-level district and a messy export, loads them through the ETL,
and reads the figures where a user reads them (``/api/kpi``, the KPI cards, the case detail),
against pandas over the file it wrote."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import psycopg
import pytest
from conftest import screenshot

from etl.load import load

pytestmark = [pytest.mark.db]

DISTRICT = "990000"
STREETS = {"990001": "东街道", "990002": "西街道"}
COMMUNITIES = {"990001001": "东一社区", "990001002": "东二社区",
               "990002001": "西一社区", "990002002": "西二社区"}
WEST, SOUTH, STEP = 114.0, 22.0, 0.1
CLOSED_STATUSES = {"已办结": "closed", "待回访": "closed", "办理中": "open", "已受理": "open"}


def box(x: float, y: float, w: float, h: float) -> dict:
    ring = [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]
    return {"type": "Polygon", "coordinates": [ring]}


def units() -> pd.DataFrame:
    """The district (0.4° × 0.2°), two streets side by side, two communities in each (south
    and north) and two grids in each community (west and east): code, name, level, parent,
    and the box's lower left corner and size."""
    rows = [(DISTRICT, "测试区", 1, None, WEST, SOUTH, 4 * STEP, 2 * STEP)]
    for i, (street, name) in enumerate(STREETS.items()):
        x = WEST + 2 * STEP * (1 - i)  # 东 is east
        rows.append((street, name, 2, DISTRICT, x, SOUTH, 2 * STEP, 2 * STEP))
        for j in range(2):
            community = f"{street}00{j + 1}"
            rows.append((community, COMMUNITIES[community], 3, street, x, SOUTH + j * STEP,
                         2 * STEP, STEP))
            for k in range(2):
                rows.append((f"{community}0{k + 1}", f"{COMMUNITIES[community]}第{k + 1}网格", 4,
                             community, x + k * STEP, SOUTH + j * STEP, STEP, STEP))
    return pd.DataFrame(rows, columns=["code", "name", "level", "parent", "x", "y", "w", "h"])


ADMIN_MAPPING = """kind: admin
level: {level}
fields:
  code: code
  name: name
{parent}"""

CASES_MAPPING = """kind: cases
timezone: Asia/Shanghai
fields:
  id: 工单编号
  channel: 渠道
  category_1: 一级分类
  reported_at: {column: 上报时间, format: "%Y-%m-%d %H:%M:%S"}
  closed_at: {column: 办结时间, format: "%Y-%m-%d %H:%M:%S"}
  status: {column: 办理状态, map: {已办结: closed, 待回访: closed, 办理中: open, 已受理: open}}
  on_time: {column: 是否超期, map: {是: false, 否: true}}
geometry: {x: 经度, y: 纬度}
place:
  - {code: 网格编码, level: 4}
  - {name: 社区名称, level: 3}
  - {name: 街道名称, level: 2}
  - {value: "990000"}
"""

HOW = ["point", "grid", "community", "street", "nothing", "outside"]


def messy_export(n: int, seed: int) -> pd.DataFrame:
    """An export as real ones come: a status and a late flag but mostly no closing time
    (and some open cases with a stale one); rows located by coordinates, by a grid code, by a
    community's or a street's name (with the suffixes offices add), by nothing, or by a point
    just outside the district. ``_how`` and ``_unit`` say where each row belongs."""
    gen = np.random.default_rng(seed)
    table = units()
    grids = table[table.level == 4].reset_index(drop=True)
    rows = []
    for i in range(n):
        how = HOW[gen.choice(len(HOW), p=[0.35, 0.15, 0.2, 0.15, 0.1, 0.05])]
        grid = grids.iloc[gen.integers(len(grids))]
        community, street = grid.code[:9], grid.code[:6]
        status = gen.choice(list(CLOSED_STATUSES))
        closed = CLOSED_STATUSES[status] == "closed"
        reported = pd.Timestamp("2026-11-01 08:00:00") + pd.Timedelta(
            minutes=int(gen.integers(0, 30 * 24 * 60)))
        stale = not closed and gen.random() < 0.3   # an open case with a closing time
        stamped = (closed and gen.random() < 0.3) or stale
        row = {"工单编号": f"T{i:05d}", "渠道": gen.choice(["12345", "@坪山"]),
               "一级分类": gen.choice(["市容环卫", "交通运输", "住房建设"]),
               "上报时间": reported.strftime("%Y-%m-%d %H:%M:%S"),
               "办结时间": ((reported + pd.Timedelta(hours=float(gen.uniform(0.1, 200))))
                        .strftime("%Y-%m-%d %H:%M:%S") if stamped else ""),
               "办理状态": status,
               "是否超期": (gen.choice(["是", "否"], p=[0.2, 0.8]) if closed else ""),
               "经度": "", "纬度": "", "网格编码": "", "社区名称": "", "街道名称": "",
               "_how": how, "_unit": grid.code}
        if how in ("point", "outside"):
            x = grid.x + gen.uniform(0.01, 0.09) + (0.45 if how == "outside" else 0)
            row["经度"], row["纬度"] = f"{x:.6f}", f"{grid.y + gen.uniform(0.01, 0.09):.6f}"
        elif how == "grid":
            row["网格编码"] = grid.code
        elif how == "community":
            row["社区名称"] = f" {COMMUNITIES[community]}{gen.choice(['', '居委会'])}"
            row["_unit"] = community
        elif how == "street":
            row["街道名称"] = STREETS[street] + gen.choice(["", "办事处"])
            row["_unit"] = street
        else:
            row["_unit"] = DISTRICT
        rows.append(row)
    return pd.DataFrame(rows)


def load_district(url: str, folder: Path, levels=(1, 2, 3, 4)) -> None:
    """The test district's levels, through admin loads of GeoJSON files written here."""
    table = units()
    for level in levels:
        rows = table[table.level == level]
        features = [{"type": "Feature", "geometry": box(r.x, r.y, r.w, r.h),
                     "properties": {"code": r.code, "name": r.name, "parent": r.parent}}
                    for r in rows.itertuples()]
        path = folder / f"level{level}.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
        mapping = folder / f"level{level}.yaml"
        mapping.write_text(ADMIN_MAPPING.format(
            level=level, parent="  parent_code: parent\n" if level > 1 else ""),
            encoding="utf-8")
        assert load(url, "admin", [path], mapping).rejected == 0


@pytest.fixture(scope="module")
def district(fresh_db, tmp_path_factory):
    """A database with the test district loaded, and the messy export loaded into it; the
    export's frame and the load's report."""
    url, folder = fresh_db(), tmp_path_factory.mktemp("mappings")
    load_district(url, folder)
    export = messy_export(400, seed=15)
    csv = folder / "export.csv"
    export.drop(columns=["_how", "_unit"]).to_csv(csv, index=False, encoding="utf-8")
    mapping = folder / "cases.yaml"
    mapping.write_text(CASES_MAPPING, encoding="utf-8")
    report = load(url, "cases", [csv], mapping)
    return url, export, report


def expected(export: pd.DataFrame) -> pd.DataFrame:
    """Pandas over the export: each loaded row's street (None: placed at the district),
    whether it is closed, its late flag, and whether it is placed above the grids."""
    kept = export[export._how != "outside"].copy()
    kept["street"] = kept._unit.where(kept._unit != DISTRICT, None).str[:6]
    kept["closed"] = kept["办理状态"].map(CLOSED_STATUSES) == "closed"
    kept["above_grid"] = kept._how.isin(["community", "street", "nothing"])
    return kept


def figures(rows: pd.DataFrame) -> dict:
    closed = rows[rows.closed]
    flagged = closed[closed["是否超期"].isin(["是", "否"])]
    return {"total": len(rows), "closed": int(rows.closed.sum()),
            "open": int((~rows.closed).sum()), "above_grid": int(rows.above_grid.sum()),
            "on_time_rate": round(float((flagged["是否超期"] == "否").mean()), 6)
            if len(flagged) else None}


def test_every_row_is_placed_by_its_first_rule_or_rejected(district):
    url, export, report = district
    assert report.read == len(export) == report.loaded + report.rejected
    outside = export[export._how == "outside"]
    assert report.rejected == len(outside) > 0
    with psycopg.connect(url) as conn:
        stored = pd.DataFrame(conn.execute(
            "SELECT id, coalesce(grid_code, community_code, street_code, district_code), "
            "placed_level, located_by FROM case_event").fetchall(),
            columns=["id", "unit", "placed_level", "located_by"]).set_index("id")
        rejected = dict(conn.execute("SELECT raw->>'工单编号', reason FROM rejected_row "
                                     "WHERE batch_id = %s", (report.batch_id,)).fetchall())
    kept = expected(export).set_index("工单编号")
    assert stored.unit.sort_index().to_dict() == kept._unit.sort_index().to_dict()
    levels = kept._how.map({"point": 4, "grid": 4, "community": 3, "street": 2, "nothing": 1})
    assert stored.placed_level.sort_index().to_dict() == levels.sort_index().to_dict()
    assert set(stored.located_by[kept._how == "point"]) == {"point"}
    assert set(rejected) == set(outside["工单编号"])
    assert all("outside the district" in reason for reason in rejected.values())


def test_an_unplaceable_row_names_every_rule_it_tried(fresh_db, tmp_path):
    """Without the last rule (the district), a row whose names match nothing is rejected
    with each rule's value and why it failed; read = loaded + rejected."""
    url = fresh_db()
    folder = tmp_path
    load_district(url, folder, levels=(1, 2, 3))
    csv = folder / "few.csv"
    csv.write_text("工单编号,渠道,一级分类,上报时间,办结时间,办理状态,是否超期,经度,纬度,网格编码,"
                   "社区名称,街道名称\n"
                   "A1,12345,市容环卫,2026-11-02 09:00:00,,已办结,否,,,,东一社区居委会,\n"
                   "A2,12345,市容环卫,2026-11-02 09:00:00,,已办结,否,,,990009999,无名社区,东街道\n"
                   "A3,12345,市容环卫,2026-11-02 09:00:00,,办理中,,,,990009999,无名社区,无名街道\n"
                   "A4,12345,市容环卫,2026-11-02 09:00:00,,办理中,,,,,,\n",
                   encoding="utf-8")
    mapping = folder / "cases.yaml"
    mapping.write_text(CASES_MAPPING.replace('  - {value: "990000"}\n', ""), encoding="utf-8")
    report = load(url, "cases", [csv], mapping)
    assert (report.read, report.loaded, report.rejected) == (4, 2, 2)
    with psycopg.connect(url) as conn:
        placed = dict(conn.execute("SELECT id, coalesce(community_code, street_code) "
                                   "FROM case_event").fetchall())
        reasons = dict(conn.execute("SELECT row_number, reason FROM rejected_row "
                                    "WHERE batch_id = %s", (report.batch_id,)).fetchall())
    assert placed == {"A1": "990001001", "A2": "990001"}  # A2: its third rule, the street
    assert reasons[3] == (
        "no coordinates, and no placement rule found a loaded unit: '990009999' by 网格编码 "
        "(code, level 4) is not a loaded unit; '无名社区' by 社区名称 (name, level 3) names no "
        "unit, or several; '无名街道' by 街道名称 (name, level 2) names no unit, or several")
    assert reasons[4] == "no coordinates and no admin code or name"


def test_kpis_from_the_api_equal_pandas_over_the_export(district, serve):
    """Closed by status, on time by the source's flag, cases placed above the grids: the
    district's and each street's figures as /api/kpi serves them."""
    url, export, _ = district
    server = serve(url)
    data = json.load(server.open(f"/api/kpi?scope={DISTRICT}&range=all"))
    rows = expected(export)
    want = figures(rows)
    got = data["cases"]
    assert {k: got[k] for k in want} == want
    assert want["closed"] > 0 and want["on_time_rate"] is not None
    # A closing time on an open case closes nothing: pandas counts closed by status only.
    assert (rows.closed != (rows["办结时间"] != "")).any()
    for child in data["children"]:
        mine = figures(rows[rows.street == child["code"]])
        assert {k: child[k] for k in mine} == mine, child["code"]
    with psycopg.connect(url) as conn:
        empty = conn.execute("SELECT count(*) FROM case_event WHERE status = 'closed' "
                             "AND closed_at IS NULL").fetchone()[0]
    assert empty > 0  # closed cases without a closing time are there, and counted


@pytest.mark.browser
def test_cards_and_case_detail_show_the_placement(district, serve, page):
    url, export, _ = district
    rows = expected(export)
    server = serve(url)
    server.login(page)
    page.goto(f"{server.url}/?range=all&lang=en")
    page.wait_for_selector("#kpi-above-grid", timeout=30_000)
    total = page.inner_text("#kpi-total").replace(",", "")
    assert int(total) == len(rows)
    above = page.inner_text("#kpi-above-grid")
    assert above.startswith(f"{int(rows.above_grid.sum())} of them")
    # The newest case placed by a name only: its detail says where and how.
    with psycopg.connect(url) as conn:
        newest = [r[0] for r in conn.execute(
            "SELECT id FROM case_event ORDER BY reported_at DESC LIMIT 10").fetchall()]
    named = rows[rows["工单编号"].isin(newest) & (rows._how == "community")]
    row = page.locator(f"#case-table tr:has(.case-link:text-is('{named['工单编号'].iloc[0]}'))")
    row.locator("td").first.click()
    page.wait_for_selector("#case-placed", timeout=30_000)
    assert page.inner_text("#case-placed") == \
        "Placed in: Community · by code or name (no coordinates)"
    screenshot(page, "case-detail-placed-community")
    # The wall says it too, across its cards, for its own period (a part of the desk's).
    page.goto(f"{server.url}/bigscreen?lang=en")
    page.wait_for_selector("#bs-kpi-cards #kpi-above-grid", timeout=30_000)
    wall = page.inner_text("#bs-kpi-cards #kpi-above-grid")
    assert wall.endswith(above.split(" ", 1)[1])
    assert 0 < int(wall.split(" ", 1)[0]) <= int(rows.above_grid.sum())
    screenshot(page, "bigscreen-placed-above-grid")
    assert page.errors == []


def test_open_status_with_a_closing_time_is_open_in_the_aggregates(district):
    """The aggregates a view reads agree with the cases: closed by status, on time by flag."""
    url, _, _ = district
    with psycopg.connect(url) as conn:
        rolled = conn.execute("SELECT sum(closed), sum(closed_on_time), sum(closed_late), "
                              "sum(above_grid) FROM case_unit_day "
                              "WHERE level = 1").fetchone()
        raw = conn.execute("SELECT count(*) FILTER (WHERE status = 'closed'), count(*) FILTER "
                           "(WHERE on_time), count(*) FILTER (WHERE NOT on_time), count(*) "
                           "FILTER (WHERE grid_code IS NULL) "
                           "FROM case_event").fetchone()
        stale = conn.execute("SELECT count(*), count(on_time), count(handling_hours) "
                             "FROM case_event WHERE status = 'open' AND closed_at IS NOT NULL"
                             ).fetchone()
    assert tuple(map(float, rolled)) == pytest.approx(tuple(map(float, raw)))
    assert stale[0] > 0 and stale[1:] == (0, 0)



def within_tolerance(got: float | None, want: float) -> bool:
    """A median as the view reports it (2 decimals) within 1 % or 5 minutes of the true one."""
    return got is not None and abs(got - want) <= max(0.01 * want, 5 / 60) + 0.005


def test_median_handling_time_is_within_a_percent_or_five_minutes(district, serve):
    """From the aggregates (no filter) and under a category filter, for the district and a
    street: the median of the closed cases' closing minus reporting times, as pandas has it."""
    url, export, _ = district
    rows = expected(export)
    done = rows[rows.closed & (rows["办结时间"] != "")]
    hours = (pd.to_datetime(done["办结时间"]) - pd.to_datetime(done["上报时间"])
             ).dt.total_seconds() / 3600
    server = serve(url)
    for scope, mine in ((DISTRICT, done.index), ("990001", done.index[done.street == "990001"])):
        data = json.load(server.open(f"/api/kpi?scope={scope}&range=all"))
        assert data["source"] == "rollup"
        want = float(hours[mine].median())
        assert within_tolerance(data["cases"]["median_hours"], want), (scope, want)
        assert data["cases"]["median_approx"] is False
        category = "市容环卫"
        picked = mine[done.loc[mine, "一级分类"] == category]
        data = json.load(server.open(
            f"/api/kpi?scope={scope}&range=all&category={quote(category)}"))
        assert data["cases"]["median_hours"] == pytest.approx(
            float(hours[picked].median()), abs=0.005)


def test_cases_closed_within_seconds_have_a_median_of_seconds(fresh_db, serve, tmp_path):
    """Every case closed within a second of being reported: the median is under five minutes
    (the hourly buckets made it 0.5 h)."""
    url = fresh_db()
    load_district(url, tmp_path)
    export = messy_export(60, seed=3)
    export["办理状态"] = "已办结"
    export["经度"], export["纬度"] = "", ""
    reported = pd.to_datetime(export["上报时间"])
    export["办结时间"] = (reported + pd.to_timedelta(np.arange(len(export)) % 2, unit="s")
                      ).dt.strftime("%Y-%m-%d %H:%M:%S")
    csv = tmp_path / "fast.csv"
    export.drop(columns=["_how", "_unit"]).to_csv(csv, index=False, encoding="utf-8")
    mapping = tmp_path / "cases.yaml"
    mapping.write_text(CASES_MAPPING, encoding="utf-8")
    load(url, "cases", [csv], mapping)
    data = json.load(serve(url).open(f"/api/kpi?scope={DISTRICT}&range=all"))
    assert data["cases"]["closed"] == len(export)
    assert data["cases"]["median_hours"] <= 5 / 60

"""The demo city's point generators (facilities, IoT devices and events, cases): no database.

They run on a stand-in district cut from a bbox around 坪山 (a few streets, communities and
irregular grids), so they do not depend on the admin generator; the cases CSV is also put
through the real ETL transform with the generated mapping, which must reject exactly the
rows the truth file lists.
"""

from __future__ import annotations

import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from democity import catalog, duplicates
from democity.cases import BAD_KINDS, period, truth_path, write_cases
from democity.facilities import facility_counts, write_facilities
from democity.iot import write_device_events, write_devices
from democity.sampling import district
from etl.mapping import load_mapping
from etl.readers import read_chunks
from etl.transform import Context, transform

BBOX = (114.30, 22.64, 114.42, 22.76)
STREETS = [("440310001", "坪山街道"), ("440310401", "深圳坪山综合保税区"),
           ("440310002", "马峦街道")]
COMMUNITIES = [
    ("440310001001", "六联社区居委会", 0), ("440310001002", "六和社区居委会", 0),
    ("440310001003", "坪山社区居委会", 0), ("440310401498", "深圳坪山综合保税区虚拟社区", 1),
    ("440310002001", "坪环社区居委会", 2), ("440310002002", "江岭社区居委会", 2),
]
SEEDS = np.array([[114.32, 22.66], [114.34, 22.73], [114.37, 22.69], [114.41, 22.65],
                  [114.39, 22.74], [114.35, 22.755]])
STAGES = ["上报时间", "受理时间", "分拨时间", "处置时间", "反馈时间", "办结时间", "评价时间"]
COLUMNS = ["id", "kind", "name", "address", "lon", "lat"]
# The reference time the generators run at: an afternoon, so its own day is cut short.
AS_OF = np.datetime64("2026-11-20T15:42:17", "s")
NOW = pd.Timestamp(AS_OF)


def standin_admin(n_grids: int = 60, seed: int = 7):
    """(grids, communities, streets) cut from BBOX: Voronoi grids grouped by nearest seed."""
    gen = np.random.default_rng(seed)
    box = shapely.box(*BBOX)
    points = shapely.points(gen.uniform(BBOX[0], BBOX[2], n_grids),
                            gen.uniform(BBOX[1], BBOX[3], n_grids))
    cells = shapely.intersection(shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(points), extend_to=box)), box)
    inner = shapely.point_on_surface(cells)
    owner = np.argmin((shapely.get_x(inner)[:, None] - SEEDS[:, 0]) ** 2
                      + (shapely.get_y(inner)[:, None] - SEEDS[:, 1]) ** 2, axis=1)
    grid_rows = []
    for c, (code, name, _) in enumerate(COMMUNITIES):
        for k, g in enumerate(np.flatnonzero(owner == c)):
            grid_rows.append((f"{code}{k + 1:03d}", f"{name[:2]}第{k + 1}网格", 4, code, cells[g]))
    cols = ["code", "name", "level", "parent_code", "geometry"]
    grids = gpd.GeoDataFrame(grid_rows, columns=cols, crs="EPSG:4326")
    comms = gpd.GeoDataFrame(
        [(code, name, 3, STREETS[s][0],
          shapely.union_all(grids.geometry[grids.parent_code == code].values))
         for code, name, s in COMMUNITIES], columns=cols, crs="EPSG:4326")
    streets = gpd.GeoDataFrame(
        [(code, name, 2, "440310",
          shapely.union_all(comms.geometry[comms.parent_code == code].values))
         for code, name in STREETS], columns=cols, crs="EPSG:4326")
    return grids, comms, streets


@pytest.fixture(scope="module")
def admin():
    return standin_admin()


@pytest.fixture(scope="module")
def cases(admin, tmp_path_factory):
    """A full size-S run: the CSV as text columns, its truth, and its path."""
    path = tmp_path_factory.mktemp("cases") / "cases.csv"
    seen = []
    truth = write_cases(*admin, "S", 11, path, progress=seen.append, as_of=AS_OF)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert sum(seen) == len(frame) == truth["rows"] == 50_000
    return frame, truth, path


@pytest.fixture(scope="module")
def good(cases):
    """The rows that are not deliberately bad."""
    frame, *_ = cases
    g = np.arange(len(frame))
    bad = (g >= 250) & ((g - 250) % 500 == 0) & (g > 0)
    return frame[~bad]


def _times(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_datetime(frame[column].replace("", None), format="%Y-%m-%d %H:%M:%S")


def _mapping(tmp_path, kind: str):
    path = tmp_path / f"{kind}.yaml"
    path.write_text(catalog.mappings()[kind], encoding="utf-8")
    return load_mapping(path, kind)


# -- catalog ----------------------------------------------------------------------------------
def test_catalog_tree_and_shares():
    assert catalog.tree_counts()[:3] == (18, 133, 353)
    assert 700 < catalog.tree_counts()[3] < 1000
    assert list(catalog.TOP_CATEGORIES)[0] == "市容环卫"
    for shares in (catalog.CHANNELS, catalog.CASE_TYPES, catalog.RESOLUTION_LEVELS,
                   {k: v[0] for k, v in catalog.TOP_CATEGORIES.items()}):
        assert sum(shares.values()) == pytest.approx(1.0)
    assert catalog.leaves().p.sum() == pytest.approx(1.0)
    assert set(catalog.CATEGORY_TREE) == set(catalog.TOP_CATEGORIES)


def test_mappings_load(tmp_path):
    for kind in ("facilities", "iot", "iot-events", "cases"):
        assert _mapping(tmp_path, kind).kind == kind


# -- cases ------------------------------------------------------------------------------------
def test_cases_deterministic(admin, tmp_path):
    paths = [tmp_path / f"{name}.csv" for name in ("a", "b", "c")]
    for path, seed in zip(paths, (5, 5, 6), strict=True):
        write_cases(*admin, "S", seed, path, n_cases=8_000, as_of=AS_OF)
    a, b, c = (p.read_bytes() for p in paths)
    assert a == b
    assert a != c
    assert truth_path(paths[0]).read_text() == truth_path(paths[1]).read_text()
    planted = [duplicates.truth_path(p).read_text() for p in paths]
    assert planted[0] == planted[1] != planted[2] and planted[0].count("\n") > 40


def test_columns_and_personal_data(cases):
    frame, *_ = cases
    assert list(frame.columns[:4]) == ["工单编号", "渠道", "诉求类型", "一级分类"]
    assert frame["工单编号"].str.fullmatch(r"PS\d{14}").all()
    named = frame["姓名"] != "匿名"
    assert frame.loc[named, "姓名"].str.fullmatch(r"[\u4e00-\u9fff]某\d{4}").all()
    assert frame.loc[named, "电话"].str.fullmatch(r"100\d{8}").all()
    assert (frame.loc[~named, "电话"] == "").all()
    assert 0.02 < (~named).mean() < 0.06


def test_channel_and_category_shares(good, cases):
    channels = good["渠道"].value_counts(normalize=True)
    for name, share in catalog.CHANNELS.items():
        assert abs(channels[name] - share) < 0.02, name
    tops = good["一级分类"].value_counts(normalize=True)
    assert len(tops) == 18
    for name, (share, *_) in catalog.TOP_CATEGORIES.items():
        assert abs(tops[name] - share) < 0.02, name
    assert abs(tops["市容环卫"] - 0.35) < 0.02
    types = good["诉求类型"].value_counts(normalize=True)
    assert abs(types["投诉"] - 0.93) < 0.01
    assert cases[1]["handling_units"] == good["承办单位"].replace("", None).nunique()


def test_on_time_share_and_deadlines(good):
    closed = good[good["办结时间"] != ""]
    on_time = (_times(closed, "办结时间") <= _times(closed, "办理时限")).mean()
    assert 0.88 <= on_time <= 0.92
    hours = (_times(good, "办理时限") - _times(good, "上报时间")).dt.total_seconds() / 3600
    assert hours.min() >= 24


def test_lifecycle_in_order(good):
    times = pd.DataFrame({c: _times(good, c) for c in STAGES})
    for earlier, later in zip(STAGES, STAGES[1:], strict=False):
        both = times[earlier].notna() & times[later].notna()
        assert (times.loc[both, earlier] < times.loc[both, later]).all(), (earlier, later)
    # A missing stage means every later one is missing too (评价 may be absent alone).
    for earlier, later in zip(STAGES[:-1], STAGES[1:-1], strict=False):
        assert not (times[earlier].isna() & times[later].notna()).any(), (earlier, later)
    closed = good["办理状态"] == catalog.STATUS_CLOSED
    assert (closed == times["办结时间"].notna()).all()
    assert (good.loc[closed, "满意度"].replace("", None).dropna().astype(int)
            .between(1, 5)).all()
    rated = good.loc[closed, "满意度"] != ""
    assert 0.6 < rated.mean() < 0.8
    sat = good.loc[closed & (good["满意度"] != ""), "满意度"].astype(int)
    assert (sat >= 4).mean() > 0.8


def test_open_cases_are_recent(good):
    reported = _times(good, "上报时间")
    is_open = good["办理状态"] != catalog.STATUS_CLOSED
    assert is_open[reported >= NOW - pd.Timedelta(days=3)].mean() > 0.3
    assert not is_open[reported < NOW - pd.Timedelta(days=90)].any()
    assert set(good.loc[is_open, "办理状态"]) <= set(catalog.STATUS_OPEN)
    assert (good.loc[is_open, "解决层级"] == "").all()


def test_cases_end_at_the_reference_time(good):
    """Nothing is reported or done after the reference time; its own day holds the share of
    a day's reports that its hours so far hold, the newest minutes old; the backlog then
    holds overdue cases and cases still in time, some due within a day."""
    times = pd.DataFrame({c: _times(good, c) for c in STAGES})
    for column in STAGES:
        assert (times[column].dropna() <= NOW).all(), column
    reported = times["上报时间"]
    assert NOW - reported.max() < pd.Timedelta(minutes=30)
    midnight = NOW.normalize()
    today = reported >= midnight
    before = reported[(reported >= midnight - pd.Timedelta(days=28)) & ~today]
    share = ((before - before.dt.normalize()) < NOW - midnight).mean()  # made by this hour
    expected = share * len(before) / 28
    assert 0.6 * expected < today.sum() < 1.4 * expected, (today.sum(), expected)
    is_open = good["办理状态"] != catalog.STATUS_CLOSED
    deadline = _times(good, "办理时限")
    assert (is_open & (deadline < NOW)).sum() > 10                       # overdue now
    assert (is_open & (deadline >= NOW)).sum() > 10                      # still in time
    assert (is_open & deadline.between(NOW, NOW + pd.Timedelta(hours=24))).sum() > 0


def test_resolution_levels(good):
    closed = good[good["办理状态"] == catalog.STATUS_CLOSED]
    levels = closed["解决层级"].value_counts(normalize=True)
    for name, share in catalog.RESOLUTION_LEVELS.items():
        assert abs(levels[name] - share) < 0.02, name


def test_code_only_rows(good, admin):
    code_only = good["经度"] == ""
    assert 0.025 < code_only.mean() < 0.035
    assert (good.loc[code_only, "纬度"] == "").all()
    assert good["社区编码"].isin(admin[1]["code"]).all()


def test_points_inside_their_grid_and_community(good, admin):
    grids = admin[0]
    located = good[good["经度"] != ""].sample(3000, random_state=1)
    points = shapely.points(located["经度"].astype(float), located["纬度"].astype(float))
    tree = shapely.STRtree(grids.geometry.values)
    point_idx, grid_idx = tree.query(points, predicate="within")
    assert len(np.unique(point_idx)) == len(points)        # every point is in a grid
    first = pd.Series(grid_idx).groupby(point_idx).first()
    parents = grids["parent_code"].to_numpy()[first.to_numpy()]
    assert (parents == located["社区编码"].to_numpy()).all()


def test_rejects_match_truth(cases, tmp_path):
    frame, truth, path = cases
    mapping = _mapping(tmp_path, "cases")
    ctx = Context(mapping, "wgs84", "Asia/Shanghai", BBOX)
    fields, read = [], 0
    for chunk in read_chunks(path, chunk_rows=20_000):
        result = transform(chunk, ctx)
        fields += list(result.rejects["field"])
        read += len(chunk.frame)
    assert read == truth["rows"]
    expected = {f: n for f, n in truth["rejects_by_field"].items() if f != "id"}
    assert dict(pd.Series(fields, dtype=object).value_counts()) == expected
    assert frame["工单编号"].duplicated().sum() == truth["rejects_by_field"]["id"]
    assert [k for k, _ in BAD_KINDS] == list(truth["rejects"])
    assert all(v["count"] > 0 for v in truth["rejects"].values())
    assert truth["rejects_total"] == len(frame) // 500


def test_hotspot_truth(cases, good):
    truth, frame = cases[1], good
    spots = truth["hotspots"]
    assert {h["kind"] for h in spots} == {"persistent", "emerging", "fading"}
    reported = _times(frame, "上报时间")
    first, end = (pd.Timestamp(t) for t in period("S", AS_OF))
    assert end == NOW and first == pd.Timestamp("2025-11-20")
    early = reported < first + pd.Timedelta(days=90)
    late = reported >= end - pd.Timedelta(days=90)
    lon = pd.to_numeric(frame["经度"], errors="coerce")
    lat = pd.to_numeric(frame["纬度"], errors="coerce")
    for h in spots:
        km = np.hypot((lon - h["lon"]) * 102.7, (lat - h["lat"]) * 110.57)
        near = (km <= h["radius_m"] / 1000) & (frame["三级分类"] == h["category_3"])
        n_early, n_late = int((near & early).sum()), int((near & late).sum())
        if h["kind"] == "emerging":
            assert n_late > 3 * max(n_early, 1), h
        elif h["kind"] == "fading":
            assert n_early > 3 * max(n_late, 1), h
        else:
            assert min(n_early, n_late) > 20, h
        assert h["cases_in_category"] > 0.6 * h["cases"]
        # Its footprint: the grids its cases fell in, most first, its centre's among them.
        assert sum(h["grids"].values()) == h["cases"] and h["grid_code"] in h["grids"]
        assert list(h["grids"].values()) == sorted(h["grids"].values(), reverse=True)


def test_daily_and_weekly_rhythm(good):
    reported = _times(good, "上报时间")
    hours = reported.dt.hour.value_counts()
    assert hours[10] > 5 * hours[3]
    assert hours[15] > 5 * hours[2]
    per_day = reported.dt.date.value_counts()
    weekday = pd.to_datetime(pd.Series(per_day.index)).dt.day_of_week.to_numpy()
    counts = per_day.to_numpy()
    assert counts[weekday >= 5].mean() < 0.85 * counts[weekday < 5].mean()


# -- facilities and devices -----------------------------------------------------------------
def test_facilities(admin, tmp_path):
    path = tmp_path / "facilities.csv"
    counts = write_facilities(*admin, 3, path)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert list(frame.columns) == COLUMNS
    assert frame["id"].is_unique
    assert dict(frame["kind"].value_counts()) == {k: v for k, v in counts.items() if v}
    assert counts == facility_counts(district(*admin, 3))
    assert 1000 < counts["垃圾投放点"] < 1500 and 500 < counts["公交站"] < 800
    assert counts["派出所"] == 2       # one per street, none in the bonded zone
    assert "六联社区党群服务中心" in set(frame["name"])
    assert frame["address"].str.startswith("坪山区").all()
    _inside(frame, admin)
    write_facilities(*admin, 3, tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_bytes() == path.read_bytes()


def _inside(frame: pd.DataFrame, admin) -> None:
    area = shapely.union_all(admin[0].geometry.values)
    points = shapely.points(frame["lon"].astype(float), frame["lat"].astype(float))
    assert shapely.contains_xy(area, shapely.get_x(points), shapely.get_y(points)).all()


def test_devices_status_mix_and_clusters(admin, tmp_path):
    path = tmp_path / "devices.csv"
    summary = write_devices(*admin, 4, path, as_of=AS_OF)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert list(frame.columns) == ["id", "kind", "name", "status", "last_seen", "lon", "lat"]
    assert 5000 < len(frame) < 12000 and frame["id"].is_unique
    assert set(frame["kind"]) == set(catalog.DEVICE_KINDS)
    mix = frame["status"].value_counts(normalize=True)
    assert abs(mix["online"] - 0.93) < 0.005
    assert abs(mix["offline"] - 0.055) < 0.005
    assert abs(mix["alarm"] - 0.015) < 0.003
    alarms = frame[frame["status"] == "alarm"]
    assert summary["alarms_in_clusters"] > 0.5 * len(alarms)
    assert set(alarms.loc[alarms["kind"] == "水位传感器", "id"])   # flooded low grids
    seen = pd.to_datetime(frame["last_seen"])
    assert (seen <= NOW).all()
    # Devices still reporting were heard of minutes before the reference time.
    reporting = frame["status"] != "offline"
    assert (seen[reporting] >= NOW - pd.Timedelta(minutes=10)).all()
    _inside(frame, admin)


def test_device_events_end_in_current_status(admin, tmp_path):
    devices, events = tmp_path / "devices.csv", tmp_path / "events.csv"
    write_devices(*admin, 4, devices, as_of=AS_OF)
    summary = write_device_events(*admin, "S", 4, events, as_of=AS_OF)
    dev = pd.read_csv(devices, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    ev = pd.read_csv(events, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert len(ev) == summary["status_events"] + summary["readings"]
    assert 100_000 < summary["readings"] < 400_000
    assert not ev.duplicated(["device_id", "ts", "event_type", "metric"]).any()
    assert set(ev["device_id"]) <= set(dev["id"])
    status = ev[ev["event_type"] == "status"].sort_values(["device_id", "ts"])
    last = status.groupby("device_id")["status"].last()
    current = dev.set_index("id")["status"]
    assert (last.reindex(current.index) == current).all()
    offline = dev[dev["status"] == "offline"].set_index("id")["last_seen"]
    went = status[status["status"] == "offline"].groupby("device_id")["ts"].last()
    assert (went.reindex(offline.index) == offline).all()
    readings = ev[ev["event_type"] == "reading"]
    assert set(readings["metric"]) == {catalog.WATER_METRIC}
    level = readings["value"].astype(float)
    alarmed = dev.loc[(dev["status"] == "alarm") & (dev["kind"] == "水位传感器"), "id"]
    final = readings.assign(level=level).groupby("device_id")["level"].last()
    assert (final[alarmed] >= catalog.WATER_ALARM_M).all()
    # Every event lies before the reference time; the sensors keep their own schedules, so
    # the newest reading is minutes old and each reporting sensor's is under an hour old.
    assert (pd.to_datetime(ev["ts"]) < NOW).all()
    ts = pd.to_datetime(readings["ts"])
    assert NOW - ts.max() < pd.Timedelta(minutes=5)
    newest = ts.groupby(readings["device_id"]).max()
    reporting = dev.loc[(dev["kind"] == "水位传感器") & (dev["status"] != "offline"), "id"]
    assert (newest[reporting] >= NOW - pd.Timedelta(hours=1)).all()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", ev["ts"].iloc[0])
    truth = json.loads(json.dumps(summary))
    assert truth["interval_s"] == 3600

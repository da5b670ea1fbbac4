"""Nothing silently cut, in headless Chromium on the demo city S: the device layer draws
every device of the view and every alarm; the alarm list has every alarm with when it
began and for how long, and a click on one shows the device on the map; case points above
the community level are binned with counts that add up; a layer or list that shows fewer
than its view holds says 显示 N / 共 M. Every figure is checked against plain SQL or pandas
on the raw tables."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pandas as pd
import psycopg
import pytest
from conftest import ARTIFACTS, screenshot

pytestmark = [pytest.mark.db, pytest.mark.browser]

ZONE = "Asia/Shanghai"
WAIT = 60_000  # ms: a first view on a busy machine (its test runs beside others)
GRAPH = "document.querySelector('#map-box .js-plotly-plot')"
# The map's traces once plotly has drawn the view: name, point count, counts of bins.
TRACES = f"""() => {{ const gd = {GRAPH};
    return gd && gd._fullData ? gd._fullData.map(t => ({{
        name: t.name, type: t.type, n: (t.lon || []).length,
        ids: t.ids ? Array.from(t.ids) : null,
        counts: t.customdata ? Array.from(t.customdata) : null}})) : null; }}"""
NOTES = f"""() => {{ const gd = {GRAPH};
    return gd && gd.layout ? (gd.layout.annotations || []).map(a => a.text) : []; }}"""


def sql(url: str, query: str, *params):
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def traces(page, prefix: str, want_any: bool = True) -> list[dict]:
    """The drawn traces whose name starts with ``prefix`` (waiting for them to be there)."""
    if want_any:
        page.wait_for_function(f"p => ({TRACES})()?.some(t => t.name.startsWith(p))",
                               arg=prefix, timeout=WAIT)
    return [t for t in page.evaluate(TRACES) if t["name"].startswith(prefix)]


def largest_street(url: str) -> str:
    return sql(url, "SELECT street_code FROM iot_device GROUP BY 1 "
                    "ORDER BY count(*) DESC LIMIT 1")[0][0]


def alarm_starts(url: str) -> pd.DataFrame:
    """When each device now in alarm went into alarm, from its raw status events: the
    first alarm event after its last event of another status (pandas, not the app's SQL)."""
    events = pd.DataFrame(sql(
        url, "SELECT e.device_id, e.ts, e.status FROM iot_event e JOIN iot_device d "
             "ON d.id = e.device_id WHERE d.status = 'alarm' AND e.event_type = 'status'"),
        columns=["device_id", "ts", "status"])
    events["ts"] = pd.to_datetime(events["ts"], utc=True)
    devices = pd.DataFrame(sql(url, "SELECT id FROM iot_device WHERE status = 'alarm'"),
                           columns=["id"])
    starts = {}
    for device, group in events.sort_values("ts").groupby("device_id"):
        other = group[group["status"] != "alarm"]
        after = group if other.empty else group[group["ts"] > other["ts"].max()]
        alarms = after[after["status"] == "alarm"]
        starts[device] = alarms["ts"].min() if len(alarms) else None
    devices["since"] = devices["id"].map(starts)
    return devices.set_index("id")


def minutes_shown(text: str) -> tuple[int, int]:
    """The span of minutes a shown duration stands for (whole units, rounded down)."""
    if m := re.fullmatch(r"(\d+)天(\d+)小时", text):
        low = int(m[1]) * 1440 + int(m[2]) * 60
        return low, low + 59
    if m := re.fullmatch(r"(\d+)小时(\d+)分", text):
        low = int(m[1]) * 60 + int(m[2])
        return low, low
    m = re.fullmatch(r"(\d+)分钟", text)
    assert m, f"not a duration: {text!r}"
    return int(m[1]), int(m[1])


def test_device_layer_draws_every_device_and_every_alarm(city_db, serve, page):
    server = serve(city_db)
    server.login(page)
    for scope in (None, largest_street(city_db)):
        where, args = ("street_code = %s", (scope,)) if scope else ("TRUE", ())
        total, alarms = sql(city_db, f"SELECT count(*), count(*) FILTER (WHERE status = "
                                     f"'alarm') FROM iot_device WHERE {where}", *args)[0]
        page.goto(server.url + "/?range=all&layers=units,iot" +
                  (f"&scope={scope}" if scope else ""))
        page.wait_for_function(f"n => ({TRACES})()?.filter(t => t.name.startsWith('物联设备'))"
                               ".reduce((s, t) => s + t.n, 0) === n", arg=total, timeout=WAIT)
        drawn = traces(page, "物联设备")
        assert sum(t["n"] for t in drawn) == total
        assert [t["n"] for t in drawn if t["name"].endswith("告警")] == [alarms]
        assert page.evaluate(NOTES) == []  # all drawn: nothing to say
        if scope is None:
            assert total > 5_000  # more than the map drew before
            page.wait_for_timeout(1500)
            screenshot(page, "iot-layer-full")
    assert page.errors == []


def test_alarm_list_counts_times_and_click_to_the_device(city_db, serve, page):
    starts = alarm_starts(city_db)
    server = serve(city_db)
    server.login(page)
    page.goto(server.url + "/?range=all&layers=units,iot")
    page.locator(".tab", has_text="设备告警").click()
    page.wait_for_selector("#alarm-count", timeout=WAIT)
    assert page.inner_text("#alarm-count") == f"共 {len(starts):,} 条"
    rows = page.evaluate("""() => Array.from(document.querySelectorAll('tr.alarm-row'))
        .map(r => ({id: JSON.parse(r.id).id, since: r.querySelector('.alarm-since').innerText,
                    for: r.querySelector('.alarm-for').innerText}))""")
    now = datetime.now(UTC)
    assert sorted(r["id"] for r in rows) == sorted(starts.index)
    for row in rows:
        since = starts.loc[row["id"], "since"]
        assert row["since"] == since.tz_convert(ZONE).strftime("%Y-%m-%d %H:%M")
        low, high = minutes_shown(row["for"])
        age = (now - since).total_seconds() / 60
        assert low - 2 <= age <= high + 2, (row, age)
    shown = [starts.loc[r["id"], "since"] for r in rows]
    assert shown == sorted(shown, reverse=True)  # newest alarm first
    page.locator("section.bottom").screenshot(path=str(ARTIFACTS / "alarm-list.png"))

    # A click on an alarm: the device goes into the URL and the map centres on it.
    target = rows[7]["id"]
    lon, lat = sql(city_db, "SELECT ST_X(geom), ST_Y(geom) FROM iot_device WHERE id = %s",
                   target)[0]
    page.click("tr.alarm-row >> nth=7")
    page.wait_for_function("d => new URLSearchParams(location.search).get('device') === d",
                           arg=target, timeout=10_000)
    focus = traces(page, "选中设备")
    assert focus[0]["ids"] == [target]
    page.wait_for_function(
        f"""([lon, lat]) => {{ const m = {GRAPH}._fullLayout.map._subplot.map;
            const c = m.getCenter(); return !m.isMoving() && Math.abs(c.lng - lon) < 1e-5
            && Math.abs(c.lat - lat) < 1e-5 && m.getZoom() >= 15; }}""",
        arg=[lon, lat], timeout=15_000)
    assert "selected" in page.get_attribute("tr.alarm-row >> nth=7", "class")
    page.wait_for_timeout(1000)
    screenshot(page, "alarm-focus")
    # The link restores it: another page opened on the URL shows the same device.
    other = page.context.new_page()
    other.goto(page.url)
    other.wait_for_function(f"d => ({TRACES})()?.some(t => t.ids && t.ids[0] === d)",
                            arg=target, timeout=WAIT)
    other.close()
    assert page.errors == []


def test_limits_are_said_and_alarms_never_cut(city_db, serve, page):
    total, alarms = sql(city_db, "SELECT count(*), count(*) FILTER (WHERE status = 'alarm') "
                                 "FROM iot_device")[0]
    cases = sql(city_db, "SELECT count(*) FROM case_event")[0][0]
    server = serve(city_db, ONEMAP_MAP_POINT_LIMIT="1000", ONEMAP_ALARM_LIST_LIMIT="50")
    server.login(page)
    page.goto(server.url + "/?range=all&layers=units,iot")
    page.wait_for_function(f"() => ({NOTES})().length", timeout=WAIT)
    drawn = traces(page, "物联设备")
    assert sum(t["n"] for t in drawn) == 1000
    assert [t["n"] for t in drawn if t["name"].endswith("告警")] == [alarms]  # all of them
    assert page.evaluate(NOTES) == [f"物联设备：显示 1,000 / 共 {total:,}"]
    assert page.inner_text("#case-count") == f"显示 20 / 共 {cases:,}"
    page.locator(".tab", has_text="设备告警").click()
    page.wait_for_selector("#alarm-count")
    assert page.inner_text("#alarm-count") == f"显示 50 / 共 {alarms:,}"
    assert page.locator("tr.alarm-row").count() == 50
    page.locator(".tab", has_text="热点").click()
    assert page.inner_text("#hotspot-count") == "热点按需计算：请在“图层”中打开“热点网格”"
    screenshot(page, "layer-limit-note")
    assert page.errors == []


def test_hotspot_list_says_how_many_it_shows(city_db, serve, page):
    """The list's 显示 N / 共 M: M the hot grids the map outlines, N its rows."""
    server = serve(city_db)
    server.login(page)
    page.goto(server.url + "/?range=all&layers=units,hotspots")
    hot = traces(page, "热点网格")[0]
    page.wait_for_timeout(500)
    total = page.evaluate(f"() => {GRAPH}._fullData.find(t => t.name === '热点网格')"
                          ".locations.length")
    assert hot and total > 0
    page.locator(".tab", has_text="热点").click()
    shown = min(total, 30)
    assert page.inner_text("#hotspot-count") == (
        f"显示 30 / 共 {total:,}" if total > shown else f"共 {total:,} 条")
    assert page.locator("#hotspot-list tbody tr").count() == shown
    assert page.errors == []


@pytest.mark.parametrize("level", ["district", "street"])
def test_case_points_are_binned_with_counts_above_the_community(city_db, serve, page, level):
    scope = largest_street(city_db) if level == "street" else None
    where, args = ("street_code = %s", (scope,)) if scope else ("TRUE", ())
    located, unlocated = sql(city_db, f"SELECT count(geom), count(*) - count(geom) "
                                      f"FROM case_event WHERE {where}", *args)[0]
    server = serve(city_db)
    server.login(page)
    page.goto(server.url + "/?range=all&layers=units,cases" + (f"&scope={scope}" if scope
                                                               else ""))
    binned = traces(page, "诉求点位")
    assert len(binned) == 1 and binned[0]["n"] == len(binned[0]["counts"]) > 50
    assert sum(binned[0]["counts"]) == located
    notes = page.evaluate(NOTES)
    assert len(notes) == 1 and f"{located:,} 件按 {binned[0]['n']:,} 个六边形汇总" in notes[0]
    if unlocated:
        assert f"另有 {unlocated:,} 条无坐标" in notes[0]
    page.wait_for_timeout(1500)
    screenshot(page, f"case-bins-{level}")
    assert page.errors == []


def test_an_empty_case_layer_says_why(city_db, serve, page):
    server = serve(city_db)
    server.login(page)
    page.goto(server.url + "/?start=2001-01-01&end=2001-01-02&layers=units,cases")
    page.wait_for_function(f"() => ({NOTES})().length", timeout=WAIT)
    assert page.evaluate(NOTES) == ["诉求点位：当前筛选下没有数据"]
    assert json.dumps(page.evaluate(TRACES)).count("诉求点位") == 0

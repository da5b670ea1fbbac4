"""Freshness per feed, read from the page and checked against plain SQL: 数据截至 is each
feed's newest event; a feed older than its limit puts a warning on the desk and on the
wall; a device's status comes from its last report's age (KPIs, map, lists); a period
without cases says when the newest one was and offers the range holding it."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import psycopg
import pytest
from conftest import ensure_user, screenshot

pytestmark = [pytest.mark.db, pytest.mark.browser]

ZONE = ZoneInfo("Asia/Shanghai")
CASES_LIMIT = timedelta(hours=24)   # the settings' defaults
IOT_LIMIT = timedelta(minutes=15)
OFFLINE_AFTER = timedelta(minutes=30)


def one(url: str, query: str, *params):
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchone()


def local_text(moment: datetime) -> str:
    return moment.astimezone(ZONE).strftime("%Y-%m-%d %H:%M")


def newest(url: str) -> tuple[datetime, datetime, datetime]:
    """The database's clock, the newest case reported and the newest IoT event."""
    return one(url, "SELECT now(), (SELECT max(reported_at) FROM case_event), "
                    "(SELECT max(ts) FROM iot_event)")


def test_stale_feeds_are_said_on_desk_and_wall(city_db, serve, page, browser):
    now, case, event = newest(city_db)
    assert now - case > CASES_LIMIT and now - event > IOT_LIMIT  # the demo ended days ago
    server = serve(city_db)
    server.login(page)
    page.goto(server.url + "/?range=all")
    page.wait_for_selector("#asof-cases", timeout=60_000)
    assert page.inner_text("#asof-cases").endswith(local_text(case))
    assert page.inner_text("#asof-iot").endswith(local_text(event))
    days = (now - case).days
    assert f"已{days}天" in page.inner_text("#stale-cases")
    assert local_text(case) in page.inner_text("#stale-cases")
    assert local_text(event) in page.inner_text("#stale-iot")
    assert page.locator("#stale-cases").is_visible() and page.locator("#stale-iot").is_visible()
    screenshot(page, "stale-feed-desk")

    token = ensure_user(city_db, "wall", "kiosk")
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    wall = context.new_page()
    wall.goto(server.url + f"/bigscreen?tour=off&kiosk={token}")
    wall.wait_for_selector("#bs-banner #stale-cases", timeout=30_000)
    assert local_text(case) in wall.inner_text("#stale-cases")
    assert wall.locator("#stale-iot").is_visible()
    assert wall.inner_text("#asof-cases").endswith(local_text(case))
    wall.wait_for_timeout(1500)
    screenshot(wall, "stale-feed-wall")
    context.close()


def test_limits_come_from_the_settings(city_db, serve, page):
    """With limits longer than the feeds' ages, the same data is not stale."""
    now, case, event = newest(city_db)
    hours = (now - case) / timedelta(hours=1) + 24
    minutes = (now - event) / timedelta(minutes=1) + 60
    server = serve(city_db, ONEMAP_STALE_CASES_HOURS=str(hours),
                   ONEMAP_STALE_IOT_MINUTES=str(minutes))
    server.login(page)
    page.goto(server.url + "/?range=all")
    page.wait_for_selector("#asof-cases", timeout=60_000)
    page.wait_for_selector("#kpi-total", timeout=30_000)
    assert page.locator("#stale-cases").count() == 0 and page.locator("#stale-iot").count() == 0
    assert page.inner_text("#asof-cases").endswith(local_text(case))


def device_figures(url: str, offline_after: timedelta) -> dict[str, int]:
    """Devices by status now, recomputed from the raw table: silent longer than
    ``offline_after`` is offline, an alarm stays an alarm."""
    total, online, alarm = one(url, """
        SELECT count(*),
               count(*) FILTER (WHERE status = 'online' AND last_seen >= now() - %s),
               count(*) FILTER (WHERE status = 'alarm')
        FROM iot_device""", offline_after)
    return {"total": total, "online": online, "alarm": alarm,
            "offline": total - online - alarm}


def map_statuses(page) -> dict[str, int]:
    """The device traces on the map: status label → points drawn."""
    page.wait_for_function(
        "() => (document.querySelector('#map-box .js-plotly-plot')?._fullData || [])"
        ".some(t => (t.name || '').startsWith('物联设备'))", timeout=30_000)
    traces = page.evaluate(
        "() => document.querySelector('#map-box .js-plotly-plot')._fullData"
        ".filter(t => (t.name || '').startsWith('物联设备'))"
        ".map(t => [t.name.split(' · ')[1], t.lon.length])")
    return dict(traces)


@pytest.mark.parametrize("offline_minutes", [None, 60 * 24 * 365])
def test_device_status_comes_from_the_last_report(city_db, serve, page, offline_minutes):
    after = timedelta(minutes=offline_minutes) if offline_minutes else OFFLINE_AFTER
    expected = device_figures(city_db, after)
    stored_online, = one(city_db, "SELECT count(*) FROM iot_device WHERE status = 'online'")
    if offline_minutes is None:  # the demo's reports are days old: nothing is online
        assert expected["online"] == 0 < stored_online
    else:  # a year's patience: every device online as last reported
        assert expected["online"] == stored_online
    env = {"ONEMAP_DEVICE_OFFLINE_MINUTES": str(offline_minutes)} if offline_minutes else {}
    server = serve(city_db, **env)
    server.login(page)
    page.goto(server.url + "/?range=all&layers=units,iot")
    page.wait_for_selector("#kpi-iot_online", timeout=30_000)
    rate = expected["online"] / expected["total"] * 100
    assert page.inner_text("#kpi-iot_online") == f"{rate:.1f}%"
    assert page.inner_text("#kpi-alarms") == f"{expected['alarm']:,}"
    drawn = map_statuses(page)  # every device of the district, by its status now
    labels = {"online": "在线", "offline": "离线", "alarm": "告警"}
    assert {s: drawn.get(label, 0) for s, label in labels.items()} == {
        s: expected[s] for s in labels}
    # Lists and the API count by the same rule.
    for status in ("online", "offline", "alarm"):
        answer = json.load(server.open(
            f"/collections/iot-devices/items?device_status={status}&limit=1"))
        assert answer["numberMatched"] == expected[status], status
    alarms = {}
    with psycopg.connect(city_db) as conn:
        for label, seen in conn.execute("SELECT kind || ' ' || coalesce(name, ''), last_seen "
                                        "FROM iot_device WHERE status = 'alarm'"):
            alarms.setdefault(label.strip(), set()).add(local_text(seen))
    page.locator(".tab", has_text="设备告警").click()
    page.wait_for_selector("#alarm-list tbody tr", timeout=30_000)
    for row in page.locator("#alarm-list tbody tr").all():
        device = row.locator("td.alarm-link").inner_text()
        seen = row.locator("td.last-seen").inner_text()
        when, ago = seen.split(" (")
        assert when in alarms[device.strip()], (device, seen)
        assert "天" in ago and ago.endswith("前)")  # the last reports are days old


def preset_holding(moment: datetime, now: datetime) -> str:
    """The shortest preset range (local days ending tomorrow at 00:00) holding ``moment``."""
    tomorrow = datetime.combine(now.astimezone(ZONE).date() + timedelta(days=1), time(), ZONE)
    return next((name for name, start in preset_starts(now).items()
                 if start <= moment < tomorrow), "all")


def preset_starts(now: datetime) -> dict[str, datetime]:
    tomorrow = datetime.combine(now.astimezone(ZONE).date() + timedelta(days=1), time(), ZONE)
    return {"today": tomorrow - timedelta(days=1), "7d": tomorrow - timedelta(days=7),
            "30d": tomorrow - timedelta(days=30), "90d": tomorrow - timedelta(days=90),
            "year": datetime(now.astimezone(ZONE).year, 1, 1, tzinfo=ZONE)}


def test_an_empty_period_offers_the_range_with_data(city_db, serve, page):
    now, case, _ = newest(city_db)
    empty, = one(city_db, "SELECT count(*) FROM case_event WHERE reported_at >= %s",
                  datetime.combine(now.astimezone(ZONE).date(), time(), ZONE))
    assert empty == 0  # nothing today: the demo ended days ago
    holding = preset_holding(case, now)
    assert holding != "today"
    server = serve(city_db)
    server.login(page)
    page.goto(server.url + "/?range=today")
    page.wait_for_selector("#elsewhere", timeout=30_000)
    assert page.inner_text("#kpi-total") == "0"
    assert local_text(case) in page.inner_text("#elsewhere")
    labels = {"7d": "近7天", "30d": "近30天", "90d": "近90天", "year": "本年", "all": "全部"}
    assert page.inner_text("#elsewhere-go") == f"查看{labels[holding]}"
    screenshot(page, "empty-period-offers-range")
    page.click("#elsewhere-go")
    page.wait_for_function(
        "r => new URLSearchParams(location.search).get('range') === r", arg=holding,
        timeout=30_000)
    assert parse_qs(urlparse(page.url).query)["range"] == [holding]
    page.wait_for_selector("#elsewhere", state="detached", timeout=30_000)
    tomorrow = datetime.combine(now.astimezone(ZONE).date() + timedelta(days=1), time(), ZONE)
    start = preset_starts(now).get(holding, datetime(1900, 1, 1, tzinfo=ZONE))
    total, = one(city_db, "SELECT count(*) FROM case_event WHERE reported_at >= %s "
                          "AND reported_at < %s", start, tomorrow)
    page.wait_for_function("n => document.querySelector('#kpi-total')?.innerText === n",
                           arg=f"{total:,}", timeout=30_000)

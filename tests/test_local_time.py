"""Every time a person reads is the deployment's local time (ONEMAP_TIMEZONE), checked
against the raw ``timestamptz`` read with plain SQL and converted here with zoneinfo: the
case table and the case detail in Chromium, the big screen's 数据截至, ticker and clock (in
a browser set to another zone), and every export format parsed back."""

from __future__ import annotations

import io
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import psycopg
import pytest
from conftest import ensure_user, screenshot
from openpyxl import load_workbook

from dashboard.components import CASE_ROWS

pytestmark = [pytest.mark.db, pytest.mark.browser]

ZONE = "Asia/Shanghai"
LOCAL = ZoneInfo(ZONE)
ROWS = "#case-table tbody tr"
STAGES = ("reported_at", "accepted_at", "dispatched_at", "handled_at", "feedback_at",
          "closed_at", "evaluated_at")


def sql(url: str, query: str, *params) -> list[tuple]:
    """Plain SQL in a UTC session: the instants as the database hands them back."""
    with psycopg.connect(url) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        return conn.execute(query, params).fetchall()


def local_text(moment: datetime | None) -> str:
    return "—" if moment is None else moment.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M")


def test_case_table_and_detail_show_local_time(city_db, serve, page):
    newest = sql(city_db, f"SELECT id, {', '.join(STAGES)}, deadline FROM case_event "
                          "ORDER BY reported_at DESC LIMIT %s", CASE_ROWS)
    raw = {row[0]: row[1:] for row in newest}
    server = serve(city_db, ONEMAP_TIMEZONE=ZONE)
    server.login(page)
    page.goto(server.url + "/?range=all")
    page.wait_for_selector(ROWS, timeout=30_000)
    shown = {page.locator(ROWS).nth(i).locator(".case-link").inner_text():
             page.locator(ROWS).nth(i).locator("td").nth(1).inner_text()
             for i in range(page.locator(ROWS).count())}
    assert shown == {case_id: local_text(times[0]) for case_id, times in raw.items()}
    # A case reported late in the local evening (the local day differs from UTC's).
    evening = next((i for i, (case_id, *_) in enumerate(newest)
                    if raw[case_id][0].astimezone(UTC).hour >= 16), 0)
    case_id = newest[evening][0]
    page.locator(ROWS).nth(evening).locator("td").nth(2).click()
    page.wait_for_selector("#case-detail .timeline", timeout=30_000)
    assert case_id in page.inner_text("#case-detail h3")
    for stage, moment in zip(STAGES, raw[case_id], strict=False):
        assert page.inner_text(f"#stage-{stage}") == local_text(moment), stage
    # The deadline, then (for an open case) its overdue or due-soon mark.
    assert page.inner_text("#case-deadline").startswith(
        f"办理时限: {local_text(raw[case_id][-1])}")
    # The raw instant beside what the page shows, for a person to compare.
    utc = raw[case_id][0].astimezone(UTC).isoformat()
    page.evaluate("""([utc, zone]) => { const p = document.createElement('p');
        p.id = 'raw-timestamp'; p.style.background = '#ffe082'; p.style.padding = '4px';
        p.textContent = `case_event.reported_at (raw, UTC): ${utc} → shown in ${zone}`;
        document.querySelector('#case-detail').prepend(p); }""", [utc, ZONE])
    page.locator("#case-detail").scroll_into_view_if_needed()
    screenshot(page, "case-times-beside-raw")
    assert page.errors == []


def alarm_starts(url: str) -> list[tuple[str, datetime]]:
    """Each device in alarm (its kind and grid) and when its alarm began: its first alarm
    status after its last other status, recomputed here from the raw events."""
    rows = sql(url, "SELECT d.id, d.kind || ' ' || g.name, e.ts, e.status FROM iot_device d "
                    "JOIN admin_unit g ON g.code = d.grid_code JOIN iot_event e "
                    "ON e.device_id = d.id AND e.event_type = 'status' "
                    "WHERE d.status = 'alarm' ORDER BY d.id, e.ts")
    starts: dict[str, tuple[str, datetime | None]] = {}
    for device, where, ts, status in rows:
        _, since = starts.get(device, (where, None))
        starts[device] = (where, (since or ts) if status == "alarm" else None)
    return [(where, since) for where, since in starts.values() if since is not None]


def test_bigscreen_as_of_ticker_and_clock_are_local(city_db, serve, browser):
    newest_case, = sql(city_db, "SELECT max(reported_at) FROM case_event")[0]
    newest_iot, = sql(city_db, "SELECT max(ts) FROM iot_event")[0]
    alarms = alarm_starts(city_db)
    server = serve(city_db, ONEMAP_TIMEZONE=ZONE)
    token = ensure_user(city_db, "wall", "kiosk")
    # The browser runs in New York: the wall must still tell Shenzhen's time.
    context = browser.new_context(viewport={"width": 1920, "height": 1080},
                                  timezone_id="America/New_York")
    page = context.new_page()
    page.goto(server.url + f"/bigscreen?tour=off&kiosk={token}")
    page.wait_for_selector("#asof-cases", timeout=60_000)
    assert page.inner_text("#asof-cases").endswith(local_text(newest_case))
    assert page.inner_text("#asof-iot").endswith(local_text(newest_iot))
    ticks = page.locator("#bs-ticker .tick").all_inner_texts()
    alarm_ticks = [text for text in ticks if text.startswith("●")]
    assert alarm_ticks
    for text in alarm_ticks:  # each names a device in alarm and when its alarm began, local
        assert any(text.startswith(f"● {where} 告警于 {local_text(since)}")
                   for where, since in alarms), text
    clock = datetime.strptime(page.inner_text("#bs-clock"), "%Y/%m/%d %H:%M:%S")
    assert abs(clock - datetime.now(LOCAL).replace(tzinfo=None)) < timedelta(minutes=2)
    screenshot(page, "bigscreen-local-times")
    context.close()


def test_every_export_carries_local_time(city_db, serve, tmp_path):
    grid, = sql(city_db, "SELECT grid_code FROM case_event WHERE closed_at IS NULL "
                         "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")[0]
    raw = {case_id: (reported, closed) for case_id, reported, closed in sql(
        city_db, "SELECT id, reported_at, closed_at FROM case_event WHERE grid_code = %s",
        grid)}
    expected = {case_id: reported.astimezone(LOCAL) for case_id, (reported, _) in raw.items()}
    assert any(closed is None for _, closed in raw.values())  # empty cells stay empty
    server = serve(city_db, ONEMAP_TIMEZONE=ZONE)

    def download(fmt: str) -> bytes:
        return server.open(f"/export/cases.{fmt}?scope={grid}&range=all").read()

    for fmt in ("geojson", "csv"):  # ISO 8601 with the local offset
        body = download(fmt)
        rows = ([f["properties"] for f in json.loads(body)["features"]] if fmt == "geojson"
                else pd.read_csv(io.BytesIO(body), dtype=str, encoding="utf-8-sig",
                                 keep_default_na=False).to_dict("records"))
        got = {r["id"]: r["reported_at"] for r in rows}
        assert set(got) == set(expected)
        for case_id, text in got.items():
            assert text.endswith("+08:00"), text
            assert datetime.fromisoformat(text) == expected[case_id]
            assert text[:16] == expected[case_id].strftime("%Y-%m-%dT%H:%M")
        assert {r["id"] for r in rows if not r["closed_at"]} == {
            i for i, (_, closed) in raw.items() if closed is None}

    features = json.load(server.open(f"/collections/cases/items?scope={grid}&limit=20"))
    for feature in features["features"]:  # the API speaks local time with its offset too
        props = feature["properties"]
        assert props["reported_at"].endswith("+08:00")
        assert datetime.fromisoformat(props["reported_at"]) == expected[props["id"]]

    sheet = load_workbook(io.BytesIO(download("xlsx")), read_only=True).active
    header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    column = header.index(f"reported_at ({ZONE})")  # the zone named in the header
    got = {r[header.index("id")]: r[column] for r in rows}
    assert all(isinstance(v, datetime) for v in got.values())  # real Excel datetimes
    assert got == {i: m.replace(tzinfo=None) for i, m in expected.items()}

    path = tmp_path / "cases.gpkg"
    path.write_bytes(download("gpkg"))
    with sqlite3.connect(path) as gpkg:
        description, = gpkg.execute("SELECT description FROM gpkg_contents "
                                    "WHERE table_name = 'cases'").fetchone()
        stored = dict(gpkg.execute("SELECT id, reported_at FROM cases").fetchall())
        kind, = [t for _, name, t, *_ in gpkg.execute("PRAGMA table_info(cases)")
                 if name == "reported_at"]
    assert ZONE in description and kind == "DATETIME"
    assert {i: datetime.fromisoformat(v) for i, v in stored.items()} == expected
    assert all(v.endswith("+08:00") for v in stored.values())

"""The demo as ``make demo`` makes it: a city as of now, so the first screens a new user sees
have fresh feeds. No stale warning on the desk or the wall, and 今日 holds the cases
reported today (counted here with plain SQL in the deployment's zone). A demo loaded days
ago is as old as that and the warning says so; ``make demo`` run again makes it new and
leaves nothing of the old city behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import psycopg
import pytest
from conftest import screenshot

from etl.load import load

pytestmark = [pytest.mark.db, pytest.mark.browser]

ZONE_NAME = "Asia/Shanghai"          # ONEMAP_TIMEZONE for the demo and the servers
ZONE = ZoneInfo(ZONE_NAME)
CASES_LIMIT = timedelta(hours=24)    # the settings' defaults
IOT_LIMIT = timedelta(minutes=15)


def make_demo(url: str, home, *args: str) -> str:
    """What ``make data`` runs (``onemap demo --size S --seed 7``) against ``url``; its
    output."""
    env = {**os.environ, "DATABASE_URL": url, "ONEMAP_HOME": str(home),
           "ONEMAP_TIMEZONE": ZONE_NAME}
    done = subprocess.run([sys.executable, "-m", "onemap.cli", "demo", "--size", "S",
                           "--seed", "7", *args], env=env, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def one(url: str, query: str, *params):
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchone()


def feeds(url: str) -> tuple[datetime, datetime, datetime]:
    """The database's clock, the newest case reported and the newest IoT event."""
    return one(url, "SELECT now(), (SELECT max(reported_at) FROM case_event), "
                    "(SELECT max(ts) FROM iot_event)")


def reported_today(url: str) -> int:
    """Cases reported on today's local date, in the deployment's zone."""
    return one(url, "SELECT count(*) FROM case_event WHERE (reported_at AT TIME ZONE %s)::date"
                    " = (now() AT TIME ZONE %s)::date", ZONE_NAME, ZONE_NAME)[0]


def local_text(moment: datetime) -> str:
    return moment.astimezone(ZONE).strftime("%Y-%m-%d %H:%M")


def no_stale_warning(page) -> None:
    """The feeds' times are drawn (the warnings come with them) and no warning is."""
    page.wait_for_selector("#asof-cases", timeout=60_000)
    assert page.locator("#stale-cases").count() == 0, page.inner_text("#stale-cases")
    assert page.locator("#stale-iot").count() == 0, page.inner_text("#stale-iot")


@pytest.fixture(scope="module")
def demo(fresh_db, tmp_path_factory):
    """A database set up as ``make demo`` sets it up, and what the command printed."""
    url = fresh_db()
    return url, make_demo(url, tmp_path_factory.mktemp("demo-home"))


def test_make_demo_opens_fresh_with_todays_cases(demo, serve, page, browser):
    url, printed = demo
    now, case, event = feeds(url)
    password = re.search(r"as admin, password (\S+)", printed)[1]
    token = re.search(r"kiosk=(\S+)", printed)[1]
    server = serve(url, ONEMAP_TIMEZONE=ZONE_NAME)
    server.login(page, "admin", password)
    page.goto(server.url + "/?range=today")
    page.wait_for_selector("#kpi-total", timeout=60_000)
    no_stale_warning(page)
    assert page.inner_text("#asof-cases").endswith(local_text(case))
    assert page.inner_text("#asof-iot").endswith(local_text(event))
    today = reported_today(url)
    assert page.inner_text("#kpi-total") == f"{today:,}"
    if now.astimezone(ZONE).hour >= 8:  # by 8 o'clock a day has had ten-odd reports
        assert today > 0 and page.locator("#elsewhere").count() == 0
    screenshot(page, "demo-now-desk")
    assert timedelta(0) < now - case < CASES_LIMIT and timedelta(0) < now - event < IOT_LIMIT

    wall = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
    wall.goto(server.url + f"/bigscreen?tour=off&range=today&kiosk={token}")
    wall.wait_for_selector("#bs-kpi-cards #kpi-total", timeout=60_000)
    no_stale_warning(wall)
    assert wall.inner_text("#bs-kpi-cards #kpi-total") == f"{reported_today(url):,}"
    wall.wait_for_timeout(1500)
    screenshot(wall, "demo-now-wall")
    wall.context.close()


def test_a_demo_loaded_days_ago_says_so_and_make_demo_renews_it(fresh_db, tmp_path, serve,
                                                                 page):
    url = fresh_db()
    three_days_ago = datetime.now(ZONE).replace(tzinfo=None) - timedelta(days=3)
    make_demo(url, tmp_path, "--as-of", three_days_ago.strftime("%Y-%m-%d %H:%M:%S"))
    now, case, event = feeds(url)
    assert timedelta(days=3) < now - case < timedelta(days=4)
    server = serve(url, ONEMAP_TIMEZONE=ZONE_NAME)
    server.login(page)
    page.goto(server.url + "/?range=all")
    page.wait_for_selector("#stale-cases", timeout=60_000)
    warning = page.inner_text("#stale-cases")
    assert "诉求数据已3天" in warning and local_text(case) in warning
    assert "设备数据已3天" in page.inner_text("#stale-iot")
    assert local_text(event) in page.inner_text("#stale-iot")
    page.wait_for_function("() => document.querySelector('#map-box .js-plotly-plot')"
                           "?._fullData?.[0]?.locations?.length > 0", timeout=30_000)
    page.wait_for_timeout(1500)
    screenshot(page, "demo-days-old")

    # Cases another file loaded are not the demo's to replace.
    city = tmp_path / "city" / "S-seed7"
    others = pd.read_csv(city / "cases.csv", dtype=str, nrows=3, keep_default_na=False,
                         encoding="utf-8-sig").assign(工单编号=["X1", "X2", "X3"])
    others.to_csv(tmp_path / "other-cases.csv", index=False)
    load(url, "cases", [tmp_path / "other-cases.csv"], city / "mappings" / "cases.yaml",
         timezone=ZONE_NAME)

    printed = make_demo(url, tmp_path)
    assert "removed" in printed
    now, case, event = feeds(url)
    assert now - case < CASES_LIMIT and now - event < IOT_LIMIT
    # Nothing of the old city is left: each table holds exactly its newest batch's rows,
    # and the aggregates count what the table holds, day by day.
    for kind, table in (("cases", "case_event"), ("iot-events", "iot_event"),
                        ("iot", "iot_device"), ("facilities", "facility")):
        loaded, = one(url, "SELECT loaded_count FROM load_batch WHERE kind = %s "
                           "AND status = 'committed' ORDER BY id DESC LIMIT 1", kind)
        kept = 3 if kind == "cases" else 0
        assert one(url, f"SELECT count(*) FROM {table}")[0] == loaded + kept, kind
    assert one(url, "SELECT count(*) FROM case_event WHERE id IN ('X1', 'X2', 'X3')")[0] == 3
    differing, = one(url, """
        SELECT count(*) FROM (
            SELECT (reported_at AT TIME ZONE %s)::date AS day, count(*) AS n
            FROM case_event GROUP BY 1) raw
        FULL JOIN (SELECT day, sum(total) AS n FROM case_unit_day WHERE level = 1
                   GROUP BY 1) agg USING (day)
        WHERE raw.n IS DISTINCT FROM agg.n""", ZONE_NAME)
    assert differing == 0
    page.goto(server.url + "/?range=today")
    page.wait_for_selector("#kpi-total", timeout=60_000)
    no_stale_warning(page)
    assert page.inner_text("#kpi-total") == f"{reported_today(url):,}"

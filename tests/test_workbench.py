"""The workbench (/workbench and /api/workbench) on the demo city: every figure read where
the user reads it (the page's DOM, the API's JSON) and compared with a recomputation in
pandas from ``case_event`` (nothing here goes through ``layers/``).

The lifecycle funnel: open cases per stage now (the stage after the last recorded stage
time), the period's dwell per stage (median and 90th percentile, as ``percentile_cont``:
linear between ranks) and the open cases waiting longest at each stage.
"""

from __future__ import annotations

import json
import urllib.error
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import psycopg
import pytest
from conftest import DashServer, ensure_user, screenshot

pytestmark = [pytest.mark.db, pytest.mark.browser]

ZONE = ZoneInfo("Asia/Shanghai")
STAGES = ("accepted_at", "dispatched_at", "handled_at", "feedback_at", "evaluated_at")
LABEL = {"accepted_at": "受理", "dispatched_at": "分拨", "handled_at": "处置",
         "feedback_at": "反馈", "evaluated_at": "评价"}
# Each stage's dwell: from, to (docs/glossary.md).
DWELL = {"accepted_at": ("reported_at", "accepted_at"),
         "dispatched_at": ("accepted_at", "dispatched_at"),
         "handled_at": ("dispatched_at", "handled_at"),
         "feedback_at": ("handled_at", "feedback_at"),
         "evaluated_at": ("feedback_at", "closed_at")}
TIMES = ("reported_at", "accepted_at", "dispatched_at", "handled_at", "feedback_at",
         "closed_at", "evaluated_at", "deadline")
PERIOD = ("2026-09-01", "2026-10-31")  # local days, the end day included
OLDEST = 5


@pytest.fixture(scope="module")
def cases(city_db) -> pd.DataFrame:
    with psycopg.connect(city_db) as conn:
        cur = conn.execute(f"SELECT id, status, street_code, community_code, grid_code, "
                           f"handling_unit, {', '.join(TIMES)} FROM case_event")
        frame = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    for column in TIMES:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


@pytest.fixture(scope="module")
def site(city_db, cases):
    """A server on the demo city; an admin and an official of the street with the most
    open cases."""
    street = cases[cases.status == "open"].street_code.value_counts().index[0]
    ensure_user(city_db, "wb-admin", "admin")
    ensure_user(city_db, "wb-street", "street_official", street)
    server = DashServer(city_db)
    yield server, street
    server.stop()


def _stage(frame: pd.DataFrame) -> pd.Series:
    """The stage an open case waits at: after its last recorded stage time."""
    stage = pd.Series("accepted_at", index=frame.index)
    for done, waits in zip(STAGES[:-1], STAGES[1:], strict=True):
        stage[frame[done].notna()] = waits
    return stage


def _in_period(frame: pd.DataFrame, period) -> pd.DataFrame:
    if period is None:
        return frame
    start = pd.Timestamp(datetime.fromisoformat(period[0]).replace(tzinfo=ZONE))
    end = pd.Timestamp(datetime.fromisoformat(period[1]).replace(tzinfo=ZONE)
                       + timedelta(days=1))
    return frame[(frame.reported_at >= start) & (frame.reported_at < end)]


def expected_funnel(cases: pd.DataFrame, street: str | None, period, now: datetime) -> dict:
    """Per stage: open now, the period's dwell (n, median, p90 hours), the longest waiting
    open cases' ids with their hours waited."""
    scoped = cases if street is None else cases[cases.street_code == street]
    open_ = scoped[scoped.status == "open"].copy()
    open_["stage"] = _stage(open_)
    entered = open_["reported_at"].copy()
    for column in ("accepted_at", "dispatched_at", "handled_at", "feedback_at"):
        entered = open_[column].where(open_[column].notna(), entered)
    open_["entered"] = entered
    flows = _in_period(scoped, period)
    found = {}
    for stage in STAGES:
        start, end = DWELL[stage]
        both = flows[flows[start].notna() & flows[end].notna() & (flows[end] >= flows[start])]
        hours = ((both[end] - both[start]).dt.total_seconds() / 3600).to_numpy()
        waiting = open_[open_.stage == stage].sort_values(["entered", "id"])
        found[stage] = {
            "open": len(waiting), "measured": len(hours),
            "median": float(np.percentile(hours, 50)) if len(hours) else None,
            "p90": float(np.percentile(hours, 90)) if len(hours) else None,
            "oldest": list(waiting.id[:OLDEST]),
            "waited": list((pd.Timestamp(now) - waiting.entered[:OLDEST])
                           .dt.total_seconds() / 3600)}
    return found


def _api(server: DashServer, user: str, query: str) -> dict:
    with server.open("/api/workbench" + query, name=user) as answer:
        return json.load(answer)


def _close(a: float | None, b: float | None, tolerance: float = 1e-3) -> bool:
    return (a is None and b is None) or (a is not None and b is not None
                                         and abs(a - b) <= tolerance)


def test_the_demo_city_has_cases_stuck_at_every_stage(cases):
    """The demo city plants cases that never got past 受理 or 分拨 for days; open cases
    wait at every stage, and the stage times are realistic (minutes to accept, hours to
    handle)."""
    open_ = cases[cases.status == "open"].copy()
    open_["stage"] = _stage(open_)
    pinned = pd.Timestamp("2026-11-21 00:00", tz=ZONE)
    for stage in STAGES:
        waiting = open_[open_.stage == stage]
        assert len(waiting), stage
    for stage in ("accepted_at", "dispatched_at"):
        waiting = open_[open_.stage == stage]
        assert (pinned - waiting.reported_at).max() > pd.Timedelta(days=3), stage
    accept = (cases.accepted_at - cases.reported_at).dt.total_seconds().median() / 3600
    handle = (cases.handled_at - cases.dispatched_at).dt.total_seconds().median() / 3600
    assert 0.05 < accept < 2 and 4 < handle < 72


def test_the_api_funnel_equals_pandas(site, cases):
    server, _ = site
    for query, period in ((f"?start={PERIOD[0]}&end={PERIOD[1]}", PERIOD),
                          ("?range=all", None)):
        data = _api(server, "wb-admin", query)
        now = datetime.fromisoformat(data["now"])
        want = expected_funnel(cases, None, period, now)
        assert [s["stage"] for s in data["funnel"]] == list(STAGES)
        for got in data["funnel"]:
            exp = want[got["stage"]]
            assert got["open"] == exp["open"], got["stage"]
            assert got["measured"] == exp["measured"], got["stage"]
            assert _close(got["median_hours"], exp["median"]), (got, exp)
            assert _close(got["p90_hours"], exp["p90"]), (got, exp)
            assert [c["id"] for c in got["oldest"]] == exp["oldest"], got["stage"]
            for case, waited in zip(got["oldest"], exp["waited"], strict=True):
                assert abs(case["waited_hours"] - waited) < 0.01
        assert sum(s["open"] for s in data["funnel"]) == (cases.status == "open").sum()


def test_a_street_official_sees_only_her_street(site, cases):
    server, street = site
    data = _api(server, "wb-street", f"?start={PERIOD[0]}&end={PERIOD[1]}")
    assert data["scope"]["code"] == street
    want = expected_funnel(cases, street, PERIOD, datetime.fromisoformat(data["now"]))
    for got in data["funnel"]:
        exp = want[got["stage"]]
        assert (got["open"], got["measured"]) == (exp["open"], exp["measured"])
        assert [c["id"] for c in got["oldest"]] == exp["oldest"]
    ours = set(cases[cases.street_code == street].id)
    assert all(c["id"] in ours for s in data["funnel"] for c in s["oldest"])
    other = sorted(set(cases.street_code.dropna()) - {street})[0]
    with pytest.raises(urllib.error.HTTPError) as refused:
        _api(server, "wb-street", f"?scope={other}")
    assert refused.value.code == 403


def _hours_text(hours: float | None) -> str:
    """The page's words for a time in a stage (written here from the rule, not imported)."""
    if hours is None:
        return "—"
    if hours < 1:
        return f"{hours * 60:.0f} 分钟"
    return f"{hours:.1f} 小时" if hours < 48 else f"{hours / 24:.1f} 天"


FUNNEL_JS = """() => [...document.querySelectorAll('#funnel tbody tr')].map(r => ({
    id: r.id, stage: r.querySelector('.stage').innerText.trim(),
    open: r.querySelector('.open .n').innerText.trim(),
    median: r.querySelector('.median').innerText.trim(),
    p90: r.querySelector('.p90').innerText.trim(),
    measured: r.querySelector('.measured').innerText.trim(),
    oldest: [...r.querySelectorAll('.wb-oldest .case-link')].map(a => a.innerText.trim())}))"""


def test_the_page_shows_the_funnel_and_opens_a_stuck_case(site, cases, page):
    server, street = site
    server.login(page, "wb-street")
    page.goto(server.url + f"/workbench?start={PERIOD[0]}&end={PERIOD[1]}")
    page.wait_for_selector("#funnel tbody tr", timeout=60_000)
    now = datetime.fromisoformat(_api(server, "wb-street", "?range=all")["now"])
    want = expected_funnel(cases, street, PERIOD, now)
    shown = page.evaluate(FUNNEL_JS)
    assert [r["stage"] for r in shown] == [LABEL[s] for s in STAGES]
    for row, stage in zip(shown, STAGES, strict=True):
        exp = want[stage]
        assert row["open"] == f"{exp['open']:,}", stage
        assert row["measured"] == f"{exp['measured']:,}", stage
        assert row["median"] == _hours_text(exp["median"]), stage
        assert row["p90"] == _hours_text(exp["p90"]), stage
        assert row["oldest"] == exp["oldest"], stage
    assert page.locator("#header .breadcrumb .here").inner_text().strip()
    assert page.locator("#wb-period").inner_text().strip() == "自定义 09-01 至 10-31"
    screenshot(page, "workbench-funnel")
    first = want["dispatched_at"]["oldest"][0]
    page.locator("#stuck-dispatched_at-0").click()
    page.wait_for_selector("#wb-detail h3", timeout=30_000)
    assert first in page.locator("#wb-detail h3").inner_text()
    assert f"case={first}" in page.url
    # A case stuck at 分拨 has its 受理 time and none after it.
    assert page.locator("#stage-accepted_at").inner_text().strip() not in ("", "—")
    assert page.locator("#stage-dispatched_at").inner_text().strip() == "—"
    screenshot(page, "workbench-case")
    page.goto(server.url + "/")  # the desk links to the workbench, with the view's filters
    page.wait_for_selector("#go-workbench", timeout=60_000)
    assert page.locator("#go-workbench").get_attribute("href").startswith("/workbench")
    assert not page.errors and not page.external, (page.errors, page.external)

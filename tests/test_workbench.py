"""The workbench (/workbench and /api/workbench) on the demo city: every figure read where
the user reads it (the page's DOM, the API's JSON) and compared with a recomputation in
pandas from ``case_event`` (nothing here goes through ``layers/``, but for the rule of
availability on a source without a field).

The lifecycle funnel: open cases per stage now (the stage after the last recorded stage
time), the period's dwell per stage (median and 90th percentile, as ``percentile_cont``:
linear between ranks) and the open cases waiting longest at each stage. The indicators:
shares of the period's cases (满意: a score of 4 or 5), and those the demo city's data
cannot give shown as not available, never 0; the cases rated 1 or 2. The handling units:
the period's received, closed, on-time rate, median handling time, satisfaction, and their
overdue cases now.
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
                           f"handling_unit, on_time, satisfaction, handling_hours, "
                           f"{', '.join(TIMES)} FROM case_event")
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


# -- indicators and the not-satisfied list -----------------------------------------------------
AVAILABLE = ("closure_rate", "on_time_closure_rate", "same_day_closure_rate",
             "within_3d_closure_rate", "satisfied_rate")
NOT_AVAILABLE = ("accept_notified_rate", "handle_notified_rate", "instant_answer_rate",
                 "repeat_rate")


def expected_indicators(cases: pd.DataFrame, street: str | None, period) -> dict:
    flows = _in_period(cases if street is None else cases[cases.street_code == street], period)
    closed = flows[flows.status == "closed"]
    timed = closed[closed.on_time.notna()]
    local = closed.reported_at.dt.tz_convert(ZONE).dt.date
    rated = flows[flows.satisfaction.notna()]
    worst = flows[flows.satisfaction <= 2].sort_values(["reported_at", "id"],
                                                       ascending=[False, True])
    return {
        "closure_rate": (len(closed), len(flows)),
        "on_time_closure_rate": (int(timed.on_time.astype(bool).sum()), len(timed)),
        "same_day_closure_rate": (int((closed.closed_at.dt.tz_convert(ZONE).dt.date
                                       == local).sum()), len(closed)),
        "within_3d_closure_rate": (int((closed.closed_at <= closed.reported_at
                                        + pd.Timedelta(hours=72)).sum()), len(closed)),
        "satisfied_rate": (int((rated.satisfaction >= 4).sum()), len(rated)),
        "mean": round(float(rated.satisfaction.mean()), 2), "rated": len(rated),
        "unsatisfied": list(worst.id[:20]), "unsatisfied_total": len(worst)}


def test_the_api_indicators_equal_pandas(site, cases):
    server, street = site
    for user, who in (("wb-admin", None), ("wb-street", street)):
        data = _api(server, user, f"?start={PERIOD[0]}&end={PERIOD[1]}")
        want = expected_indicators(cases, who, PERIOD)
        got = {i["key"]: i for i in data["indicators"]}
        assert set(got) == set(AVAILABLE) | set(NOT_AVAILABLE)
        for key in AVAILABLE:
            part, whole = want[key]
            assert got[key]["available"] and (got[key]["part"], got[key]["whole"]) == \
                (part, whole), (key, got[key], want[key])
            assert abs(got[key]["value"] - part / whole) < 1e-6
        for key in NOT_AVAILABLE:
            assert got[key]["available"] is False and got[key]["value"] is None, got[key]
            assert got[key]["part"] is None and got[key]["needs"]
        assert data["satisfaction"] == {"mean": want["mean"], "rated": want["rated"]}
        assert [c["id"] for c in data["unsatisfied"]] == want["unsatisfied"]
        assert data["unsatisfied_total"] == want["unsatisfied_total"]
        assert all(c["satisfaction"] <= 2 for c in data["unsatisfied"])


def test_an_indicator_without_its_field_is_not_available():
    """The rule on a source that never filled satisfaction: 满意率 is not available (None),
    not 0, though there are cases to divide by."""
    from layers.workbench import indicators

    sums = {"total": 10, "closed": 8, "closed_on_time": 6, "closed_late": 2,
            "closed_same_day": 3, "closed_3d": 7, "satisfied": 0, "satisfaction_n": 0}
    shown = {i["key"]: i for i in indicators(sums, {"status", "on_time", "closed_at"})}
    assert shown["satisfied_rate"]["available"] is False
    assert shown["satisfied_rate"]["value"] is None
    assert shown["closure_rate"]["value"] == 0.8 and shown["on_time_closure_rate"]["value"] == 0.75


# -- the handling units ------------------------------------------------------------------------
def expected_units(cases: pd.DataFrame, street: str | None, period, now: datetime) -> dict:
    scoped = cases if street is None else cases[cases.street_code == street]
    flows = _in_period(scoped, period)
    units = {}
    for name, group in flows[flows.handling_unit.notna()].groupby("handling_unit"):
        closed = group[group.status == "closed"]
        timed = closed[closed.on_time.notna()]
        rated = group[group.satisfaction.notna()]
        hours = group.handling_hours.dropna().to_numpy()
        units[name] = {
            "received": len(group), "closed": len(closed),
            "on_time_rate": timed.on_time.astype(bool).mean() if len(timed) else None,
            "median_hours": float(np.percentile(hours, 50)) if len(hours) else None,
            "satisfaction": round(float(rated.satisfaction.mean()), 2) if len(rated) else None,
            "satisfied_rate": (rated.satisfaction >= 4).mean() if len(rated) else None,
            "overdue": 0}
    late = scoped[(scoped.status == "open") & (scoped.deadline < pd.Timestamp(now))
                  & scoped.handling_unit.notna()]
    for name, n in late.handling_unit.value_counts().items():
        units.setdefault(name, {"received": 0, "closed": 0, "on_time_rate": None,
                                "median_hours": None, "satisfaction": None,
                                "satisfied_rate": None, "overdue": 0})["overdue"] = int(n)
    return units


def _same(got, want, tolerance: float) -> bool:
    return _close(got, None if want is None else float(want), tolerance)


def test_the_api_ranking_equals_pandas(site, cases):
    server, street = site
    for user, who in (("wb-admin", None), ("wb-street", street)):
        data = _api(server, user, f"?start={PERIOD[0]}&end={PERIOD[1]}&sort=overdue")
        want = expected_units(cases, who, PERIOD, datetime.fromisoformat(data["now"]))
        got = {u["unit"]: u for u in data["units"]}
        assert set(got) == set(want)
        for name, exp in want.items():
            unit = got[name]
            assert (unit["received"], unit["closed"], unit["overdue"]) == \
                (exp["received"], exp["closed"], exp["overdue"]), name
            assert _same(unit["on_time_rate"], exp["on_time_rate"], 1e-6), name
            assert _same(unit["median_hours"], exp["median_hours"], 1e-6), name
            assert _same(unit["satisfaction"], exp["satisfaction"], 1e-9), name
            assert _same(unit["satisfied_rate"], exp["satisfied_rate"], 1e-6), name
        overdue = [u["overdue"] for u in data["units"]]
        assert overdue == sorted(overdue, reverse=True)
    ours = set(cases[cases.street_code == street].handling_unit.dropna())
    assert set(got) <= ours  # the official's ranking holds her street's units only
    slow = _api(server, "wb-admin", "?range=all&sort=median_hours.asc")["units"]
    timed = [u["median_hours"] for u in slow if u["median_hours"] is not None]
    assert timed == sorted(timed) and slow[-1]["median_hours"] is None or len(timed) == len(slow)
    with pytest.raises(urllib.error.HTTPError) as refused:
        _api(server, "wb-admin", "?sort=nonsense")
    assert refused.value.code == 400


def _pct(value) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


RANKING_JS = """() => [...document.querySelectorAll('#ranking-table tbody tr')].map(r =>
    [...r.querySelectorAll('td')].map(td => td.innerText.trim()))"""


def test_the_page_shows_indicators_and_the_ranking(site, cases, page):
    server, street = site
    server.login(page, "wb-street")
    query = f"?start={PERIOD[0]}&end={PERIOD[1]}"
    page.goto(server.url + "/workbench" + query)
    page.wait_for_selector("#ranking-table tbody tr", timeout=60_000)
    now = datetime.fromisoformat(_api(server, "wb-street", "?range=all")["now"])
    want = expected_indicators(cases, street, PERIOD)
    for key in AVAILABLE:
        part, whole = want[key]
        assert page.locator(f"#ind-{key}").inner_text().strip() == _pct(part / whole), key
    for key in NOT_AVAILABLE:
        assert page.locator(f"#ind-{key}").inner_text().strip() == "不可用", key
    assert page.locator("#ind-satisfaction").inner_text().strip() == f"{want['mean']:.2f}"
    # Each card says what it counts (the glossary's words): the threshold of 满意, and the
    # mapping field a not-available indicator waits for.
    tip = page.locator("#ind-satisfied_rate").locator("xpath=..").get_attribute("title")
    assert "满意度为 4 或 5 分" in tip and "所选时段" in tip
    tip = page.locator("#ind-repeat_rate").locator("xpath=..").get_attribute("title")
    assert "repeat_of" in tip
    shown_ids = page.evaluate("() => [...document.querySelectorAll('#unsatisfied-list "
                              "tbody tr td:first-child')].map(td => td.innerText.trim())")
    assert shown_ids == want["unsatisfied"]
    units = expected_units(cases, street, PERIOD, now)
    rows = page.evaluate(RANKING_JS)
    assert [r[2] for r in rows] == [f"{units[r[1]]['received']:,}" for r in rows]
    assert [int(r[2].replace(",", "")) for r in rows] == sorted(
        (u["received"] for u in units.values()), reverse=True)
    for row in rows:
        exp = units[row[1]]
        assert row[3:5] == [f"{exp['closed']:,}", _pct(exp["on_time_rate"])], row
        assert row[6] == f"{exp['overdue']:,}", row
        assert row[7] == _pct(exp["satisfied_rate"]), row
        assert row[8] == ("—" if exp["satisfaction"] is None else f"{exp['satisfaction']:.2f}")
        assert row[5] == _hours_text(exp["median_hours"]), row
    screenshot(page, "workbench-ranking")
    page.locator("#sort-overdue").click()
    page.wait_for_url("**sort=overdue**", timeout=30_000)
    page.wait_for_function("() => document.querySelector('#sort-overdue').innerText"
                           ".includes('▼')", timeout=30_000)
    rows = page.evaluate(RANKING_JS)
    assert [int(r[6].replace(",", "")) for r in rows] == sorted(
        (u["overdue"] for u in units.values()), reverse=True)
    name = rows[0][1]
    page.locator(".unit-link", has_text=name).first.click()
    page.wait_for_selector("#unit-cases", timeout=30_000)
    mine = _in_period(cases[(cases.street_code == street) & (cases.handling_unit == name)],
                      PERIOD).sort_values(["reported_at", "id"], ascending=[False, True])
    assert page.locator("#unit-cases-count").inner_text().strip() in (
        f"共 {len(mine):,} 条", f"显示 {min(len(mine), 20)} / 共 {len(mine):,}")
    listed = page.evaluate("() => [...document.querySelectorAll('#unit-cases tbody tr "
                           "td:first-child')].map(td => td.innerText.trim())")
    assert listed == list(mine.id[:20])
    page.locator("#unit-cases .case-link").first.click()
    page.wait_for_selector("#wb-detail h3", timeout=30_000)
    assert listed[0] in page.locator("#wb-detail h3").inner_text()
    page.locator("#unit-cases").scroll_into_view_if_needed()
    screenshot(page, "workbench-unit")
    page.goto(server.url + "/workbench" + query + "&lang=en")
    page.wait_for_selector("#ranking-table tbody tr", timeout=60_000)
    assert page.locator("#ind-repeat_rate").inner_text().strip() == "not available"
    assert page.locator("#funnel-handled_at .stage").inner_text().strip() == "Handled"
    assert not page.errors and not page.external, (page.errors, page.external)


def test_the_page_refreshes_itself_and_a_foreign_case_is_refused_in_the_drawer(
        city_db, cases, serve, page):
    """The workbench reads itself again every ONEMAP_REFRESH_SECONDS (the ranking is live);
    a link to a case of another street opens no detail: the drawer says so, the view
    stands."""
    street = cases[cases.status == "open"].street_code.value_counts().index[0]
    server = serve(city_db, ONEMAP_REFRESH_SECONDS="2")
    ensure_user(city_db, "wb-street", "street_official", street)
    server.login(page, "wb-street")
    foreign = cases[(cases.street_code != street) & cases.street_code.notna()].id.iloc[0]
    page.goto(server.url + f"/workbench?range=all&case={foreign}")
    page.wait_for_selector("#wb-detail-problem", timeout=60_000)
    # Foreign and unknown look the same: no answer tells which cases exist elsewhere.
    assert page.locator("#wb-detail-problem").inner_text().strip() == \
        "未找到（或不在您可查看的范围内）"
    assert page.locator("#funnel tbody tr").count() == len(STAGES)
    # (The page's other callbacks, e.g. the 并案 panel drawn after it, answer too.)
    with page.expect_response(lambda r: "_dash-update-component" in r.url
                              and "wb-refresh" in (r.request.post_data or ""),
                              timeout=30_000) as refreshed:
        pass
    assert refreshed.value.status == 200
    body = refreshed.value.json()["response"]["wb-body"]["children"]
    assert "ranking-table" in json.dumps(body, ensure_ascii=False)
    assert page.locator("#funnel tbody tr").count() == len(STAGES)
    assert not page.errors, page.errors

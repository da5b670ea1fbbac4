"""The backlog now and the flows of a period, overdue and due-soon marks, and trends without
holes, read from the page in headless Chromium (desk and wall) and checked against pandas
over case_event: the demo city S, copied, with two of its newest open cases given a deadline
in the future (one due within hours, one in days), so that both marks occur now."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pandas as pd
import psycopg
import pytest
from conftest import copy_of, ensure_user, screenshot

from onemap.database import make_engine

pytestmark = [pytest.mark.db, pytest.mark.browser]
ZONE = ZoneInfo("Asia/Shanghai")
DUE_SOON_HOURS = 24  # ONEMAP_DUE_SOON_HOURS, as documented
DOCS = Path(__file__).resolve().parents[1] / "docs" / "glossary.md"
STAGES = ("accepted_at", "dispatched_at", "handled_at", "feedback_at", "evaluated_at")
RANGE_DAYS = {"today": 1, "7d": 7, "30d": 30, "90d": 90}
RANGE_WORDS = {"today": "今日", "7d": "近7天", "30d": "近30天", "90d": "近90天"}


@pytest.fixture(scope="module")
def copy_db(city_db):
    """A copy of the demo city whose two newest open cases fall due in 3 hours and in 5
    days (deadlines of open cases are in no aggregate: the copy's aggregates stay true)."""
    with copy_of(city_db) as copy:
        with psycopg.connect(copy) as conn:
            newest = [r[0] for r in conn.execute(
                "SELECT id FROM case_event WHERE status = 'open' "
                "ORDER BY reported_at DESC, id LIMIT 2")]
            for case_id, delay in zip(newest, ("3 hours", "5 days"), strict=True):
                conn.execute("UPDATE case_event SET deadline = now() + %s::interval "
                             "WHERE id = %s", (delay, case_id))
        yield copy


def cases_frame(url: str) -> pd.DataFrame:
    """case_event as it is, with the database's clock beside it (in column ``now``)."""
    with psycopg.connect(url) as conn:
        cur = conn.execute(
            "SELECT id, status, reported_at, accepted_at, dispatched_at, handled_at, "
            "feedback_at, evaluated_at, closed_at, deadline, category_1, category_2, "
            "category_3, category_4, channel, street_code, community_code, grid_code, "
            "geom IS NOT NULL AS has_point, now() AS now FROM case_event")
        frame = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    for column in ("reported_at", "deadline", "closed_at", "now", *STAGES):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["day"] = frame["reported_at"].dt.tz_convert(ZONE).dt.date
    return frame.set_axis(frame["id"].to_numpy())  # rows by case id, "id" still a column


def database_now(url: str) -> pd.Timestamp:
    with psycopg.connect(url) as conn:
        return pd.Timestamp(conn.execute("SELECT now()").fetchone()[0])


def today() -> date:
    return datetime.now(ZONE).date()


def in_scope(frame: pd.DataFrame, column: str | None, code: str | None,
             category: str | None = None) -> pd.DataFrame:
    if code:
        frame = frame[frame[column] == code]
    if category:
        cats = frame[["category_1", "category_2", "category_3", "category_4"]]
        frame = frame[(cats == category).any(axis=1)]
    return frame


def expected_backlog(frame: pd.DataFrame, now: pd.Timestamp) -> dict:
    """Open, overdue, due-soon and by stage, from the raw columns."""
    open_ = frame[frame["status"] == "open"]
    soon = now + pd.Timedelta(hours=DUE_SOON_HOURS)
    stage = pd.Series("accepted_at", index=open_.index)
    for done, waits in zip(STAGES[:-1], STAGES[1:], strict=True):  # later stages win
        stage[open_[done].notna()] = waits
    return {"open": len(open_), "overdue": int((open_["deadline"] < now).sum()),
            "due_soon": int(((open_["deadline"] >= now) & (open_["deadline"] < soon)).sum()),
            **{f"stage-{s}": int((stage == s).sum()) for s in STAGES}}


def expected_flows(frame: pd.DataFrame, range_: str) -> dict:
    first = today() - timedelta(days=RANGE_DAYS[range_] - 1)
    period = frame[(frame["day"] >= first) & (frame["day"] <= today())]
    closed = period[period["status"] == "closed"]
    timed = closed[closed["deadline"].notna()]
    rate = (timed["closed_at"] <= timed["deadline"]).mean() if len(timed) else None
    return {"total": len(period), "closed": len(closed),
            "on_time_rate": "—" if rate is None else f"{rate * 100:.1f}%"}


def number(page, selector: str) -> int:
    return int(page.inner_text(selector).replace(",", ""))


def shown_backlog(page, root: str = "") -> dict:
    shown = {key: number(page, f"{root} #kpi-{key}") for key in ("open", "overdue", "due_soon")}
    shown.update({f"stage-{s}": number(page, f"{root} #backlog-stage-{s} .n") for s in STAGES})
    return shown


def assert_backlog(url: str, frame: pd.DataFrame, shown: dict, before: pd.Timestamp) -> None:
    """The backlog shown equals the one recomputed at the clock before or after the page
    was read (a deadline may pass in between)."""
    after = database_now(url)
    wanted = [expected_backlog(frame, moment) for moment in (before, after)]
    assert shown in wanted, f"shown {shown}, recomputed {wanted[0]}"


def period_words(range_: str) -> str:
    first = today() - timedelta(days=RANGE_DAYS[range_] - 1)
    days = (today().strftime("%m-%d") if range_ == "today" else
            f"{first.strftime('%m-%d')} 至 {today().strftime('%m-%d')}")
    return f"{RANGE_WORDS[range_]} {days}"


def open_desk(page, server, **params) -> None:
    page.goto(server.url + "/?" + urlencode(params))
    page.wait_for_selector("#kpi-total", timeout=30_000)


def test_backlog_now_and_flows_of_the_period_on_desk_and_wall(copy_db, serve, page, browser):
    """在办 / 超期未办结 / 即将超期 and the stages are the scope's backlog now, whatever
    the range (filtered by category like everything else); 诉求总量, 已办结 and the on-time
    rate count the period's cases; every card's tooltip says what and over which period;
    the wall shows its period and the same backlog as the desk."""
    frame = cases_frame(copy_db)
    street = frame[frame["status"] == "open"]["street_code"].value_counts().index[0]
    category = frame[(frame["status"] == "open") & (frame["street_code"] == street)][
        "category_1"].value_counts().index[0]
    server = serve(copy_db)
    server.login(page)
    views = [(None, "today", None), (None, "7d", None), (street, "90d", None),
             (street, "today", category)]
    for code, range_, cat in views:
        before = database_now(copy_db)
        params = {"range": range_, **({"scope": code} if code else {}),
                  **({"category": cat} if cat else {})}
        open_desk(page, server, **params)
        scoped = in_scope(frame, "street_code", code, cat)
        if (code, range_) == (None, "today"):
            page.wait_for_function(  # the map drawn with the streets, for the screenshot
                "() => document.querySelector('#map-box .js-plotly-plot')?._fullData?.[0]"
                "?.locations?.length > 0", timeout=30_000)
            page.wait_for_timeout(1500)
            shot = screenshot(page, "backlog-today-zh")
        # The open cases are those of the scope now, not those reported in the range.
        assert number(page, "#kpi-open") == expected_backlog(scoped, before)["open"] > 0, shot
        assert_backlog(copy_db, scoped, shown_backlog(page), before)
        flows = expected_flows(scoped, range_)
        assert number(page, "#kpi-total") == flows["total"], params
        assert number(page, "#kpi-closed") == flows["closed"], params
        assert page.inner_text("#kpi-on_time_rate") == flows["on_time_rate"], params
        words = period_words(range_)
        assert words in page.inner_text("#kpi-group-period")
        from dashboard import glossary  # the tooltips' own source

        for key in ("open", "overdue", "due_soon", "total", "closed", "on_time_rate",
                    "satisfaction", "alarms"):
            title = page.get_attribute(f"#card-{key}", "title")
            assert glossary.counts(key, "zh", DUE_SOON_HOURS) in title
            assert ("此刻" in title) == (key in ("open", "overdue", "due_soon", "alarms"))
            assert (words in title) == (key not in ("open", "overdue", "due_soon", "alarms"))
    assert page.errors == [] and page.external == []

    token = ensure_user(copy_db, "wall", "kiosk")
    wall = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
    for range_ in ("today", "30d"):
        before = database_now(copy_db)
        wall.goto(server.url + f"/bigscreen?tour=off&range={range_}&kiosk={token}")
        wall.wait_for_function("() => document.querySelector('#bs-kpi-cards #kpi-open')",
                               timeout=30_000)
        assert_backlog(copy_db, frame, shown_backlog(wall, "#bs-kpi-cards"), before)
        assert number(wall, "#bs-kpi-cards #kpi-total") == expected_flows(frame, range_)["total"]
        assert period_words(range_) in wall.inner_text("#bs-period")
    wall.wait_for_timeout(1500)
    screenshot(wall, "backlog-wall-30d")
    # The desk's district backlog is the wall's: the same figures, read from both pages.
    open_desk(page, server, range="today")
    assert shown_backlog(page) == shown_backlog(wall, "#bs-kpi-cards")
    wall.context.close()


def span_hours(text: str) -> float:
    """Hours in 超期 3天4小时 / 剩 5小时 / 剩 40分钟."""
    days = re.search(r"(\d+)天", text)
    hours = re.search(r"(\d+)小时", text)
    minutes = re.search(r"(\d+)分钟", text)
    return ((int(days[1]) * 24 if days else 0) + (int(hours[1]) if hours else 0)
            + (int(minutes[1]) / 60 if minutes else 0))


def assert_marked(text: str, case: pd.Series, now: pd.Timestamp, where: str) -> None:
    """``text`` marks ``case`` as it is now: overdue with the hours over, due soon with the
    hours left, or not at all."""
    left = (case["deadline"] - now) / pd.Timedelta(hours=1) if case["status"] == "open" \
        and pd.notna(case["deadline"]) else None
    if left is not None and left < 0:
        assert "超期" in text and abs(span_hours(text) - -left) <= 1.1, (where, text, left)
    elif left is not None and left < DUE_SOON_HOURS:
        assert "剩" in text and abs(span_hours(text) - left) <= 1.1, (where, text, left)
    else:
        assert "超期" not in text and "剩" not in text, (where, text, left)


def test_overdue_and_due_soon_marked_in_table_detail_and_map(copy_db, serve, page):
    """The case table says 超期未办结 / 即将超期 with how long over or left, sorts the backlog
    most overdue first; the detail and the map's case points carry the same marks."""
    frame = cases_frame(copy_db)
    newest = frame[frame["status"] == "open"].sort_values(["reported_at", "id"]).iloc[-1]
    community = newest["community_code"]
    server = serve(copy_db)
    server.login(page)
    open_desk(page, server, range="90d", scope=community, layers="units,cases")
    rows = "#case-table tbody tr"
    page.wait_for_selector(rows, timeout=30_000)
    now = database_now(copy_db)
    for i in range(page.locator(rows).count()):
        row = page.locator(rows).nth(i)
        case = frame.loc[row.locator(".case-link").inner_text()]
        assert_marked(row.inner_text(), case, now, "table")
        if case["status"] == "open" and case["deadline"] < now:
            assert row.locator(".status").inner_text() == "超期未办结"
    assert "即将超期" in page.locator(rows).first.inner_text()  # the newest: due in 3 h

    page.get_by_text("积压（最超期在前）").click()
    page.wait_for_function("() => location.search.includes('cases=overdue')")
    backlog = frame[(frame["status"] == "open") & (frame["community_code"] == community)]
    order = backlog.sort_values(["deadline", "reported_at", "id"], na_position="last")
    want = list(order["id"][:20])
    page.wait_for_function(
        "id => document.querySelector('#case-table tbody tr .case-link')?.innerText === id",
        arg=want[0], timeout=30_000)
    assert [page.locator(rows).nth(i).locator(".case-link").inner_text()
            for i in range(page.locator(rows).count())] == want
    now = database_now(copy_db)
    assert_marked(page.locator(rows).first.inner_text(), frame.loc[want[0]], now, "backlog")
    page.locator(rows).first.locator("td").nth(2).click()
    page.wait_for_selector("#detail-due", timeout=30_000)
    assert_marked(page.inner_text("#detail-due"), frame.loc[want[0]], now, "detail")
    assert "超期未办结" in page.inner_text("#detail-due")
    screenshot(page, "backlog-most-overdue-zh")

    traces = page.evaluate(
        "() => document.querySelector('#map-box .js-plotly-plot').data"
        ".map(t => [t.name, t.text ? Array.from(t.text) : []])")
    by_name = dict(traces)
    first = today() - timedelta(days=89)
    shown = frame[(frame["community_code"] == community) & frame["has_point"]
                  & (frame["day"] >= first)]
    for due, name in (("overdue", "诉求点位 · 超期未办结"), ("due_soon", "诉求点位 · 即将超期")):
        left = (shown["deadline"] - now) / pd.Timedelta(hours=1)
        opened = shown["status"] == "open"
        want = opened & (left < 0) if due == "overdue" else opened & (left >= 0) & (
            left < DUE_SOON_HOURS)
        assert len(by_name.get(name, [])) == int(want.sum()) > 0, name
        for text in by_name[name]:
            assert ("超期 " if due == "overdue" else "剩 ") in text
    assert page.errors == [] and page.external == []


def test_wall_ticker_marks_against_the_clock(copy_db, serve, browser):
    """The ticker labels a case overdue only when its deadline has passed, says how long,
    marks the one due in 3 hours as due soon, and leaves out the one due in 5 days."""
    frame = cases_frame(copy_db)
    server = serve(copy_db)
    token = ensure_user(copy_db, "wall", "kiosk")
    wall = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
    wall.goto(server.url + f"/bigscreen?tour=off&kiosk={token}")
    wall.wait_for_function("() => document.querySelectorAll('#bs-ticker .tick').length > 1",
                           timeout=30_000)
    now = database_now(copy_db)
    ticks = [wall.locator("#bs-ticker .tick").nth(i).inner_text()
             for i in range(wall.locator("#bs-ticker .tick").count())]
    named = {re.search(r"PS\d+", text)[0]: text for text in ticks if re.search(r"PS\d+", text)}
    soon, later = frame[frame["status"] == "open"].sort_values(
        ["reported_at", "id"])["id"].iloc[[-1, -2]]
    assert later not in named, named[later]
    assert "即将超期" in named[soon] and "超期未办结" not in named[soon]
    for case_id, text in named.items():
        assert_marked(text, frame.loc[case_id], now, "ticker")
        assert ("超期未办结" in text) == (frame.loc[case_id, "deadline"] < now)
    wall.context.close()


def test_trends_have_every_day_and_mark_partial_weeks(copy_db, serve, page):
    """A sparse grid's 90 days are 90 points, zeros included; seven days read as seven
    dated ticks; this year's weeks are whole weeks with the partial first and last marked."""
    frame = cases_frame(copy_db)
    first = today() - timedelta(days=89)
    recent = frame[frame["day"] >= first]
    per_grid = recent["grid_code"].value_counts()
    grid = per_grid[(per_grid >= 15) & (per_grid <= 45)].index[0]
    server = serve(copy_db)
    server.login(page)
    trend = "() => { const gd = document.querySelector('#chart-trend .js-plotly-plot');" \
            " return gd && gd.data && gd.data[0] ? {x: Array.from(gd.data[0].x)," \
            " y: Array.from(gd.data[0].y), symbol: (gd.data[0].marker || {}).symbol} : null; }"

    open_desk(page, server, range="90d", scope=grid)
    page.wait_for_function(f"({trend})()?.x.length > 0", timeout=30_000)
    drawn = page.evaluate(trend)
    days = pd.date_range(first, today(), freq="D").date
    counts = recent[recent["grid_code"] == grid]["day"].value_counts()
    assert drawn["x"] == [d.isoformat() for d in days]
    assert drawn["y"] == [int(counts.get(d, 0)) for d in days]
    assert 0 in drawn["y"] and page.locator("#chart-trend .scatterlayer .point").count() == 90

    open_desk(page, server, range="7d", scope=grid)
    page.wait_for_function(f"({trend})()?.x.length === 7", timeout=30_000)
    ticks = page.evaluate("() => Array.from(document.querySelectorAll("
                          "'#chart-trend .xtick text'), e => e.textContent)")
    assert ticks == [(today() - timedelta(days=6 - i)).strftime("%m-%d") for i in range(7)]
    screenshot(page, "trend-7d-zh")

    open_desk(page, server, range="year")
    jan1 = date(today().year, 1, 1)
    mondays = pd.date_range(jan1 - timedelta(days=jan1.weekday()), today(), freq="W-MON").date
    page.wait_for_function(f"({trend})()?.x.length === {len(mondays)}", timeout=30_000)
    drawn = page.evaluate(trend)
    year = frame[(frame["day"] >= jan1) & (frame["day"] <= today())]
    weekly = year["day"].map(lambda d: d - timedelta(days=d.weekday())).value_counts()
    assert drawn["x"] == [m.isoformat() for m in mondays]
    assert drawn["y"] == [int(weekly.get(m, 0)) for m in mondays]
    partial = [jan1.weekday() != 0, *[False] * (len(mondays) - 2), today().weekday() != 6]
    assert [s == "circle-open" for s in drawn["symbol"]] == partial
    assert ("不完整周" in page.inner_text("#chart-trend")) == any(partial)
    assert page.errors == [] and page.external == []


def test_marks_and_counts_follow_one_rule(copy_db):
    """Every open case's mark (layers.backlog.mark) agrees with the SQL that counts the
    backlog, at the same instant."""
    from layers.backlog import DUE_SOON as SOON_SQL
    from layers.backlog import OVERDUE as OVERDUE_SQL
    from layers.backlog import mark

    engine = make_engine(copy_db)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            f"SELECT c.status, c.deadline, now(), {OVERDUE_SQL.format(a='c.')}, "
            f"{SOON_SQL.format(a='c.').replace(':soon_seconds', '%(s)s')} "
            f"FROM case_event c WHERE c.status = 'open'", {"s": DUE_SOON_HOURS * 3600}).all()
    engine.dispose()
    marks = [mark(status, deadline, now) for status, deadline, now, *_ in rows]
    assert [(m or {}).get("due") == "overdue" for m in marks] == [bool(r[3]) for r in rows]
    assert [(m or {}).get("due") == "due_soon" for m in marks] == [bool(r[4]) for r in rows]
    assert any(r[4] for r in rows) and any(r[3] for r in rows)


def test_glossary_page_is_the_glossary():
    """docs/glossary.md is generated from the glossary the tooltips use, in both languages."""
    from dashboard import glossary

    assert DOCS.read_text(encoding="utf-8") == glossary.markdown(DUE_SOON_HOURS)
    for key in glossary.GLOSSARY:
        for lang in ("zh", "en"):
            assert glossary.counts(key, lang, DUE_SOON_HOURS) in DOCS.read_text("utf-8")


def test_how_long_over_or_left_is_rounded_down_from_the_exact_time():
    """3 d 4 h 59 min 50 s past the deadline reads 超期 3天4小时 and 41 min 59.9 s left reads
    剩 41分钟: the mark rounded the hours to two decimals before the page rounded them down,
    so they read 3天5小时 and 42分钟 (up to 18 s early on every hour and minute)."""
    from dashboard.components import due_text
    from layers.backlog import mark

    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    over = now - timedelta(days=3, hours=4, minutes=59, seconds=50)
    assert due_text(mark("open", over, now), "zh") == "超期 3天4小时"
    soon = now + timedelta(minutes=41, seconds=59.9)
    assert due_text(mark("open", soon, now), "zh") == "剩 41分钟"
    assert due_text(mark("open", now - timedelta(minutes=59, seconds=59), now),
                    "en") == "59 min overdue"

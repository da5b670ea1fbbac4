"""Grid workers (网格员): the roster loaded through the ETL with its mapping (every bad row
kept with its file, row, field and reason; a second load changes nothing), the demo city's
roster and the cases naming their handler, and the workers where people read them — the
grid view's panel and the case detail in Chromium, ``/api/workers`` — with their figures
recomputed in pandas from ``case_event``, phones masked for a masked role (the full number
never in the page or the answer) and an official's roster cut to her street."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import psycopg
import pytest
from conftest import DashServer, ensure_user, screenshot, sql_rows

from democity.city import ADMIN_LAYERS
from democity.roster import COLUMNS, PRESET
from etl.load import load

pytestmark = [pytest.mark.db]

ROOT = Path(__file__).resolve().parents[1]
ZONE = ZoneInfo("Asia/Shanghai")
PERIOD = ("2026-08-01", "2026-10-31")  # local days, the end day included


@pytest.fixture(scope="module")
def admin_db(fresh_db, city) -> str:
    """A database of its own holding the demo city's admin units only: the loads below
    write to it."""
    url = fresh_db()
    for level in ADMIN_LAYERS:
        load(url, "admin", [city.admin], city.mapping(f"admin-{level}"), level=level)
    return url


@pytest.fixture(scope="module")
def units(admin_db) -> dict:
    """Two grids of one community, a grid of another street, a community's code."""
    grids = sql_rows(admin_db, "SELECT code, community_code, street_code FROM admin_unit "
                               "WHERE level = 4 ORDER BY code")
    first = grids[0]
    sibling = next(g for g in grids if g[1] == first[1] and g[0] != first[0])
    other = next(g for g in grids if g[2] != first[2])
    return {"grid": first[0], "sibling": sibling[0], "other": other[0],
            "community": first[1], "street": first[2]}


def write_roster(path: Path, rows: list[tuple]) -> Path:
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame.to_csv(path, index=False, encoding="utf-8")
    return path


def test_the_load_keeps_good_rows_and_every_bad_one_with_its_reason(admin_db, units,
                                                                     tmp_path):
    g, s, o = units["grid"], units["sibling"], units["other"]
    rows = [  # the loader numbers data rows from 1
        ("W1", "王建华", "专职网格员", "13812345678", g),          # 1: good
        ("W2", "李敏", "兼职网格员", "0755-2833 1234", g),         # 2: good (a landline)
        ("Z1", "陈志国", "站长", "+86 139 0000 1111", g),          # 3: good, covers g …
        ("Z1", "陈志国", "站长", "+86 139 0000 1111", s),          # 4: … and s
        ("W3", "赵芳", "专职网格员", "13900002222", o),            # 5: good, another street
        ("W4", "孙强", "专职网格员", "13900003333", "440310999999999"),  # 6: unknown grid
        ("W5", "", "专职网格员", "13900004444", g),                # 7: no name
        ("W6", "周杰", "专职网格员", "1381234", g),                # 8: a phone too short
        ("W7", "吴娟", "专职网格员", "电话待补", g),                # 9: not a phone
        ("W8", "郑涛", "协管员", "13900005555", g),                # 10: a role not in the map
        ("W1", "王建华", "专职网格员", "13812345678", g),          # 11: the same worker twice
        ("W9", "冯刚", "专职网格员", "13900006666", units["community"]),  # 12: not a grid
        ("W10", "韩梅", "专职网格员", "", s),                       # 13: good, no phone
    ]
    path = write_roster(tmp_path / "roster.csv", rows)
    report = load(admin_db, "roster", [path], PRESET)
    assert report.status == "committed"
    assert (report.read, report.loaded, report.rejected) == (13, 6, 7)
    assert report.read == report.loaded + report.rejected
    rejects = sql_rows(admin_db, "SELECT source_file, row_number, field, reason, raw "
                                 "FROM rejected_row WHERE batch_id = %s ORDER BY row_number",
                       report.batch_id)
    found = {r[1]: (r[2], r[3]) for r in rejects}
    assert {r[0] for r in rejects} == {str(path)}
    assert found == {
        6: ("grid_code", "'440310999999999' is not the code of a loaded grid"),
        7: ("name", "name is missing"),
        8: ("phone", "'1381234' is not a phone number (an 11-digit mobile number, or a "
                     "landline with its area code: 0755-12345678)"),
        9: ("phone", "'电话待补' is not a phone number (an 11-digit mobile number, or a "
                      "landline with its area code: 0755-12345678)"),
        10: ("role", "'协管员' is not in the mapping's value map"),
        11: ("id", "duplicate key, first seen at row 1"),
        12: ("grid_code", f"'{units['community']}' is not the code of a loaded grid"),
    }
    raw = {r[1]: r[4] for r in rejects}
    assert raw[9]["姓名"] == "吴娟" and raw[6]["网格编码"] == "440310999999999"
    stored = sql_rows(admin_db, "SELECT w.id, w.grid_code, w.name, w.role, w.phone, "
                                "w.community_code = a.community_code AND w.street_code = "
                                "a.street_code AND w.district_code = a.district_code "
                                "FROM grid_worker w JOIN admin_unit a ON a.code = w.grid_code "
                                "ORDER BY 1, 2")
    assert stored == sorted([
        ("W1", g, "王建华", "full_time", "13812345678", True),
        ("W2", g, "李敏", "part_time", "0755-2833 1234", True),
        ("Z1", g, "陈志国", "station_head", "+86 139 0000 1111", True),
        ("Z1", s, "陈志国", "station_head", "+86 139 0000 1111", True),
        ("W3", o, "赵芳", "full_time", "13900002222", True),
        ("W10", s, "韩梅", "full_time", None, True)])

    again = load(admin_db, "roster", [path], PRESET)
    assert (again.inserted, again.updated, again.unchanged, again.rejected) == (0, 0, 6, 7)
    assert sql_rows(admin_db, "SELECT count(*) FROM grid_worker") == [(6,)]

    # A new export of the same file: a phone changed, a worker gone (replace: as the demo
    # city loads it).
    changed = [r for r in rows if r[0] != "W3"]
    changed[0] = ("W1", "王建华", "专职网格员", "13812349999", g)
    write_roster(path, changed)
    third = load(admin_db, "roster", [path], PRESET, replace=True)
    assert (third.inserted, third.updated, third.removed) == (0, 1, 1)
    assert sql_rows(admin_db, "SELECT phone FROM grid_worker WHERE id = 'W1'") == \
        [("13812349999",)]
    assert sql_rows(admin_db, "SELECT count(*) FROM grid_worker WHERE id = 'W3'") == [(0,)]


def test_the_command_line_loads_a_roster(admin_db, units, tmp_path):
    """``onemap load roster PATH --mapping FILE``, tried first as a dry run."""
    path = write_roster(tmp_path / "名册.csv", [
        ("C1", "蔡明", "专职网格员", "13700001111", units["grid"]),
        ("C2", "", "专职网格员", "13700002222", units["grid"])])
    env = {"DATABASE_URL": admin_db, "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "onemap.cli", "load", "roster", str(path),
                          "--mapping", str(PRESET), "--dry-run"], capture_output=True,
                         text=True, cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    assert "name is missing" in run.stdout
    assert sql_rows(admin_db, "SELECT count(*) FROM grid_worker WHERE id LIKE 'C%%'") == [(0,)]
    run = subprocess.run([sys.executable, "-m", "onemap.cli", "load", "roster", str(path),
                          "--mapping", str(PRESET)], capture_output=True, text=True,
                         cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    assert sql_rows(admin_db, "SELECT name FROM grid_worker WHERE id LIKE 'C%%'") == \
        [("蔡明",)]


# -- the demo city's roster, and the workers where people read them ----------------------------
@pytest.fixture(scope="module")
def roster(city_db) -> pd.DataFrame:
    with psycopg.connect(city_db) as conn:
        cur = conn.execute("SELECT id, grid_code, community_code, street_code, name, role, "
                           "phone FROM grid_worker")
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


@pytest.fixture(scope="module")
def cases(city_db) -> pd.DataFrame:
    with psycopg.connect(city_db) as conn:
        cur = conn.execute("SELECT id, status, grid_code, street_code, handler, on_time, "
                           "handling_hours, resolved_level, reported_at FROM case_event")
        frame = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    frame["reported_at"] = pd.to_datetime(frame.reported_at, utc=True)
    return frame


def in_period(frame: pd.DataFrame, period=PERIOD) -> pd.DataFrame:
    start = pd.Timestamp(datetime.fromisoformat(period[0]).replace(tzinfo=ZONE))
    end = pd.Timestamp(datetime.fromisoformat(period[1]).replace(tzinfo=ZONE)
                       + timedelta(days=1))
    return frame[(frame.reported_at >= start) & (frame.reported_at < end)]


def recount(cases: pd.DataFrame, worker: str) -> dict:
    """A worker's figures over the period, from the cases naming them."""
    mine = in_period(cases)[lambda f: f.handler == worker]
    closed = mine[mine.status == "closed"]
    timed = closed[closed.on_time.notna()]
    hours = closed.handling_hours.dropna().to_numpy(dtype=float)
    return {"received": len(mine), "closed": len(closed),
            "on_time": int((timed.on_time == True).sum()),  # noqa: E712 (a column)
            "on_time_rate": (timed.on_time == True).sum() / len(timed) if len(timed) else None,  # noqa: E712
            "median_hours": float(np.percentile(hours, 50)) if len(hours) else None}


def test_the_demo_city_has_a_roster_and_its_grid_cases_name_their_handler(
        city, city_loaded, roster, cases):
    url, reports = city_loaded
    loaded = next(r for r in reports if r.kind == "roster")
    assert loaded.rejected == 0 and loaded.loaded == len(pd.read_csv(city.csv("roster")))
    grids = sql_rows(url, "SELECT code, community_code FROM admin_unit WHERE level = 4")
    own = roster[roster.role != "station_head"]
    per_grid = own.groupby("grid_code").id.nunique()
    assert set(per_grid.index) == {g for g, _ in grids}
    assert set(per_grid) == {1, 2} and (per_grid == 2).mean() == pytest.approx(0.5, abs=0.1)
    assert set(own.groupby("id").grid_code.nunique()) == {1}
    heads = roster[roster.role == "station_head"]
    for community, mine in heads.groupby("community_code"):
        assert mine.id.nunique() == 1, community
        assert set(mine.grid_code) == {g for g, c in grids if c == community}, community
    assert heads.community_code.nunique() == len({c for _, c in grids})
    assert roster.phone.str.fullmatch(r"1[3-9]\d{9}").all()

    named = cases[cases.handler.notna()]
    closed_at_grid = cases[(cases.status == "closed") & (cases.resolved_level == 4)]
    assert closed_at_grid.handler.notna().all() and len(closed_at_grid) > 10_000
    assert named[named.status == "closed"].resolved_level.eq(4).all()
    assert set(named.handler) <= set(own.id)
    placed = named[named.grid_code.notna()].merge(own[["id", "grid_code"]], how="left",
                                                  left_on="handler", right_on="id",
                                                  suffixes=("", "_worker"))
    assert (placed.grid_code == placed.grid_code_worker).all()


@pytest.fixture(scope="module")
def site(city_db, cases, roster):
    """A server on the demo city; an admin, a command-centre user (personal fields
    masked), a kiosk and the official of a street."""
    street = roster.street_code.value_counts().index[-1]
    ensure_user(city_db, "ro-admin", "admin")
    ensure_user(city_db, "ro-cc", "command_center")
    kiosk = ensure_user(city_db, "ro-kiosk", "kiosk")
    ensure_user(city_db, "ro-street", "street_official", street)
    server = DashServer(city_db)
    yield server, street, kiosk
    server.stop()


def busy_grid(cases: pd.DataFrame, roster: pd.DataFrame) -> str:
    """The grid with two workers of its own whose workers handled most of the period's
    cases."""
    own = roster[roster.role != "station_head"]
    two = own.groupby("grid_code").id.nunique()[lambda s: s == 2].index
    handled = in_period(cases)[lambda f: f.handler.notna()].merge(
        own, left_on="handler", right_on="id", suffixes=("", "_w"))
    return handled[handled.grid_code_w.isin(two)].grid_code_w.value_counts().index[0]


def api(server: DashServer, query: str, user: str = "ro-admin", **headers) -> dict:
    with server.open("/api/workers" + query, name=user, headers=headers) as answer:
        return json.loads(answer.read().decode("utf-8"))


def period_query(scope: str | None = None) -> str:
    return f"?start={PERIOD[0]}&end={PERIOD[1]}" + (f"&scope={scope}" if scope else "")


def check_figures(found: dict, expected: dict) -> None:
    for key in ("received", "closed", "on_time"):
        assert found[key] == expected[key], (found["id"], key)
    for key in ("on_time_rate", "median_hours"):
        if expected[key] is None:
            assert found[key] is None, (found["id"], key)
        else:
            assert found[key] == pytest.approx(expected[key], abs=0.006), (found["id"], key)


def test_the_api_figures_equal_a_recount_for_the_district_and_a_grid(site, cases, roster):
    server, _, _ = site
    district = api(server, period_query())
    ids = roster.id.unique()
    assert district["total"] == len(ids) == len(district["workers"])
    assert district["unlisted"] == 0
    for worker in district["workers"]:
        check_figures(worker, recount(cases, worker["id"]))
        assert worker["grids"] == sorted(roster[roster.id == worker["id"]].grid_code)
    assert sum(w["received"] for w in district["workers"]) == \
        in_period(cases).handler.notna().sum() > 1000

    grid = busy_grid(cases, roster)
    mine = api(server, period_query(grid))
    listed = roster[roster.grid_code == grid]
    assert [w["id"] for w in mine["workers"]] == \
        listed.sort_values("role", key=lambda r: r.map(
            {"full_time": 0, "part_time": 1, "station_head": 2})).id.tolist()
    assert [w["role"] for w in mine["workers"]] == ["full_time", "part_time", "station_head"]
    assert mine["scope"]["code"] == grid and mine["workers"][0]["received"] > 0
    for worker in mine["workers"]:
        check_figures(worker, recount(cases, worker["id"]))


def test_phones_are_masked_for_a_masked_role_and_absent_for_a_kiosk(site, roster):
    server, _, kiosk = site
    phones = set(roster.phone)
    clear = api(server, period_query(), "ro-admin")
    assert {w["phone"] for w in clear["workers"]} == phones
    answer = server.open("/api/workers" + period_query(), name="ro-cc").read().decode("utf-8")
    masked = json.loads(answer)
    assert all(re.fullmatch(r"1[3-9]\d\*{4}\d{4}", w["phone"]) for w in masked["workers"])
    assert not [p for p in phones if p in answer]
    by_id = dict(zip(roster.id, roster.phone, strict=False))
    for worker in masked["workers"]:
        full = by_id[worker["id"]]
        assert worker["phone"] == full[:3] + "****" + full[-4:]
    kiosk_view = api(server, period_query(), "ro-kiosk", Authorization=f"Bearer {kiosk}")
    assert {w["phone"] for w in kiosk_view["workers"]} == {None}


def test_a_street_official_sees_only_her_streets_workers(site, cases, roster):
    server, street, _ = site
    own = api(server, period_query(), "ro-street")
    ids = set(roster[roster.street_code == street].id)
    assert own["scope"]["code"] == street
    assert {w["id"] for w in own["workers"]} == ids and own["total"] == len(ids)
    assert all(g in set(roster[roster.street_code == street].grid_code)
               for w in own["workers"] for g in w["grids"])
    foreign = roster[roster.street_code != street].grid_code.iloc[0]
    with pytest.raises(urllib.error.HTTPError) as refused:
        server.open("/api/workers" + period_query(foreign), name="ro-street")
    assert refused.value.code == 403
    assert foreign not in refused.value.read().decode("utf-8").replace(f"'{foreign}'", "")


def dom_figures(row) -> dict:
    """A panel row's figures as the page shows them (1,234 · 95.0% · 12.3 小时)."""
    def cell(name: str) -> str:
        return row.query_selector(f".worker-{name}").inner_text().strip()

    def number(text: str, scale: float = 1.0):
        return None if text == "—" else float(text.split()[0].rstrip("%").replace(",", "")) \
            / scale

    return {"received": int(number(cell("received"))), "closed": int(number(cell("closed"))),
            "on_time_rate": number(cell("on-time"), 100), "median_hours": number(cell("median"))}


@pytest.mark.browser
def test_the_grid_view_and_the_case_detail_name_the_workers_phones_masked(
        site, cases, roster, page):
    server, _, _ = site
    grid = busy_grid(cases, roster)
    listed = roster[roster.grid_code == grid]
    server.login(page, "ro-cc")
    page.goto(server.url + "/" + period_query(grid))
    page.wait_for_selector("#grid-workers .worker-row", timeout=60_000)
    rows = page.query_selector_all("#grid-workers .worker-row")
    names = [r.query_selector(".worker-name").inner_text() for r in rows]
    assert sorted(names) == sorted(listed.drop_duplicates("id").name)
    for row in rows:
        worker = row.get_attribute("id").removeprefix("worker-")
        expected = recount(cases, worker)
        shown = dom_figures(row)
        assert shown["received"] == expected["received"]
        assert shown["closed"] == expected["closed"]
        for key, tolerance in (("on_time_rate", 0.0006), ("median_hours", 0.051)):
            if expected[key] is None:
                assert shown[key] is None
            else:
                assert shown[key] == pytest.approx(expected[key], abs=tolerance)
        full = listed[listed.id == worker].phone.iloc[0]
        assert row.query_selector(".worker-phone").inner_text() == \
            full[:3] + "****" + full[-4:]
    assert "站长" in page.inner_text("#grid-workers")
    screenshot(page, "roster-grid-view")

    # The newest of the grid's listed cases naming a handler: its detail names the grid's
    # workers, the handler first and marked.
    listed_cases = page.locator("#case-table .case-row .case-link").all_inner_texts()
    named = cases[cases.id.isin(listed_cases) & cases.handler.notna()]
    case = named.sort_values("reported_at").iloc[-1]
    page.click(f"#case-table .case-row:has-text('{case.id}')")
    page.wait_for_selector("#case-workers li", timeout=30_000)
    assert page.inner_text("#case-detail h3").split()[-1] == case.id
    detail = page.inner_text("#case-workers")
    for name in listed.name:
        assert name in detail
    first = page.locator("#case-workers li").first
    assert first.locator(".handler").count() == 1
    assert first.locator(".worker-name").inner_text() == \
        roster[roster.id == case.handler].name.iloc[0]
    assert page.locator("#case-workers .handler").count() == 1
    phones = page.locator("#case-workers .worker-phone").all_inner_texts()
    assert phones and all(re.fullmatch(r"1[3-9]\d\*{4}\d{4}", p.strip()) for p in phones)
    content = page.content()
    assert not [p for p in roster.phone if p in content]
    page.locator("#case-workers").scroll_into_view_if_needed()
    screenshot(page, "roster-case-detail")


def test_every_role_has_its_labels():
    from dashboard.messages import MESSAGES
    from onemap.vocabulary import WORKER_ROLES

    for role in WORKER_ROLES:
        assert all(MESSAGES[f"role.{role}"].get(lang) for lang in ("zh", "en")), role
    from etl.targets import TARGETS
    from onemap.cli import LOAD_KINDS

    assert list(TARGETS) == LOAD_KINDS

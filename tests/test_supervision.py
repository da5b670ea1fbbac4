"""督办 / 提醒, the early warning and the case search on the workbench, on a copy of the demo
city: every list and count read where the user reads it (the DOM, the API's JSON) and
compared with SQL written here; the write attacked (another site, another unit, a role
that only reads, hostile text) and its audit row read back.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
from datetime import datetime
from urllib.parse import quote

import psycopg
import pytest
from conftest import PASSWORD, DashServer, copy_of, ensure_user, screenshot

pytestmark = [pytest.mark.db, pytest.mark.browser]
SOON_HOURS = 24  # ONEMAP_DUE_SOON_HOURS, as documented
LISTED = 20      # rows of each early-warning list
HOSTILE = "<img src=x onerror=\"document.title='pwned'\"> 请尽快办理 & <b>回复</b>"


@pytest.fixture(scope="module")
def copy_db(city_db):
    """A copy of the demo city (urged here, so not the shared one) whose street with the
    most open cases has open cases falling due in 3, 10 and 30 hours."""
    with copy_of(city_db) as copy:
        with psycopg.connect(copy) as conn:
            street = conn.execute("SELECT street_code FROM case_event WHERE status = 'open' "
                                  "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
            newest = [r[0] for r in conn.execute(
                "SELECT id FROM case_event WHERE status = 'open' AND street_code = %s "
                "ORDER BY reported_at DESC, id LIMIT 3", (street,))]
            for case_id, delay in zip(newest, ("3 hours", "10 hours", "30 hours"), strict=True):
                conn.execute("UPDATE case_event SET deadline = now() + %s::interval WHERE id = %s",
                             (delay, case_id))
        yield copy, street


@pytest.fixture(scope="module")
def site(copy_db):
    """A server on the copy; an admin, an official of the street and one of another street,
    the command centre (phones masked), an analyst and a kiosk."""
    url, street = copy_db
    with psycopg.connect(url) as conn:
        other = conn.execute("SELECT street_code FROM case_event WHERE street_code <> %s "
                             "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
                             (street,)).fetchone()[0]
    ensure_user(url, "sv-admin", "admin")
    ensure_user(url, "sv-street", "street_official", street)
    ensure_user(url, "sv-other", "street_official", other)
    ensure_user(url, "sv-cc", "command_center")
    ensure_user(url, "sv-analyst", "analyst")
    kiosk = ensure_user(url, "sv-kiosk", "kiosk")
    server = DashServer(url)
    yield server, url, street, other, kiosk
    server.stop()


def _get(server: DashServer, user: str, path: str) -> dict:
    with server.open(path, name=user) as answer:
        return json.load(answer)


def _post(server: DashServer, path: str, body, user: str | None = None,
          headers: dict | None = None) -> tuple[int, dict]:
    """POST ``body`` as JSON (HTTP Basic as ``user``, or only ``headers``)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(server.url + path, data=data, headers=sent)
    if user:
        token = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _rows(url: str, sql: str, *params) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def _written(url: str) -> int:
    return _rows(url, "SELECT count(*) FROM case_supervision")[0][0]


# -- the early warning -------------------------------------------------------------------------
def expected_due(url: str, street: str | None, now: datetime, due: str) -> tuple[list, int]:
    """The backlog's due-soon (deadline within SOON_HOURS of ``now``) or overdue cases,
    most urgent first, and how many: from case_event, at the API's instant."""
    rule = ("deadline < %(now)s" if due == "overdue" else
            "deadline >= %(now)s AND deadline < %(now)s + make_interval(hours => %(soon)s)")
    inside = "AND street_code = %(street)s" if street else ""
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"SELECT id, extract(epoch FROM deadline - %(now)s) / 3600 "
                            f"FROM case_event WHERE status = 'open' AND {rule} {inside} "
                            f"ORDER BY deadline, id",
                            {"now": now, "soon": SOON_HOURS, "street": street}).fetchall()
    return [(r[0], abs(float(r[1]))) for r in rows[:LISTED]], len(rows)


def test_the_early_warning_lists_equal_sql(site):
    server, url, street, _, _ = site
    for user, scope in (("sv-admin", None), ("sv-street", street)):
        data = _get(server, user, "/api/workbench?range=7d")
        now = datetime.fromisoformat(data["now"])
        for due in ("due_soon", "overdue"):
            want, total = expected_due(url, scope, now, due)
            got = data[due]
            assert data[f"{due}_total"] == total, (user, due)
            assert [c["id"] for c in got] == [w[0] for w in want], (user, due)
            for case, (_, hours) in zip(got, want, strict=True):
                # "now" is shown to the second; the hours are counted from the instant itself
                assert case["due"]["due"] == due and abs(case["due"]["hours"] - hours) < 1 / 3600
        assert data["due_soon_total"] >= 2  # the copy's planted cases, 3 and 10 hours left
    urgent = _get(server, "sv-street", "/api/workbench")["due_soon"]
    assert urgent[0]["due"]["hours"] <= 3  # at most the planted case's 3 hours left


# -- 督办 through the API, attacked ------------------------------------------------------------
def _street_case(url: str, street: str, overdue: bool = True) -> tuple[str, str]:
    row = _rows(url, "SELECT id, handling_unit FROM case_event WHERE status = 'open' "
                     "AND street_code = %s AND handling_unit IS NOT NULL "
                     f"AND deadline {'<' if overdue else '>='} now() ORDER BY deadline, id "
                     "LIMIT 1", street)[0]
    return row[0], row[1]


def test_a_supervision_is_written_with_its_audit_row_and_shown_on_the_case(site):
    server, url, street, _, _ = site
    case_id, unit = _street_case(url, street)
    status, row = _post(server, "/api/supervision",
                        {"kind": "supervise", "case": case_id, "note": HOSTILE}, "sv-street")
    assert status == 201, row
    assert (row["case_id"], row["handling_unit"], row["note"], row["user_name"]) == \
        (case_id, unit, HOSTILE, "sv-street")
    stored = _rows(url, "SELECT s.kind, s.user_name, s.role, s.note, s.street_code, "
                        "s.community_code, s.grid_code, c.street_code, c.community_code, "
                        "c.grid_code FROM case_supervision s JOIN case_event c "
                        "ON c.id = s.case_id WHERE s.id = %s", row["id"])[0]
    assert stored[:4] == ("supervise", "sv-street", "street_official", HOSTILE)
    assert stored[4:7] == stored[7:10]  # where it was done: the case's own units
    audit = _rows(url, "SELECT user_name, role, allowed, target, detail FROM audit_log "
                       "WHERE action = 'supervise' AND (detail->>'supervision')::bigint = %s",
                  row["id"])
    assert len(audit) == 1
    assert audit[0][:4] == ("sv-street", "street_official", True, case_id)
    assert audit[0][4]["note"] == HOSTILE and audit[0][4]["case"] == case_id
    listed = _get(server, "sv-cc", f"/api/supervision?case={case_id}")["supervisions"]
    assert listed[0]["id"] == row["id"] and listed[0]["note"] == HOSTILE


def test_attacks_on_the_write_are_refused_and_nothing_is_written(site):
    server, url, street, other, kiosk = site
    case_id, unit = _street_case(url, street)
    foreign, foreign_unit = _street_case(url, other)
    before = _written(url)
    body = {"kind": "remind", "case": case_id, "note": "x"}
    # From another site (a browser says so): refused before anyone is asked who it is.
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                    {"Origin": "http://evil.example"}):
        status, answer = _post(server, "/api/supervision", body, "sv-admin", headers)
        assert status == 403 and "another site" in answer["error"], (headers, answer)
    # Another unit's case looks like no case; another unit's scope is refused and logged.
    status, answer = _post(server, "/api/supervision", {**body, "case": foreign}, "sv-street")
    assert status == 404, answer
    denied = _rows(url, "SELECT count(*) FROM audit_log WHERE user_name = 'sv-street' "
                        "AND action = 'denied'")[0][0]
    status, answer = _post(server, "/api/supervision",
                           {"kind": "supervise", "unit": foreign_unit, "scope": other},
                           "sv-street")
    assert status == 403, answer
    assert _rows(url, "SELECT count(*) FROM audit_log WHERE user_name = 'sv-street' "
                      "AND action = 'denied'")[0][0] == denied + 1
    # Roles that only read: the analyst and the kiosk.
    for user, headers in (("sv-analyst", None), (None, {"Authorization": f"Bearer {kiosk}"})):
        status, answer = _post(server, "/api/supervision", body, user, headers)
        assert status == 403 and "may only read" in answer["error"], answer
    # Malformed requests say what is wrong.
    for bad, field in (({"kind": "shout", "case": case_id}, "kind"),
                       ({"kind": "remind", "case": case_id, "note": "长" * 501}, "note"),
                       ({"kind": "remind"}, "case"),
                       ({"kind": "remind", "case": case_id, "unit": unit}, "case"),
                       (b"not json", "body"), ([1, 2], "body"),
                       ({"kind": "remind", "case": 5}, "case")):
        status, answer = _post(server, "/api/supervision", bad, "sv-admin")
        assert status == 400 and f"'{field}'" in answer["error"], (bad, answer)
    assert _written(url) == before
    # Reading another unit's case's 督办 is no answer either.
    with pytest.raises(urllib.error.HTTPError) as refused:
        _get(server, "sv-street", f"/api/supervision?case={foreign}")
    assert refused.value.code == 404


def expected_urged(url: str, street: str | None) -> dict[str, int]:
    """督办 and 提醒 per unit in a street: on its cases (joined to the cases, by the unit
    they have) and on units as a whole urged in the street or a unit of it."""
    inside = "c.street_code = %(s)s" if street else "TRUE"
    on_units = "s.street_code = %(s)s" if street else "TRUE"
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"SELECT unit, count(*) FROM ("
            f"SELECT c.handling_unit AS unit FROM case_supervision s JOIN case_event c "
            f"ON c.id = s.case_id WHERE {inside} UNION ALL "
            f"SELECT s.handling_unit FROM case_supervision s WHERE s.case_id IS NULL "
            f"AND {on_units}) u GROUP BY 1", {"s": street}).fetchall()
    return dict(rows)


def test_the_ranking_counts_each_units_supervisions(site):
    server, url, street, other, _ = site
    case_id, unit = _street_case(url, street, overdue=False)
    for kind in ("supervise", "remind"):
        assert _post(server, "/api/supervision", {"kind": kind, "case": case_id},
                     "sv-cc")[0] == 201
    assert _post(server, "/api/supervision", {"kind": "remind", "unit": unit},
                 "sv-street")[0] == 201
    foreign, foreign_unit = _street_case(url, other)
    assert _post(server, "/api/supervision", {"kind": "supervise", "case": foreign},
                 "sv-other")[0] == 201
    for user, scope in (("sv-street", street), ("sv-admin", None)):
        units = _get(server, user, "/api/workbench?range=all&sort=supervised")["units"]
        want = expected_urged(url, scope)
        got = {u["unit"]: u["supervised"] for u in units if u["supervised"]}
        assert got == want, (user, got, want)
        counts = [u["supervised"] for u in units]
        assert counts == sorted(counts, reverse=True)
    assert want[unit] >= 3 and want[foreign_unit] >= 1  # the district's counts hold both
    listed = _get(server, "sv-street", f"/api/supervision?unit={quote(unit)}")["supervisions"]
    assert listed[0]["kind"] == "remind" and listed[0]["case_id"] is None


# -- the page ----------------------------------------------------------------------------------
def _ids(page, selector: str) -> list[str]:
    return page.evaluate(f"() => [...document.querySelectorAll('{selector} .case-link')]"
                         ".map(a => a.innerText.trim())")


def test_the_page_warns_and_urges_a_case_and_a_unit(site, page):
    server, url, street, _, _ = site
    server.login(page, "sv-street")
    page.goto(server.url + "/workbench?range=all")
    page.wait_for_selector("#overdue-list tbody tr", timeout=60_000)
    now = datetime.fromisoformat(_get(server, "sv-street", "/api/workbench?range=all")["now"])
    for due, list_id in (("due_soon", "#due-soon-list"), ("overdue", "#overdue-list")):
        want, total = expected_due(url, street, now, due)
        assert _ids(page, list_id) == [w[0] for w in want], due
        count = page.locator(f"{list_id} .list-note").inner_text().strip()
        assert count in (f"共 {total:,} 条", f"显示 {len(want)} / 共 {total:,}"), count
    first = _ids(page, "#overdue-list")[0]
    page.locator("#overdue-list .case-link").first.click()
    page.wait_for_selector("#wb-urge-case-send", timeout=30_000)
    assert f"case={first}" in page.url and first in page.locator("#wb-detail h3").inner_text()
    before = len(_get(server, "sv-street", f"/api/supervision?case={first}")["supervisions"])
    page.locator("#wb-urge-case-kind").get_by_text("提醒", exact=True).click()
    page.locator("#wb-urge-case-note").fill(HOSTILE)
    page.locator("#wb-urge-case-send").click()
    page.wait_for_function("() => document.querySelector('#wb-urge-case-said').innerText"
                           ".includes('已记录')", timeout=30_000)
    notes = page.evaluate("() => [...document.querySelectorAll('#wb-urge-case-list .note')]"
                          ".map(n => n.textContent)")
    assert notes[0] == HOSTILE  # the note as text: its markup shown, not made
    assert page.locator("#wb-urge-case-list img, #wb-urge-case-list b").count() == 0
    assert page.title() != "pwned"
    assert page.locator("#wb-urge-case-list li").first.locator(".kind").inner_text() == "提醒"
    assert page.locator("#wb-urge-case-note").input_value() == ""
    rows = _rows(url, "SELECT kind, user_name, note FROM case_supervision WHERE case_id = %s "
                      "ORDER BY id", first)
    assert len(rows) == before + 1 and rows[-1] == ("remind", "sv-street", HOSTILE)
    assert _rows(url, "SELECT count(*) FROM audit_log WHERE action = 'remind' AND target = %s "
                      "AND user_name = 'sv-street' AND detail->>'note' = %s",
                 first, HOSTILE)[0][0] == 1
    screenshot(page, "workbench-supervise")
    # The desk's detail of the case lists it too, and leads to the workbench.
    page.goto(server.url + "/?range=all&cases=overdue")
    row = page.locator("#case-table tbody tr", has=page.locator(".case-link", has_text=first))
    row.first.wait_for(timeout=60_000)
    row.first.locator("td").nth(2).click()
    page.wait_for_selector("#case-urged li .note", timeout=30_000)
    assert page.locator("#case-urged li .note").first.text_content() == HOSTILE
    assert page.locator("#case-urged img, #case-urged b").count() == 0
    assert f"case={first}" in page.locator("#case-on-workbench").get_attribute("href")
    # The unit handling it, urged from the ranking; the ranking counts it.
    unit = _rows(url, "SELECT handling_unit FROM case_event WHERE id = %s", first)[0][0]
    page.goto(server.url + f"/workbench?range=all&sort=supervised&unit={quote(unit)}")
    page.wait_for_selector("#wb-urge-unit-send", timeout=60_000)
    page.locator("#wb-urge-unit-note").fill("本周内清理超期件")
    page.locator("#wb-urge-unit-send").click()
    page.wait_for_function("() => document.querySelector('#wb-urge-unit-said').innerText"
                           ".includes('已记录')", timeout=30_000)
    assert page.locator("#wb-urge-unit-list li .note").first.inner_text() == "本周内清理超期件"
    page.reload()
    page.wait_for_selector("#ranking-table tbody tr", timeout=60_000)
    shown = page.evaluate("() => Object.fromEntries([...document.querySelectorAll("
                          "'#ranking-table tbody tr')].map(r => [r.querySelector('.unit-link')"
                          ".innerText.trim(), r.querySelector('td.supervised').innerText.trim()]))")
    want = expected_urged(url, street)
    assert {k: int(v.replace(",", "")) for k, v in shown.items() if v != "0"} == want
    page.locator("#wb-urge-unit").scroll_into_view_if_needed()
    screenshot(page, "workbench-supervise-unit")
    assert not page.errors and not page.external, (page.errors, page.external)


def test_the_page_refuses_from_another_site_and_offers_no_form_to_a_reader(site, page):
    """The page's own write (a callback's POST) meets the same gate: sent from another
    site, it is refused before it runs; an analyst's page has no form, and her callback
    request is refused by the write's own check."""
    server, url, street, _, _ = site
    case_id, _ = _street_case(url, street)
    before = _written(url)
    call = {"output": "..wb-urge-case-said.children...wb-urge-case-list.children..."
                      "wb-urge-case-note.value..",
            "outputs": [{"id": "wb-urge-case-said", "property": "children"},
                        {"id": "wb-urge-case-list", "property": "children"},
                        {"id": "wb-urge-case-note", "property": "value"}],
            "inputs": [{"id": "wb-urge-case-send", "property": "n_clicks", "value": 1}],
            "state": [{"id": "wb-urge-case-kind", "property": "value", "value": "supervise"},
                      {"id": "wb-urge-case-note", "property": "value", "value": "x"},
                      {"id": "wb-url", "property": "search", "value": f"?case={case_id}"}],
            "changedPropIds": ["wb-urge-case-send.n_clicks"]}
    server.login(page, "sv-street")
    page.goto(server.url + f"/workbench?case={case_id}")
    page.wait_for_selector("#wb-urge-case-send", timeout=60_000)
    forged = page.context.request.post(server.url + "/_dash-update-component", data=call,
                                       headers={"Sec-Fetch-Site": "cross-site"})
    assert forged.status == 403 and _written(url) == before
    sent = page.context.request.post(server.url + "/_dash-update-component", data=call)
    assert sent.status == 200 and _written(url) == before + 1  # the same request, from here
    page.context.clear_cookies()
    server.login(page, "sv-analyst")
    page.goto(server.url + f"/workbench?case={case_id}")
    page.wait_for_selector("#wb-detail h3", timeout=60_000)
    assert page.locator("#wb-urge-case-send").count() == 0
    assert "只能查看" in page.locator("#wb-urge-case").inner_text()
    answer = page.context.request.post(server.url + "/_dash-update-component", data=call)
    said = json.dumps(answer.json()["response"], ensure_ascii=False)
    assert "只能查看，不能督办" in said, said
    assert _written(url) == before + 1


# -- the case search ---------------------------------------------------------------------------
def _search(server: DashServer, user: str, q: str, extra: str = "") -> dict:
    return _get(server, user, f"/api/search?q={quote(q)}{extra}")


def test_search_by_id_and_address_equals_sql(site):
    server, url, street, other, _ = site
    case_id, _ = _street_case(url, street)
    hits = _search(server, "sv-street", case_id)
    assert hits["features"][0]["id"] == case_id
    assert hits["features"][0]["properties"]["matched"] == "id"
    address = _rows(url, "SELECT address FROM case_event WHERE id = %s", case_id)[0][0]
    part = address[-6:]
    for user, scope in (("sv-street", street), ("sv-admin", None)):
        inside = "AND street_code = %s" if scope else ""
        want = _rows(url, f"SELECT id FROM case_event WHERE (address ILIKE %s OR id = %s OR "
                          f"id LIKE %s) {inside} ORDER BY (id = %s) DESC, reported_at DESC, id",
                     f"%{part}%", part, f"{part}%", *([scope] if scope else []), part)
        got = _search(server, user, part)
        assert got["numberMatched"] == len(want), user
        assert [f["id"] for f in got["features"]] == [w[0] for w in want[:50]], user
        assert all(part in f["properties"]["address"] for f in got["features"])
    foreign, _ = _street_case(url, other)
    assert _search(server, "sv-street", foreign)["numberMatched"] == 0  # never another unit's
    with pytest.raises(urllib.error.HTTPError) as refused:
        _search(server, "sv-street", part, f"&scope={other}")
    assert refused.value.code == 403
    with pytest.raises(urllib.error.HTTPError) as bad:
        _search(server, "sv-street", "")
    assert bad.value.code == 400


MASKED = re.compile(r"^\d{3}\*{4}\d{4}$")


def test_a_masked_role_finds_a_case_by_a_full_phone_and_sees_it_masked(site, page):
    server, url, street, other, kiosk = site
    case_id, phone = _rows(url, "SELECT id, reporter_phone FROM case_event "
                                "WHERE street_code = %s AND char_length(reporter_phone) = 11 "
                                "ORDER BY reported_at DESC LIMIT 1", street)[0]
    want = [r[0] for r in _rows(url, "SELECT id FROM case_event WHERE reporter_phone = %s "
                                     "ORDER BY reported_at DESC, id", phone)]
    answer = _search(server, "sv-cc", phone)
    assert [f["id"] for f in answer["features"]] == want and case_id in want
    for feature in answer["features"]:
        assert feature["properties"]["matched"] == "phone"
        assert MASKED.match(feature["properties"]["reporter_phone"])
        assert feature["properties"]["reporter_phone"] == f"{phone[:3]}****{phone[-4:]}"
    assert phone not in json.dumps(answer)
    assert _search(server, "sv-admin", phone)["features"][0]["properties"][
        "reporter_phone"] == phone  # in clear for the admin
    assert _search(server, "sv-cc", phone[:7])["numberMatched"] == 0  # the whole number only
    kiosk_hits = json.load(server.open(f"/api/search?q={phone}", headers={
        "Authorization": f"Bearer {kiosk}"}))
    assert kiosk_hits["numberMatched"] == 0  # kiosks see no phones: none searched
    foreign_phone = _rows(url, "SELECT reporter_phone FROM case_event WHERE street_code = %s "
                               "AND char_length(reporter_phone) = 11 LIMIT 1", other)[0][0]
    assert _search(server, "sv-street", foreign_phone)["numberMatched"] == len(
        _rows(url, "SELECT 1 FROM case_event WHERE reporter_phone = %s AND street_code = %s",
              foreign_phone, street))
    # On the page: found, masked in the DOM, the full number nowhere.
    server.login(page, "sv-cc")
    page.goto(server.url + "/workbench?range=30d")
    page.wait_for_selector("#wb-search", timeout=60_000)
    page.locator("#wb-search").fill(phone)
    page.locator("#wb-search-go").click()
    page.wait_for_selector("#search-table tbody tr", timeout=60_000)
    assert f"q={phone}" in page.url
    shown = page.evaluate("() => [...document.querySelectorAll('#search-table tbody tr')]"
                          ".map(r => [r.querySelector('.case-link').innerText.trim(), "
                          "r.querySelector('td.phone').innerText.trim()])")
    assert [s[0] for s in shown] == want
    assert all(s[1] == f"{phone[:3]}****{phone[-4:]}" for s in shown)
    # The number typed stays in the search box (and the address): nowhere else.
    assert phone not in page.locator("#search").inner_text()
    assert phone not in page.locator("main").inner_text()
    assert page.locator("#wb-search").input_value() == phone
    assert not page.errors and not page.external, (page.errors, page.external)


def test_search_shows_hits_on_the_map_and_the_url_opens_the_case(site, page):
    server, url, street, _, _ = site
    case_id, _ = _street_case(url, street)
    address = _rows(url, "SELECT address FROM case_event WHERE id = %s", case_id)[0][0]
    part = address[-6:]
    server.login(page, "sv-street")
    page.goto(server.url + "/workbench?range=30d")
    page.wait_for_selector("#wb-search", timeout=60_000)
    page.locator("#wb-search").fill(part)
    page.locator("#wb-search-go").click()
    page.wait_for_selector("#search-table tbody tr", timeout=60_000)
    assert "range=30d" in page.url  # the view's other state kept
    api = _search(server, "sv-street", part)
    assert _ids(page, "#search-table") == [f["id"] for f in api["features"]]
    page.wait_for_function("() => { const g = document.querySelector('#search-map "
                           ".js-plotly-plot'); return g && g.data && g.data.length }",
                           timeout=30_000)
    on_map = page.evaluate("() => document.querySelector('#search-map .js-plotly-plot')"
                           ".data[0].text")
    located = [f["id"] for f in api["features"] if f["geometry"]]
    assert on_map == located and located
    page.locator("#search-table .case-link", has_text=case_id).first.click()
    page.wait_for_selector("#wb-detail h3", timeout=30_000)
    assert f"case={case_id}" in page.url and f"q={quote(part)}" in page.url
    link = page.url
    page.goto("about:blank")
    page.goto(link)  # the link opens the same search and case
    page.wait_for_selector("#wb-detail h3", timeout=60_000)
    assert case_id in page.locator("#wb-detail h3").inner_text()
    assert _ids(page, "#search-table") == [f["id"] for f in api["features"]]
    page.wait_for_timeout(500)  # the map's markers drawn
    screenshot(page, "workbench-search")
    assert not page.errors and not page.external, (page.errors, page.external)

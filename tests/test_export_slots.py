"""Exports cannot starve the map: writing one keeps a core busy, so a person writes one at a
time and the server at most ``ONEMAP_EXPORT_SLOTS`` at once; beyond that the answer is 429
with Retry-After and a message saying why, at once, and nothing is written or audited.

The attack: six clients exporting 50,000 cases over and over took every core of the server
(bench_serve_load's adversarial phase: the 50 sessions' p95 went from 0.26 s to 4.3 s and
most exports timed out at 60 s)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
from urllib.parse import quote

import psycopg
import pytest
from conftest import PASSWORD, DashServer, screenshot

from layers.exports import PERSON_LOCK, SLOT_LOCK

pytestmark = [pytest.mark.db]

EXPORT = "/export/cases.csv?range=all"


def fetch(site, path: str, navigate: bool = False) -> tuple[int, dict, bytes]:
    """(status, headers, body) of a request as the admin ``tester`` over HTTP Basic; as a
    browser's navigation (a person opening a link) when ``navigate``."""
    browser = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin",
               "Sec-Fetch-Dest": "document", "Accept": "text/html"}
    try:
        answer = site.open(path, "tester", PASSWORD, headers=browser if navigate else None)
        return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def audited(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM audit_log WHERE action = 'export'"
                            ).fetchone()[0]


def held(url: str, namespace: int) -> bool:
    """Whether some session holds an advisory lock of ``namespace`` (a two-key lock shows
    its first key as ``classid``)."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objsubid = 2 AND classid::bigint = %s", (namespace,)).fetchone()[0]


@pytest.fixture(scope="module")
def site(city_db):
    server = DashServer(city_db, env={"ONEMAP_EXPORT_SLOTS": "1"})
    yield server
    server.stop()


def test_a_second_export_of_the_same_person_waits_for_the_first(site, city_db):
    first: dict = {}
    worker = threading.Thread(target=lambda: first.update(answer=fetch(site, EXPORT)))
    worker.start()
    deadline = time.monotonic() + 60
    while not held(city_db, PERSON_LOCK):  # the first export is being written
        assert worker.is_alive() and time.monotonic() < deadline, first
        time.sleep(0.05)
    before = audited(city_db)
    status, headers, body = fetch(site, EXPORT)
    assert status == 429
    assert int(headers["Retry-After"]) > 0
    assert "still being written" in json.loads(body)["error"]
    worker.join(120)
    status, _, body = first["answer"]
    with psycopg.connect(city_db) as conn:
        cases = conn.execute("SELECT count(*) FROM case_event").fetchone()[0]
    assert status == 200 and body.decode("utf-8-sig").count("\n") == cases + 1
    assert audited(city_db) == before + 1  # the refused one wrote nothing
    assert fetch(site, EXPORT)[0] == 200  # once the first is done, the next is written


def test_no_export_beyond_the_servers_slots(site, city_db):
    with psycopg.connect(city_db, autocommit=True) as other:  # someone else's export
        other.execute("SELECT pg_advisory_lock(%s, 0)", (SLOT_LOCK,))
        started = time.monotonic()
        status, headers, body = fetch(site, EXPORT)
        assert time.monotonic() - started < 5  # refused at once, not after writing
        assert status == 429 and int(headers["Retry-After"]) > 0
        assert "1 export is being written now" in json.loads(body)["error"]
        other.execute("SELECT pg_advisory_unlock(%s, 0)", (SLOT_LOCK,))
        assert fetch(site, EXPORT)[0] == 200


def test_a_refused_export_link_shows_why_in_its_own_tab(site, city_db, page):
    """A person who clicks an export link while the server's slots are taken reads why and
    when to try again, in the export's own tab (not JSON shown raw, not a silently failed
    download), and the map stays as it was; once a slot is free the same link downloads."""
    site.login(page)
    page.goto(f"{site.url}/?range=all")
    page.wait_for_selector("#export-csv", timeout=60_000)
    with psycopg.connect(city_db, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, 0)", (SLOT_LOCK,))
        with page.context.expect_page() as opened:
            page.click("#export-csv")
        refused = opened.value
        refused.wait_for_load_state()
        text = refused.inner_text("body")
        assert "正在导出，请稍后再试" in text and "1 export is being written now" in text
        assert "秒后再试" in text and refused.locator("a[href='/']").count() == 1
        screenshot(refused, "export-refused")
        refused.close()
        other.execute("SELECT pg_advisory_unlock(%s, 0)", (SLOT_LOCK,))
    assert page.url.startswith(f"{site.url}/?range=all")
    assert page.locator("#map-box .js-plotly-plot").count() == 1
    downloads: list = []  # the export's tab downloads its file and closes …
    page.on("download", lambda d: downloads.append(d))  # … the download is the map's page's
    page.click("#export-csv")
    deadline = time.monotonic() + 60
    while not downloads and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert downloads and downloads[0].suggested_filename.endswith(".csv")
    assert downloads[0].failure() is None


def test_a_refused_export_is_json_for_a_client_and_a_page_for_a_person(site, city_db):
    """The same refusal: JSON for an API client, a page for a browser's navigation, both with
    their status and Retry-After; the reason is text on the page (markup in it is not run)."""
    with psycopg.connect(city_db, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, 0)", (SLOT_LOCK,))
        client = fetch(site, EXPORT)
        person = fetch(site, EXPORT, navigate=True)
        other.execute("SELECT pg_advisory_unlock(%s, 0)", (SLOT_LOCK,))
    for status, headers, _ in (client, person):
        assert status == 429 and int(headers["Retry-After"]) > 0
    assert client[1]["Content-Type"].startswith("application/json")
    assert person[1]["Content-Type"].startswith("text/html")
    assert "<h1>正在导出，请稍后再试</h1>" in person[2].decode()
    hostile = quote("<img src=x onerror=alert(1)>")
    status, headers, body = fetch(site, f"/export/cases.csv?range={hostile}", navigate=True)
    assert status == 400 and headers["Content-Type"].startswith("text/html")
    assert "&lt;img src=x onerror=alert(1)&gt;" in body.decode()
    assert "<img" not in body.decode()

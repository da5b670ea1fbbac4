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

import psycopg
import pytest
from conftest import PASSWORD, DashServer

from layers.exports import PERSON_LOCK, SLOT_LOCK

pytestmark = [pytest.mark.db]

EXPORT = "/export/cases.csv?range=all"


def fetch(site, path: str) -> tuple[int, dict, bytes]:
    """(status, headers, body) of a request as the admin ``tester`` over HTTP Basic."""
    try:
        answer = site.open(path, "tester", PASSWORD)
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

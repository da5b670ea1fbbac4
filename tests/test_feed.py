"""The case feed, POST /api/cases, on a served app over HTTP against a copy of the demo city:
a new case and each lifecycle step, visible in /api/kpi and the case's OGC item; the same
event twice counted once; a late event never moves a case back; bad events named with field
and reason while the good ones are written; who may post; and /api/kpi equal to a recount
from case_event after a sequence of events."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from conftest import ensure_user, sql_rows

pytestmark = pytest.mark.db

DAY = "2026-11-20"
KPI = f"/api/kpi?start={DAY}&end={DAY}"


@pytest.fixture(scope="module")
def feed_db(city_copy):
    return city_copy


@pytest.fixture(scope="module")
def served(feed_db):
    from conftest import DashServer

    server = DashServer(feed_db)
    token = ensure_user(feed_db, "hotline", "feed")
    yield server, token
    server.stop()


def post(server, body, token=None, headers=None, raw: bytes | None = None):
    data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
    head = {"Content-Type": "application/json", **(headers or {})}
    if token:
        head["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(server.url + "/api/cases", data=data, headers=head,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def get(server, path):
    with server.open(path) as answer:
        return json.loads(answer.read())


def a_point(url: str, street: str | None = None) -> tuple[float, float, str]:
    """A point inside a grid (of ``street`` when given), and that grid's code."""
    return sql_rows(url, "SELECT ST_X(p), ST_Y(p), code FROM (SELECT code, "
                    "ST_PointOnSurface(geom) AS p FROM admin_unit WHERE level = 4 "
                    "AND (%s::text IS NULL OR code LIKE %s || '%%') ORDER BY code LIMIT 1) g",
                    street, street)[0]


def case(url: str, case_id: str) -> dict:
    rows = sql_rows(url, "SELECT row_to_json(c)::text FROM case_event c WHERE id = %s",
                    case_id)
    return json.loads(rows[0][0]) if rows else {}


def test_a_case_and_its_lifecycle(served, feed_db):
    server, token = served
    lon, lat, grid = a_point(feed_db)
    before = get(server, KPI)["cases"]
    new = {"id": "F-1", "channel": "12345热线", "category_1": "市容环境", "category_2": "占道经营",
           "reported_at": f"{DAY}T09:00:00+08:00", "status": "open", "lon": lon, "lat": lat,
           "deadline": f"{DAY}T18:00:00+08:00"}
    status, answer = post(server, new, token)
    assert status == 200, answer
    assert answer["results"] == [{"index": 0, "id": "F-1", "result": "inserted"}]
    assert answer["inserted"] == 1 and answer["batch"]
    # The request is a committed load batch, the newest: the dashboard's view cache, keyed
    # by the newest committed batch's time, moves on.
    assert sql_rows(feed_db, "SELECT id, source FROM load_batch WHERE status = 'committed' "
                             "ORDER BY finished_at DESC LIMIT 1") == [(answer["batch"],
                                                                       "api:hotline")]
    after = get(server, KPI)["cases"]
    assert after["total"] == before["total"] + 1
    item = get(server, "/collections/cases/items/F-1")
    assert item["properties"]["category_1"] == "市容环境"
    assert case(feed_db, "F-1")["grid_code"] == grid

    steps = [("accepted_at", "09:05"), ("dispatched_at", "09:30"), ("handled_at", "11:00"),
             ("feedback_at", "12:00")]
    for name, hour in steps:
        status, answer = post(server, {"id": "F-1", name: f"{DAY}T{hour}:00+08:00"}, token)
        assert status == 200 and answer["updated"] == 1, answer
        row = case(feed_db, "F-1")
        assert row[name].startswith(f"{DAY}T{int(hour[:2]) - 8:02d}:{hour[3:]}"), row
        # The partial body wiped nothing.
        assert row["channel"] == "12345热线" and row["category_2"] == "占道经营"
        assert row["status"] == "open" and row["grid_code"] == grid

    status, answer = post(server, {"id": "F-1", "closed_at": f"{DAY}T15:00:00+08:00"}, token)
    assert status == 200 and answer["updated"] == 1
    row = case(feed_db, "F-1")
    assert row["status"] == "closed" and row["on_time"] is True
    assert row["handling_hours"] == pytest.approx(6.0)
    closed = get(server, KPI)["cases"]
    assert closed["closed"] == after["closed"] + 1

    status, answer = post(server, {"id": "F-1", "evaluated_at": f"{DAY}T18:30:00+08:00",
                                   "satisfaction": 5}, token)
    assert status == 200 and answer["updated"] == 1
    item = get(server, "/collections/cases/items/F-1")["properties"]
    assert item["satisfaction"] == 5
    assert case(feed_db, "F-1")["evaluated_at"].startswith(f"{DAY}T10:30")

    # A late event — a 受理 saying "open", arriving after 办结 — does not reopen the case nor
    # move its acceptance; the same event twice changes nothing.
    status, answer = post(server, {"id": "F-1", "accepted_at": f"{DAY}T09:01:00+08:00",
                                   "status": "open"}, token)
    assert answer["results"][0]["result"] == "unchanged", answer
    row = case(feed_db, "F-1")
    assert row["status"] == "closed" and row["accepted_at"].startswith(f"{DAY}T01:05")
    again = post(server, {"id": "F-1", "evaluated_at": f"{DAY}T18:30:00+08:00",
                          "satisfaction": 5}, token)
    assert again == (200, {**again[1], "unchanged": 1, "updated": 0})
    status, answer = post(server, new, token)
    assert answer["results"][0]["result"] == "unchanged"
    assert get(server, KPI)["cases"]["total"] == before["total"] + 1
    assert sql_rows(feed_db, "SELECT count(*) FROM case_event WHERE id = 'F-1'") == [(1,)]
    # Every accepted batch is in the audit log.
    audited = sql_rows(feed_db, "SELECT count(*) FROM audit_log WHERE action = 'cases' "
                                "AND user_name = 'hotline' AND allowed")[0][0]
    assert audited >= 9


def test_bad_events_are_named_and_the_good_ones_written(served, feed_db):
    server, token = served
    lon, lat, _ = a_point(feed_db)
    good = {"id": "F-good", "channel": "网站", "category_1": "交通", "status": "open",
            "reported_at": f"{DAY}T10:00:00", "lon": lon, "lat": lat}
    batch = [
        good,
        {**good, "id": "F-sat", "satisfaction": 9},
        {**good, "id": "F-when", "reported_at": "yesterday"},
        {**good, "id": "F-far", "lon": 0.5, "lat": 0.5},
        {**good, "id": "F-extra", "colour": "red"},
        {**good, "id": "F-type", "satisfaction": "5"},
        {**good, "id": "F-nochannel", "channel": None},
        {**good, "id": "F-status", "status": "done"},
        {"id": "F-nowhere", "channel": "网站", "category_1": "交通", "status": "open",
         "reported_at": f"{DAY}T10:00:00"},
        {"channel": "网站"},
        ["not", "an", "object"],
        {**good, "id": "F-good2", "admin_code": a_point(feed_db)[2], "lon": None, "lat": None},
    ]
    status, answer = post(server, batch, token)
    assert status == 207, answer
    results = {r["index"]: r for r in answer["results"]}
    assert [results[i]["result"] for i in range(len(batch))] == (
        ["inserted"] + ["rejected"] * 10 + ["inserted"])
    fields = {results[i]["id"]: (results[i]["field"], results[i]["reason"])
              for i in range(1, 11)}
    assert fields["F-sat"] == ("satisfaction", "'9' is out of range (allowed 1 to 5)")
    assert fields["F-when"] == ("reported_at", "'yesterday' is not a date/time")
    assert fields["F-far"][0] == "geometry" and "far outside" in fields["F-far"][1]
    assert fields["F-extra"][0] == "colour"
    assert fields["F-type"] == ("satisfaction", '"5" is string, not integer')
    assert fields["F-nochannel"] == ("channel", "channel is missing")
    assert fields["F-status"][0] == "status"
    assert fields["F-nowhere"] == ("place", "no coordinates and no admin code or name")
    assert results[9]["field"] == "id" and results[10]["reason"].startswith("is not a JSON")
    written = sql_rows(feed_db, "SELECT id FROM case_event WHERE id LIKE 'F-%%' "
                                "AND id <> 'F-1' ORDER BY id")
    assert written == [("F-good",), ("F-good2",)]
    kept = sql_rows(feed_db, "SELECT count(*) FROM rejected_row WHERE batch_id = %s",
                    answer["batch"])
    assert kept == [(10,)]


def test_who_may_post(served, feed_db):
    server, token = served
    body = {"id": "F-auth", "channel": "网站", "category_1": "交通", "status": "open",
            "reported_at": f"{DAY}T10:00:00", "admin_code": a_point(feed_db)[2]}
    assert post(server, body)[0] == 401
    assert post(server, body, "not-a-token")[0] == 401
    kiosk = ensure_user(feed_db, "wall", "kiosk")
    assert post(server, body, kiosk)[0] == 403
    basic = urllib.request.Request(server.url + "/api/cases", data=json.dumps(body).encode(),
                                   method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        server.open("/api/cases", data=json.dumps(body).encode())
    assert refused.value.code == 403 and basic
    # A browser on another site posting with the feed's token (or a session) is refused.
    assert post(server, body, token, {"Origin": "https://evil.example"})[0] == 403
    assert post(server, body, token, {"Sec-Fetch-Site": "cross-site"})[0] == 403
    # A feed's token reads nothing and never becomes a session.
    request = urllib.request.Request(server.url + KPI,
                                     headers={"Authorization": f"Bearer {token}"})
    with pytest.raises(urllib.error.HTTPError) as read:
        urllib.request.urlopen(request, timeout=30)
    assert read.value.code == 403
    with pytest.raises(urllib.error.HTTPError) as kiosk_url:
        urllib.request.urlopen(server.url + f"/?kiosk={token}", timeout=30)
    assert kiosk_url.value.code == 401
    assert sql_rows(feed_db, "SELECT count(*) FROM case_event WHERE id = 'F-auth'") == [(0,)]
    # Too many events, or too many bytes: refused whole.
    assert post(server, [body] * 1001, token)[0] == 413
    assert post(server, None, token, raw=b"[" + b" " * (3 * 2**20) + b"]")[0] == 413
    assert post(server, None, token, raw=b"{not json")[0] == 400
    asked = urllib.request.Request(server.url + "/api/cases", method="GET",
                                   headers={"Authorization": f"Bearer {token}"})
    with pytest.raises(urllib.error.HTTPError) as other:
        urllib.request.urlopen(asked, timeout=30)
    assert other.value.code == 405 and other.value.headers["Allow"] == "POST, OPTIONS"


def test_a_feed_limited_to_a_street(served, feed_db):
    server, _ = served
    streets = [r[0] for r in sql_rows(feed_db, "SELECT code FROM admin_unit WHERE level = 2 "
                                               "ORDER BY code LIMIT 2")]
    token = ensure_user(feed_db, "street-feed", "feed", streets[0])
    inside, outside = a_point(feed_db, streets[0]), a_point(feed_db, streets[1])
    body = {"channel": "网站", "category_1": "交通", "status": "open",
            "reported_at": f"{DAY}T10:00:00"}
    status, answer = post(server, [{**body, "id": "F-in", "lon": inside[0], "lat": inside[1]},
                                   {**body, "id": "F-out", "lon": outside[0],
                                    "lat": outside[1]}], token)
    assert status == 207
    assert [r["result"] for r in answer["results"]] == ["inserted", "rejected"]
    assert answer["results"][1]["field"] == "place"
    assert streets[0] in answer["results"][1]["reason"]


def test_kpi_is_the_recount_after_a_sequence(served, feed_db):
    """After new cases, stage events, late and repeated events, /api/kpi's figures of the
    day are those counted from case_event."""
    server, token = served
    lon, lat, _ = a_point(feed_db)
    new = [{"id": f"F-seq-{i}", "channel": "12345热线", "category_1": "城市管理",
            "reported_at": f"{DAY}T{8 + i % 10:02d}:{i % 60:02d}:00+08:00", "status": "open",
            "deadline": f"{DAY}T{19 + i % 3:02d}:00:00+08:00", "lon": lon, "lat": lat}
           for i in range(60)]
    new[7]["deadline"] = f"{DAY}T07:00:00+08:00"  # before it was reported: rejected
    status, answer = post(server, new, token)
    assert status == 207 and answer["rejected"] == 1, answer
    assert answer["results"][7]["field"] == "deadline"
    closing = [{"id": f"F-seq-{i}", "closed_at": f"{DAY}T{18 + i % 4:02d}:00:00+08:00"}
               for i in range(0, 60, 2)]
    assert post(server, closing, token)[1]["updated"] == len(closing)
    rated = [{"id": f"F-seq-{i}", "evaluated_at": f"{DAY}T21:00:00+08:00",
              "satisfaction": 1 + i % 5} for i in range(0, 60, 4)]
    assert post(server, rated, token)[1]["rejected"] == 0
    late = [{"id": f"F-seq-{i}", "accepted_at": f"{DAY}T08:00:00+08:00", "status": "open"}
            for i in range(0, 60, 3)]
    assert post(server, late, token)[0] == 200
    again = post(server, closing, token)[1]
    assert (again["unchanged"], again["rejected"]) == (len(closing), 0), again
    figures = get(server, KPI)["cases"]
    total, closed, on_time, late, score = sql_rows(feed_db, f"""
        SELECT count(*), count(*) FILTER (WHERE status = 'closed'),
               count(*) FILTER (WHERE status = 'closed' AND on_time),
               count(*) FILTER (WHERE status = 'closed' AND NOT on_time),
               round(avg(satisfaction), 2)::float
        FROM case_event WHERE (reported_at AT TIME ZONE 'Asia/Shanghai')::date = '{DAY}'""")[0]
    assert (figures["total"], figures["closed"]) == (total, closed)
    assert figures["on_time_rate"] == pytest.approx(on_time / (on_time + late), abs=1e-6)
    assert figures["satisfaction"] == pytest.approx(score)


def test_the_feeds_grid_cache_reads_the_grids_again_once_an_admin_load_changed_them(feed_db):
    """The feed keeps the grid index between requests (etl.grids.GridCache): unchanged
    grids are not read again, and grids an admin load rewrote are (here in a transaction
    rolled back: one grid moved 1° east by a new batch, its pieces cut again)."""
    import numpy as np
    import psycopg
    import shapely

    from etl.admin import REFRESH_PIECES
    from etl.grids import GridCache
    from onemap.database import libpq_url

    cache = GridCache()
    with psycopg.connect(libpq_url(feed_db)) as conn:
        first = cache.read(conn)
        assert first is not None and cache.read(conn) is first
        code, x, y = conn.execute(
            "SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) AS p "
            "FROM admin_unit WHERE level = 4 ORDER BY code LIMIT 1) u").fetchone()
        moved = np.array([shapely.Point(x + 1, y)], dtype=object)
        assert first.place(moved).tolist() == [None]  # nothing there before
        batch = conn.execute("INSERT INTO load_batch (kind, source) VALUES ('admin', 'test') "
                             "RETURNING id").fetchone()[0]
        conn.execute("UPDATE admin_unit SET geom = ST_Multi(ST_Translate(geom, 1, 0)), "
                     "batch_id = %s WHERE code = %s", (batch, code))
        conn.execute(REFRESH_PIECES)
        second = cache.read(conn)
        assert second is not first
        assert second.place(moved).tolist() == [code]
        assert cache.read(conn) is second
        conn.rollback()


def test_the_feed_keeps_its_connection_free_of_batch_locks_and_replaces_one_that_died(feed_db):
    """CaseFeed writes each request on a connection kept open between requests: the batch's
    hold (a session advisory lock) is let go once it committed, or every request would add
    one for the connection's life; a kept connection the server ended is replaced."""
    from etl.feed import CaseFeed
    from onemap.principal import Principal

    lon, lat, _ = a_point(feed_db)
    feed, who = CaseFeed(feed_db), Principal("hotline", "feed")

    def event(number: int) -> list[dict]:
        return [{"id": f"K-{number}", "channel": "12345热线", "category_1": "市容环境",
                 "reported_at": "2026-11-19T09:00:00+08:00", "status": "open",
                 "lon": lon, "lat": lat}]

    assert [r.result for r in feed(event(1), who).rows] == ["inserted"]
    (kept,) = list(feed.connections.idle.queue)
    pid = kept.info.backend_pid
    assert sql_rows(feed_db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                             "AND pid = %s", pid) == [(0,)]
    assert [r.result for r in feed(event(2), who).rows] == ["inserted"]
    assert [c.info.backend_pid for c in feed.connections.idle.queue] == [pid]  # the same
    sql_rows(feed_db, "SELECT pg_terminate_backend(%s)", pid)
    assert [r.result for r in feed(event(3), who).rows] == ["inserted"]
    (again,) = list(feed.connections.idle.queue)
    assert again.info.backend_pid != pid
    assert sql_rows(feed_db, "SELECT count(*) FROM case_event WHERE id LIKE 'K-%%'") == [(3,)]

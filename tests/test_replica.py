"""Reads on a streaming replica: a real primary and hot standby on this machine.

A fresh primary cluster lets a replication role stream its WAL; the replica is a base backup
of it (``pg_basebackup -R``) on another port. The schema and a small district are loaded on
the primary and replayed on the replica; ``onemap serve --prod`` then runs with
``DATABASE_URL`` on the primary and ``DATABASE_READ_URL`` on the replica. With the replica's
replay paused, the app still counts the replica's cases, not the newer ones on the primary,
while its writes (the audit log of an export) land on the primary. The replica refuses writes.
With the primary down, no session can be verified, and none reads the replica's data.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import psycopg
import pytest
from conftest import PASSWORD, ensure_user, unavailable
from replica_cluster import ReplicaCluster
from test_auth import request, session_cookie, with_cookie
from test_etl_bad_files import CASES_MAPPING, build_hierarchy
from test_etl_kill import cases_frame

from etl.load import load
from onemap.accounts import set_disabled
from onemap.cluster import LocalCluster
from onemap.database import make_engine
from onemap.errors import OnemapError
from onemap.migrate import migrate
from onemap.settings import PROJECT_ROOT, get_settings

pytestmark = pytest.mark.db

CASES = 500
MORE = 100  # loaded while the replica's replay is paused
APP = "onemap-replica-test"  # application_name of the served app's sessions


@pytest.fixture(scope="module")
def pair():
    """(primary, replica), both running; stopped and deleted afterwards. They live inside
    the checkout because the server user must reach their folders."""
    home = PROJECT_ROOT / ".onemap" / "test-clusters" / f"replica-{uuid.uuid4().hex[:8]}"
    primary = LocalCluster(get_settings(home=home / "primary", pg_port=55500,
                                        database_url=None))
    replica = ReplicaCluster(get_settings(home=home / "replica", pg_port=55500,
                                          database_url=None), primary)
    try:
        primary.up()
        primary.allow_replication()
        replica.up()
    except (OnemapError, psycopg.Error) as exc:
        replica.down()
        primary.down()
        shutil.rmtree(home, ignore_errors=True)
        unavailable(f"a primary and replica pair ({exc})")
    yield primary, replica
    replica.down()
    primary.down()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def loaded(pair, tmp_path_factory):
    """The schema and a small district (2 streets, 8 grids, 500 cases) loaded on the
    primary, and replayed on the replica."""
    primary, replica = pair
    url = primary.url()
    migrate(url)
    folder = tmp_path_factory.mktemp("replica")
    area = build_hierarchy(url, folder / "hierarchy")
    load_cases(url, area, 0, CASES, folder)
    replica.catch_up()
    return primary, replica, area


def load_cases(url: str, area, first: int, count: int, folder: Path) -> None:
    """Cases ``first`` … ``first + count - 1`` of one generated series, through the ETL."""
    frame = cases_frame(area, first + count).iloc[first:]
    frame.to_csv(folder / "cases.csv", index=False)
    (folder / "cases.yaml").write_text(CASES_MAPPING, encoding="utf-8")
    report = load(url, "cases", [folder / "cases.csv"], folder / "cases.yaml")
    assert (report.status, report.inserted) == ("committed", count)


def scalar(url: str, sql: str, *params):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchone()[0]


def app_sessions(url: str) -> int:
    """Sessions the served app holds on the server behind ``url``."""
    return scalar(url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                  APP)


def test_replica_follows_the_primary_and_refuses_writes(loaded):
    primary, replica, _ = loaded
    assert replica.in_recovery()
    assert scalar(primary.url(), "SELECT pg_is_in_recovery()") is False
    assert scalar(primary.admin_url(), "SELECT count(*) FROM pg_stat_replication "
                  "WHERE state = 'streaming'") == 1
    count = "SELECT count(*) FROM case_event"
    assert scalar(replica.url(), count) == scalar(primary.url(), count) == CASES
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        scalar(replica.url(), "DELETE FROM case_event RETURNING 1")


def test_prod_reads_from_the_replica_and_writes_to_the_primary(loaded, serve, tmp_path):
    primary, replica, area = loaded
    server = serve(primary.url(), "--prod", "--workers", "2",
                   DATABASE_READ_URL=replica.url(), PGAPPNAME=APP)
    assert "reads from DATABASE_READ_URL" in server.log.read_text()
    assert total_cases(server) == CASES
    assert app_sessions(replica.url("postgres")) >= 1  # the pools keep their connections

    # With replay paused the replica stays behind the primary: the app counts what the
    # replica holds, not what the primary holds.
    with psycopg.connect(replica.admin_url(), autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")  # a superuser's right
        try:
            load_cases(primary.url(), area, CASES, MORE, tmp_path)
            assert scalar(primary.url(), "SELECT count(*) FROM case_event") == CASES + MORE
            assert total_cases(server) == CASES
            # The export reads the replica's cases; its audit record is the app's write,
            # on the primary (the replica would refuse it, and is not even replaying).
            exported = server.open("/export/cases.csv?range=all").read().decode("utf-8-sig")
            assert len(exported.strip().splitlines()) == 1 + CASES
            exports = "SELECT count(*) FROM audit_log WHERE action = 'export'"
            assert scalar(primary.url(), exports) == 1
            assert scalar(replica.url(), exports) == 0
        finally:
            conn.execute("SELECT pg_wal_replay_resume()")
    replica.catch_up()
    assert total_cases(server) == CASES + MORE


def total_cases(server) -> int:
    return json.load(server.open("/api/kpi?range=all"))["cases"]["total"]


def test_no_session_reads_the_replica_while_the_primary_is_down(loaded, serve):
    """A user is disabled, the primary goes down: neither the disabled user's old cookie
    nor anyone else's reads the replica (before, the role stored in the cookie stood in
    for the primary's answer); every way in answers 503 with Retry-After until the
    primary is back. (Kept last: it stops the module's primary.)"""
    primary, replica, _ = loaded
    for name in ("stays", "goes"):
        ensure_user(primary.url(), name, "analyst")
    server = serve(primary.url(), "--prod", "--workers", "2", DATABASE_READ_URL=replica.url())
    cookies = {name: session_cookie(server, name) for name in ("stays", "goes")}
    assert {n: with_cookie(server, "/api/kpi", c)[0] for n, c in cookies.items()} == {
        "stays": 200, "goes": 200}
    engine = make_engine(primary.url())
    set_disabled(engine, "goes")
    engine.dispose()
    assert with_cookie(server, "/api/kpi", cookies["goes"])[0] == 401
    replica.catch_up()
    primary.down()
    try:
        answers = {name: with_cookie(server, "/api/kpi", c) for name, c in cookies.items()}
        answers["basic"] = request(server.url + "/api/kpi", user="stays", password=PASSWORD)
        answers["page"] = with_cookie(server, "/", cookies["stays"], Accept="text/html")
        for way, (status, headers, body) in answers.items():
            assert status == 503 and int(headers["Retry-After"]) > 0, (way, status, body[:200])
            assert b"cases" not in body
    finally:
        primary.up()
    assert with_cookie(server, "/api/kpi", cookies["stays"])[0] == 200
    assert with_cookie(server, "/api/kpi", cookies["goes"])[0] == 401

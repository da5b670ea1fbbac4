"""The embedded cluster's life cycle, DATABASE_URL, and migrations on an empty database."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from onemap.cluster import LocalCluster, find_bin_dir, postgis_install_hint
from onemap.errors import OnemapError
from onemap.migrate import available, migrate
from onemap.roles import create_database
from onemap.settings import PROJECT_ROOT, get_settings

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def cluster():
    """A throw-away cluster inside the checkout (the server user must reach its folder)."""
    home = PROJECT_ROOT / ".onemap" / "test-clusters" / uuid.uuid4().hex[:8]
    try:
        find_bin_dir()
    except OnemapError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    cluster = LocalCluster(get_settings(home=home, pg_port=55400, database_url=None))
    cluster.up()
    yield cluster
    cluster.down()
    shutil.rmtree(home, ignore_errors=True)


def scalar(url: str, sql: str):
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchone()[0]


def test_up_twice_is_harmless(cluster):
    first = cluster.up()
    second = cluster.up()
    assert first.running and second.running
    assert (first.pid, first.port) == (second.pid, second.port)
    assert scalar(cluster.url(), "SELECT postgis_version()").startswith("3")


def test_down_then_up_keeps_data(cluster):
    url = cluster.url()
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS keep (v text)")
        conn.execute("INSERT INTO keep VALUES ('still here')")
    cluster.down()
    assert not cluster.status().running
    cluster.up()
    assert scalar(cluster.url(), "SELECT string_agg(v, ',') FROM keep") == "still here"


def test_stale_pid_file_is_recovered(cluster):
    pid_file = cluster.data_dir / "postmaster.pid"
    crashed = pid_file.read_text()
    cluster.down()
    # What a crash leaves: the old file, naming a dead process (or a reused PID).
    for pid in (_dead_pid(), os.getpid()):
        pid_file.write_text("\n".join([str(pid), *crashed.splitlines()[1:]]) + "\n")
        assert not cluster.status().running
        assert cluster.up().running
        cluster.down()
    assert cluster.up().running


def test_taken_port_means_another_port(cluster):
    old = cluster.port
    cluster.down()
    try:
        with socket.socket() as squatter:
            # The server's own closed connections may linger on the port (TIME_WAIT).
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", old))
            squatter.listen()
            status = cluster.up()
    finally:
        cluster.up()
    assert status.running and status.port != old
    assert scalar(cluster.url(), "SELECT 1") == 1


def test_database_url_points_at_another_server(cluster):
    """With DATABASE_URL set, the CLI migrates and uses that server, not the local cluster."""
    name = f"other_{uuid.uuid4().hex[:6]}"
    create_database(cluster.admin_url(), name, cluster.roles.app)
    url = cluster.url(name)
    env = {**os.environ, "DATABASE_URL": url}
    run = [sys.executable, "-m", "onemap.cli", "db"]
    out = subprocess.run([*run, "migrate"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "0001_baseline" in out.stdout
    printed = subprocess.run([*run, "url"], env=env, capture_output=True, text=True)
    assert printed.stdout.strip() == url
    assert scalar(url, "SELECT count(*) FROM schema_migration") == len(available())
    status = subprocess.run([*run, "status"], env=env, capture_output=True, text=True)
    assert "DATABASE_URL" in status.stdout


def test_migrations_on_an_empty_database(cluster):
    name = f"empty_{uuid.uuid4().hex[:6]}"
    create_database(cluster.admin_url(), name, cluster.roles.app)
    url = cluster.url(name)
    assert [m.version for m in migrate(url)] == [m.version for m in available()]
    assert migrate(url) == []  # a second run has nothing to do
    tables = {
        "admin_unit", "facility", "iot_device", "iot_event", "case_event",
        "load_batch", "rejected_row",
    }
    with psycopg.connect(url) as conn:
        found = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        geoms = conn.execute(
            "SELECT f_table_name, srid FROM geometry_columns ORDER BY 1").fetchall()
        gist = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_indexes WHERE indexdef LIKE '%USING gist%'")}
    assert tables <= found
    assert {t for t, _ in geoms} == {
        "admin_unit", "facility", "iot_device", "case_event", "grid_piece"}
    assert {srid for _, srid in geoms} == {4326}
    assert gist == {t for t, _ in geoms}


def test_missing_postgis_hint_names_the_package():
    hint = postgis_install_hint(find_bin_dir())
    assert "postgis" in hint and ("apt-get install postgresql-" in hint or "conda" in hint)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_cluster_folder_is_git_ignored():
    ignored = (PROJECT_ROOT / ".gitignore").read_text().split()
    assert ".onemap/" in ignored and Path(PROJECT_ROOT / ".onemap").exists()

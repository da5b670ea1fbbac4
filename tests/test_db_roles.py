"""The embedded cluster lets nobody in without a password, and the app in as a role with no
power beyond its database: another OS user is refused on every way in (TCP and socket, every
role), the app cannot run programs, read password hashes or make itself superuser, the
read-only role reads and changes nothing, and the served app reads as that role.

A cluster made by the code before (commit 2eb3c64: trust on 127.0.0.1 and the socket, the app
its superuser) is secured in place by the next ``up``: its data, its databases and an open
session survive, and the attacks above fail on it afterwards.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import time
import urllib.request
import uuid

import psycopg
import pytest
from conftest import PASSWORD, unavailable, unused_port

from etl.load import load
from onemap.cluster import LocalCluster, find_bin_dir
from onemap.errors import OnemapError
from onemap.migrate import migrate
from onemap.roles import MARK
from onemap.settings import PROJECT_ROOT, get_settings

pytestmark = pytest.mark.db

OLD_COMMIT = "2eb3c64"
TESTS = PROJECT_ROOT / ".onemap" / "test-clusters"  # the server user must reach them


def make_home(tag: str):
    home = TESTS / f"{tag}-{uuid.uuid4().hex[:8]}"
    try:
        find_bin_dir()
    except OnemapError as exc:
        unavailable(str(exc))
    return home


def need_another_user() -> None:
    if os.geteuid() != 0 or not shutil.which("runuser"):
        unavailable("root and runuser, to try the cluster as another OS user")


@pytest.fixture(scope="module")
def cluster():
    """A new cluster, its database migrated by the app."""
    home = make_home("roles")
    cluster = LocalCluster(get_settings(home=home, pg_port=55700, database_url=None))
    cluster.up()
    migrate(cluster.url())
    load(cluster.url(), "admin", [PROJECT_ROOT / "data/pingshan/district_440310_gcj02.geojson"],
         PROJECT_ROOT / "etl/presets/pingshan-district.yaml")
    yield cluster
    cluster.down()
    shutil.rmtree(home, ignore_errors=True)


def as_nobody(*cmd: str) -> subprocess.CompletedProcess:
    """``cmd`` run as the OS user nobody, in a folder it may enter."""
    return subprocess.run(["runuser", "-u", "nobody", "--", *cmd], capture_output=True,
                          text=True, cwd="/tmp", env={"PATH": os.environ["PATH"]}, timeout=60)


def nobody_tries(cluster: LocalCluster, roles: tuple[str, ...] | None = None) -> list[str]:
    """psql as nobody, as every role, over TCP and the socket, with and without the URL the
    app uses: the ways that let it in (each refusal must be for want of a password or of
    access to the socket)."""
    let_in = []
    for role in roles or cluster.roles.all():
        for host in ("127.0.0.1", str(cluster.socket_dir)):
            for how in (f"host={host} port={cluster.port} user={role} dbname=postgres",
                        cluster.url("postgres", role)):
                out = as_nobody("psql", "-X", "-w", "-At", "-d", how, "-c",
                                "SELECT current_user")
                if out.returncode == 0:
                    let_in.append(f"{role} via {how}: {out.stdout.strip()}")
                else:
                    assert any(reason in out.stderr for reason in (
                        "password authentication failed", "no password supplied",
                        "Permission denied")), out.stderr
    return let_in


def test_another_os_user_is_refused(cluster):
    need_another_user()
    assert nobody_tries(cluster) == []
    assert as_nobody("cat", str(cluster.credentials.path)).returncode != 0
    mode = stat.S_IMODE(cluster.credentials.path.stat().st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(cluster.socket_dir.stat().st_mode) == 0o700


def test_urls_carry_no_password(cluster):
    for url in (cluster.url(), cluster.read_url(), cluster.admin_url()):
        assert "passfile=" in url and ":" not in url.split("@")[0].removeprefix("postgresql://")
        for role in cluster.roles.all():
            assert cluster.credentials.password(role) not in url
    env = {**os.environ, "ONEMAP_HOME": str(cluster.settings.home),
           "ONEMAP_PG_PORT": "55700"}
    env.pop("DATABASE_URL", None)
    printed = subprocess.run([sys.executable, "-m", "onemap.cli", "db", "url"], env=env,
                             capture_output=True, text=True)
    assert printed.stdout.strip() == cluster.url()
    # What a person does with it: psql reads the password from the file.
    out = subprocess.run(["psql", "-X", "-w", "-At", "-d", cluster.url(), "-c",
                          "SELECT current_user"], capture_output=True, text=True)
    assert out.stdout.strip() == cluster.roles.app, out.stderr


ATTACKS = {
    "run a program": "COPY (SELECT 1) TO PROGRAM 'id'",
    "write a file": "COPY (SELECT 1) TO '/tmp/onemap-attack'",
    "read a file": "SELECT pg_read_file('/etc/passwd')",
    "read password hashes": "SELECT rolpassword FROM pg_authid",
    "become superuser": "ALTER ROLE {app} SUPERUSER",
    "make a role": "CREATE ROLE intruder LOGIN SUPERUSER",
    "make a database": "CREATE DATABASE intruder",
    "change the server": "ALTER SYSTEM SET listen_addresses = '*'",
    "an untrusted language": "CREATE FUNCTION f() RETURNS int LANGUAGE c AS 'x', 'y'",
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_app_role_cannot(cluster, attack):
    statement = ATTACKS[attack].format(app=cluster.roles.app)
    with (psycopg.connect(cluster.url(), autocommit=True) as conn,
          pytest.raises(psycopg.errors.InsufficientPrivilege)):
        conn.execute(statement)
    assert not os.path.exists("/tmp/onemap-attack")


def test_the_app_owns_its_database_and_nothing_more(cluster):
    with psycopg.connect(cluster.url()) as conn:
        powers = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls "
            "FROM pg_roles WHERE rolname = current_user").fetchone()
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database "
                             "WHERE datname = current_database()").fetchone()[0]
        owners = {r[0] for r in conn.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'spatial_ref_sys'")}
        memberships = conn.execute(
            "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
            "WHERE r.rolname = current_user").fetchone()[0]
    assert powers == (False, False, False, False, False)
    assert owner == cluster.roles.app and owners == {cluster.roles.app}
    assert memberships == 0


def test_the_reader_reads_and_changes_nothing(cluster):
    with psycopg.connect(cluster.url()) as conn:  # the app writes, then adds a table
        conn.execute("INSERT INTO load_batch (kind, source, status) "
                     "VALUES ('cases', 'roles-test', 'committed')")
        conn.execute("CREATE TABLE IF NOT EXISTS later_table (v int)")
        conn.execute("INSERT INTO later_table VALUES (7)")
    with psycopg.connect(cluster.read_url()) as conn:
        assert conn.execute("SELECT count(*) FROM load_batch WHERE source = 'roles-test'"
                            ).fetchone()[0] == 1
        assert conn.execute("SELECT v FROM later_table").fetchone()[0] == 7
    for statement in ("DELETE FROM load_batch", "CREATE TABLE mine (v int)",
                      "SET TRANSACTION READ WRITE; DELETE FROM load_batch"):
        with (psycopg.connect(cluster.read_url()) as conn,
              pytest.raises((psycopg.errors.ReadOnlySqlTransaction,
                             psycopg.errors.InsufficientPrivilege))):
            conn.execute(statement)
    with psycopg.connect(cluster.read_url()) as conn:
        powers = conn.execute("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                              "WHERE rolname = current_user").fetchone()
    assert powers == (False, False, False)


def test_the_served_app_reads_as_the_read_only_role(cluster):
    """``onemap serve`` on the local cluster (no DATABASE_URL): the API's reads come from
    sessions of the read-only role, the sign-in check from the app's."""
    env = {**os.environ, "ONEMAP_HOME": str(cluster.settings.home), "ONEMAP_PG_PORT": "55700",
           "PGAPPNAME": "onemap-roles-test"}
    env.pop("DATABASE_URL", None)
    env.pop("DATABASE_READ_URL", None)
    cli = [sys.executable, "-m", "onemap.cli"]
    added = subprocess.run([*cli, "user", "add", "reader-test", "--role", "analyst",
                            "--password-stdin"], input=PASSWORD + "\n", env=env,
                           capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    port = unused_port()
    server = subprocess.Popen([*cli, "serve", "--port", str(port), "--no-debug"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        token = base64.b64encode(f"reader-test:{PASSWORD}".encode()).decode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/kpi?range=all",
                                         headers={"Authorization": f"Basic {token}"})
        answer = _retry(lambda: json.load(urllib.request.urlopen(request, timeout=30)))
        assert answer["cases"]["total"] == 0
        with psycopg.connect(cluster.admin_url()) as conn:
            users = {r[0] for r in conn.execute(
                "SELECT DISTINCT usename FROM pg_stat_activity WHERE application_name = %s",
                ("onemap-roles-test",))}
    finally:
        server.terminate()
        server.wait(10)
    assert users == {cluster.roles.app, cluster.roles.read}


def _retry(call, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


# -- a cluster made by the code before ---------------------------------------------------
def old_cluster_class(tmp_path):
    """``LocalCluster`` as commit 2eb3c64 wrote it (read from git, not rewritten here)."""
    source = subprocess.run(["git", "show", f"{OLD_COMMIT}:onemap/cluster.py"],
                            cwd=PROJECT_ROOT, capture_output=True, text=True)
    if source.returncode != 0:
        unavailable(f"commit {OLD_COMMIT} in the git history ({source.stderr.strip()})")
    path = tmp_path / "old_cluster.py"
    path.write_text(source.stdout)
    spec = importlib.util.spec_from_file_location("old_cluster", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_cluster"] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module.LocalCluster


def test_an_old_trusting_cluster_is_secured_in_place(tmp_path):
    need_another_user()
    home = make_home("old")
    settings = get_settings(home=home, pg_port=55720, database_url=None)
    old = old_cluster_class(tmp_path)(settings)
    try:
        old.up()
        trusted = old.url()  # postgresql://onemap@127.0.0.1:PORT/onemap, no password
        migrate(trusted)
        with psycopg.connect(trusted) as conn:
            conn.execute("INSERT INTO load_batch (kind, source, status) "
                         "VALUES ('cases', 'before', 'committed')")
        with psycopg.connect(old.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE kept_bench")
        with psycopg.connect(old.url("kept_bench")) as conn:
            conn.execute("CREATE TABLE figures (v int)")
            conn.execute("INSERT INTO figures VALUES (42)")
        # The attack works before: the app's superuser, over TCP and the socket.
        assert len(nobody_tries(LocalCluster(settings), (settings.pg_user,))) == 4
        session = psycopg.connect(trusted, autocommit=True)  # someone working meanwhile

        new = LocalCluster(settings)
        assert not new.secured
        new.up()
        new.up()  # a second run has nothing to do

        hba = (new.data_dir / "pg_hba.conf").read_text()
        rules = [line.split() for line in hba.splitlines() if line and line[0] != "#"]
        assert MARK in hba and rules and {rule[-1] for rule in rules} == {"scram-sha-256"}
        assert nobody_tries(new) == []
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(trusted).close()  # the old URL, without password, is refused
        assert session.execute("SELECT count(*) FROM load_batch").fetchone()[0] == 1
        session.close()

        with psycopg.connect(new.admin_url()) as conn:
            roles = dict(conn.execute(
                "SELECT rolname, rolsuper FROM pg_roles WHERE rolname = ANY(%s)",
                (list(new.roles.all()[:3]),)).fetchall())
            boot = conn.execute("SELECT rolname FROM pg_roles WHERE oid = 10").fetchone()[0]
            databases = dict(conn.execute(
                "SELECT datname, pg_get_userbyid(datdba) FROM pg_database "
                "WHERE datname IN ('onemap', 'kept_bench')").fetchall())
        assert roles == {new.roles.admin: True, new.roles.app: False, new.roles.read: False}
        assert boot == new.roles.admin
        assert databases == {"onemap": new.roles.app, "kept_bench": new.roles.app}
        for database in ("onemap", "kept_bench"):
            with psycopg.connect(new.admin_url(database)) as conn:
                owners = conn.execute(
                    "SELECT c.relkind, c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                    "AND c.relkind IN ('r', 'v', 'm', 'S', 'i')").fetchall()
            postgis = {name for kind, name, _ in owners if name in (
                "spatial_ref_sys", "spatial_ref_sys_pkey", "geometry_columns",
                "geography_columns")}
            assert {o for _, name, o in owners if name not in postgis} == {new.roles.app}
        with psycopg.connect(new.url()) as conn:
            conn.execute("INSERT INTO load_batch (kind, source, status) "
                         "VALUES ('cases', 'after', 'committed')")
            assert migrate(new.url()) == []
        with psycopg.connect(new.url("kept_bench")) as conn:
            conn.execute("INSERT INTO figures VALUES (43)")
        with psycopg.connect(new.read_url()) as conn:
            assert conn.execute("SELECT string_agg(source, ',' ORDER BY id) FROM load_batch"
                                ).fetchone()[0] == "before,after"
        with (psycopg.connect(new.url(), autocommit=True) as conn,
              pytest.raises(psycopg.errors.InsufficientPrivilege)):
            conn.execute("COPY (SELECT 1) TO PROGRAM 'id'")
    finally:
        LocalCluster(settings).down()
        shutil.rmtree(home, ignore_errors=True)

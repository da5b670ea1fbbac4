"""The embedded default database: a private PostGIS cluster in ``.onemap/pg/``.

``up`` creates the cluster the first time, recovers a stale ``postmaster.pid``, picks a free
port, starts the server (as an unprivileged user when we are root), and makes sure the
roles, the database and the PostGIS extension exist. Every step is safe to repeat.

Nobody gets in without a password (see :mod:`onemap.roles`): the app connects as a role that
owns its database and nothing else, reads may use a read-only role, and only setting-up
connects as the superuser. A cluster made before that (every local connection trusted, the
app its superuser) is secured in place by the next ``up``.

A cluster that :meth:`LocalCluster.allow_replication` can be followed by a streaming
replica (``tests/replica_cluster.py`` makes one for the replica tests).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import pwd
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from onemap.errors import ClusterError
from onemap.roles import (
    HBA,
    MARK,
    Credentials,
    Roles,
    create_database,
    ensure_role,
    grant_reads,
    hand_over,
    set_password,
)
from onemap.settings import Settings

SERVER_CONF = """\
# written by onemap: tuned for one analytical machine
listen_addresses = '127.0.0.1'
max_connections = 200
shared_buffers = 1GB
work_mem = 64MB
maintenance_work_mem = 512MB
max_wal_size = 4GB
checkpoint_timeout = 15min
jit = off
timezone = 'UTC'
password_encryption = 'scram-sha-256'
# a streaming replica can follow this cluster (pg_basebackup -R)
wal_level = replica
max_wal_senders = 5
"""


@dataclass(frozen=True)
class ClusterStatus:
    """What ``onemap db status`` reports."""

    initialized: bool
    running: bool
    port: int | None
    pid: int | None
    url: str | None
    data_dir: Path


def find_bin_dir() -> Path:
    """Locate the PostgreSQL server binaries: ``pg_config``, Debian's layout, or conda."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates += [Path(p) for p in versions]
    if os.environ.get("CONDA_PREFIX"):
        candidates.append(Path(os.environ["CONDA_PREFIX"]) / "bin")
    for bin_dir in candidates:
        if (bin_dir / "initdb").exists() and (bin_dir / "pg_ctl").exists():
            return bin_dir
    raise ClusterError(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found. Install them with "
        "`sudo apt-get install postgresql postgis` (Debian/Ubuntu) or "
        "`conda install -c conda-forge postgresql postgis`, or set DATABASE_URL to a server."
    )


def _version_key(path: str) -> float:
    try:
        return float(Path(path).parent.name)
    except ValueError:
        return 0.0


def server_major(bin_dir: Path) -> str:
    """The PostgreSQL major version of the binaries in ``bin_dir`` (e.g. ``"15"``)."""
    out = subprocess.run([bin_dir / "postgres", "--version"], capture_output=True, text=True)
    return out.stdout.split()[-1].split(".")[0]


def postgis_install_hint(bin_dir: Path) -> str:
    """The exact command that installs PostGIS for these binaries."""
    if os.environ.get("CONDA_PREFIX") and str(bin_dir).startswith(os.environ["CONDA_PREFIX"]):
        return "conda install -c conda-forge postgis"
    return f"sudo apt-get install postgresql-{server_major(bin_dir)}-postgis-3"


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As PostgreSQL binds: a port held only by closed connections (TIME_WAIT) is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(start: int, host: str = "127.0.0.1", tries: int = 200) -> int:
    """The first free port at or after ``start``."""
    for port in range(start, start + tries):
        if port_is_free(port, host):
            return port
    raise ClusterError(f"no free port between {start} and {start + tries - 1} on {host}")


class LocalCluster:
    """A PostgreSQL cluster living in ``settings.cluster_dir``."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.root = settings.cluster_dir
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log_file = self.root / "server.log"
        self.port_file = self.root / "port"
        self.roles = Roles(settings.pg_admin_user, settings.pg_user, settings.pg_read_user)
        # Outside the folder handed to the server user: only we may read it.
        self.credentials = Credentials(settings.home / "pgpass", self.roles)
        self.left_alone: list[str] = []  # databases securing in place could not hand over
        self._bin_dir: Path | None = None

    # -- facts -------------------------------------------------------------------------
    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = find_bin_dir()
        return self._bin_dir

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    @property
    def port(self) -> int | None:
        try:
            return int(self.port_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    @property
    def secured(self) -> bool:
        """True when connections need a password (a cluster made before did not)."""
        hba = self.data_dir / "pg_hba.conf"
        return hba.exists() and any(line.startswith(MARK) for line in
                                    hba.read_text().splitlines())

    def url(self, database: str | None = None, role: str | None = None) -> str:
        """The app's URL, which psql understands, e.g.
        ``postgresql://onemap@127.0.0.1:54320/onemap?passfile=/…/.onemap/pgpass``: the
        password stays in the file, readable by us alone."""
        if self.port is None:
            raise ClusterError("the local cluster has never been started: run `onemap db up`")
        db = database or self.settings.pg_database
        return (f"postgresql://{role or self.roles.app}@127.0.0.1:{self.port}/{db}"
                f"?passfile={self.credentials.path}")

    def read_url(self, database: str | None = None) -> str:
        """The read-only role's URL (SELECT in read-only transactions)."""
        return self.url(database, self.roles.read)

    def admin_url(self, database: str = "postgres") -> str:
        """The superuser's URL: for creating databases and looking after the cluster."""
        return self.url(database, self.roles.admin)

    def running_pid(self) -> int | None:
        """PID of our postmaster if it is alive, else None."""
        pid = _pid_in(self.data_dir / "postmaster.pid")
        if pid is None or not _is_postgres_process(pid):
            return None
        return pid

    def status(self) -> ClusterStatus:
        pid = self.running_pid() if self.initialized else None
        return ClusterStatus(
            initialized=self.initialized,
            running=pid is not None,
            port=self.port,
            pid=pid,
            url=self.url() if self.port else None,
            data_dir=self.data_dir,
        )

    # -- life cycle ----------------------------------------------------------------------
    def up(self) -> ClusterStatus:
        """Create (first time) and start the cluster; make sure the roles, the database and
        PostGIS exist, and secure a cluster made before the roles."""
        if not self.initialized:
            self._initdb()
        if self.running_pid() is None:
            self._remove_stale_pid()
            self._start(self._choose_port())
        with self._setting_up():
            if not self.secured:
                self._secure_in_place()
            elif not self.credentials.exists:
                raise ClusterError(
                    f"the passwords of the local cluster ({self.credentials.path}) are "
                    "missing: restore that file, or delete the cluster (make clean-db)")
            self._ensure_database()
        return self.status()

    def down(self) -> None:
        """Stop the server (fast shutdown); a stopped cluster stays stopped."""
        if self.initialized and self.running_pid() is not None:
            self._pg_ctl("stop", "-m", "fast", "-w", "-t", "60")

    def allow_replication(self) -> None:
        """Let the replication role (created if missing) stream WAL from 127.0.0.1, with its
        password: a replica's login."""
        role = self.roles.replicator
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            ensure_role(conn, role, self.credentials.password(role), replication=True)
            hba = self.data_dir / "pg_hba.conf"
            line = f"host replication {role} 127.0.0.1/32 scram-sha-256\n"
            rules = hba.read_text()
            if line not in rules:
                hba.write_text(line + rules)  # first match wins: ours goes on top
            conn.execute("SELECT pg_reload_conf()")

    # -- steps ---------------------------------------------------------------------------
    def _initdb(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self.credentials.ensure()
        # initdb reads the superuser's password from a file the server user can read.
        pwfile = self.root / f".pwfile.{os.getpid()}"
        pwfile.write_text(self.credentials.password(self.roles.admin) + "\n")
        pwfile.chmod(0o600)
        self._hand_over(self.root)
        try:
            self._run(
                self.bin_dir / "initdb", "-D", self.data_dir, "-U", self.roles.admin,
                "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8",
                "--locale=C.UTF-8", what="initdb",
            )
        finally:
            pwfile.unlink()
        (self.data_dir / "onemap.conf").write_text(SERVER_CONF)
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'onemap.conf'\n")
        self._write_hba()
        self._hand_over(self.root)

    def _write_hba(self) -> None:
        (self.data_dir / "pg_hba.conf").write_text(HBA.format(passfile=self.credentials.path))

    def _choose_port(self) -> int:
        previous = self.port
        if previous and port_is_free(previous):
            return previous
        return free_port(self.settings.pg_port)

    def _start(self, port: int) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.chmod(0o700)  # the server user's alone: no other user's socket
        self._hand_over(self.socket_dir)
        options = f"-p {port} -k {self.socket_dir}"
        self._pg_ctl("start", "-w", "-t", "120", "-l", self.log_file, "-o", options)
        self.port_file.write_text(f"{port}\n")

    def _remove_stale_pid(self) -> None:
        pid_file = self.data_dir / "postmaster.pid"
        if pid_file.exists():
            pid_file.unlink()

    @contextlib.contextmanager
    def _setting_up(self):
        """One process at a time sets up roles and databases (many start together: the
        workers of ``serve --prod``, test runs side by side)."""
        self.settings.home.mkdir(parents=True, exist_ok=True)
        with (self.settings.home / "pg-setup.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _ensure_database(self) -> None:
        """The app's and the reader's roles, the app's database (owned by the app, readable
        by the reader) and PostGIS in it, as the superuser."""
        db = self.settings.pg_database
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            ensure_role(conn, self.roles.app, self.credentials.password(self.roles.app))
            ensure_role(conn, self.roles.read, self.credentials.password(self.roles.read),
                        read_only=True)
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                  (db,)).fetchone()
            available = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'"
            ).fetchone()
        if not available:
            raise ClusterError(
                "PostGIS is not installed for PostgreSQL "
                f"{server_major(self.bin_dir)}: run `{postgis_install_hint(self.bin_dir)}`"
            )
        if not exists:
            create_database(self.admin_url(), db, self.roles.app, self.roles.read)

    def _secure_in_place(self) -> None:
        """A cluster made before the roles trusted every local connection and ran the app
        as its superuser: its superuser becomes the admin role, the app gets a role of its
        own that is given every database the superuser owned (and what is in them), all
        get passwords, and from then on every connection needs one. Until the last step
        (the new pg_hba.conf) nothing is refused, so an interrupted run is run again."""
        self.credentials.ensure()
        admin = self._become_admin()
        with psycopg.connect(self._trusted(admin, "postgres"), autocommit=True) as conn:
            set_password(conn, admin, self.credentials.password(admin))
            for role in (self.roles.app, self.roles.read):
                ensure_role(conn, role, self.credentials.password(role),
                            read_only=role == self.roles.read)
                set_password(conn, role, self.credentials.password(role))
            databases = _owned_databases(conn, admin)
        for database in databases:
            self._hand_over_database(database, self._trusted(admin, database), admin)
        self.socket_dir.chmod(0o700)
        self._write_hba()
        with psycopg.connect(self._trusted(admin, "postgres"), autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")

    def hand_over_leftovers(self) -> list[str]:
        """Give the app the databases that securing in place had to leave to the superuser
        (they were busy); return those still left."""
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            databases = _owned_databases(conn, self.roles.admin)
        self.left_alone = []
        for database in databases:
            self._hand_over_database(database, self.admin_url(database), self.roles.admin)
        return self.left_alone

    def _hand_over_database(self, database: str, url: str, admin: str) -> None:
        """Give the app ``database`` and what is in it (``url``: the superuser's). Another
        database that stays busy (a test run's, say, in the middle of a long load) or
        vanishes meanwhile is left as it is and named in ``self.left_alone``; the app's
        own database must be given."""
        ours = database == self.settings.pg_database
        try:
            with psycopg.connect(url) as conn:
                conn.execute("SELECT set_config('lock_timeout', %s, false)",
                             ("60s" if ours else "10s",))
                hand_over(conn, database, admin, self.roles.app)
                if ours:
                    grant_reads(conn, self.roles.app, self.roles.read)
        except psycopg.Error as exc:
            if ours:
                raise ClusterError(f"could not give the database {database} to the role "
                                   f"{self.roles.app}: {exc}; run `onemap db up` again") from exc
            self.left_alone.append(database)

    def _become_admin(self) -> str:
        """The superuser's name made the admin role's (it was the app's name): renamed by a
        temporary superuser, since no role may rename itself."""
        admin, app = self.roles.admin, self.roles.app
        with psycopg.connect(self._trusted(admin if self._role_exists(admin) else app,
                                           "postgres"), autocommit=True) as conn:
            boot = conn.execute("SELECT rolname FROM pg_roles WHERE oid = 10").fetchone()[0]
            if boot == admin:
                return admin
            helper = "onemap_setup"
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                (helper,)).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} SUPERUSER LOGIN").format(
                    sql.Identifier(helper)))
        with psycopg.connect(self._trusted(helper, "postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER ROLE {} RENAME TO {}").format(
                sql.Identifier(boot), sql.Identifier(admin)))
        with psycopg.connect(self._trusted(admin, "postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(helper)))
        return admin

    def _role_exists(self, role: str) -> bool:
        try:
            psycopg.connect(self._trusted(role, "postgres")).close()
        except psycopg.OperationalError:
            return False
        return True

    def _trusted(self, role: str, database: str) -> str:
        """A URL without password, for a cluster that still trusts local connections."""
        return f"postgresql://{role}@127.0.0.1:{self.port}/{database}"

    # -- process helpers -----------------------------------------------------------------
    def _pg_ctl(self, *args) -> None:
        self._run(self.bin_dir / "pg_ctl", "-D", self.data_dir, *args, what=f"pg_ctl {args[0]}")

    def _run(self, *cmd, what: str, env: dict | None = None) -> None:
        """Run ``cmd`` (as the server user when we are root) with ``env`` added."""
        options = _as_server_user()
        if env:
            options["env"] = {**options.get("env", os.environ), **env}
        result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                                **options)
        if result.returncode != 0:
            tail = self._log_tail()
            raise ClusterError(
                f"{what} failed (exit {result.returncode}): "
                f"{(result.stderr or result.stdout).strip()}{tail}"
            )

    def _log_tail(self) -> str:
        if not self.log_file.exists():
            return ""
        lines = self.log_file.read_text(errors="replace").splitlines()[-5:]
        return "\nlast lines of " + str(self.log_file) + ":\n" + "\n".join(lines)

    def _hand_over(self, path: Path) -> None:
        """As root, give the folder to the unprivileged server user."""
        user = _server_user()
        if user is None:
            return
        for base, dirs, files in os.walk(path):
            for name in [base, *(os.path.join(base, d) for d in dirs),
                         *(os.path.join(base, f) for f in files)]:
                os.chown(name, user.pw_uid, user.pw_gid)


def _owned_databases(conn: psycopg.Connection, owner: str) -> list[str]:
    """The databases ``owner`` owns, but the system's own."""
    return [r[0] for r in conn.execute(
        "SELECT datname FROM pg_database WHERE datdba = "
        "(SELECT oid FROM pg_roles WHERE rolname = %s) "
        "AND datname NOT IN ('postgres', 'template0', 'template1') "
        "AND datallowconn ORDER BY datname", (owner,))]


def _server_user() -> pwd.struct_passwd | None:
    """The account the server runs as when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("ONEMAP_PG_OS_USER", "postgres")
    try:
        return pwd.getpwnam(name)
    except KeyError as exc:
        raise ClusterError(
            f"running as root, but there is no '{name}' user to run PostgreSQL as: "
            f"create one with `useradd --system {name}` or set ONEMAP_PG_OS_USER"
        ) from exc


def _as_server_user() -> dict:
    user = _server_user()
    if user is None:
        return {}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": user.pw_dir,
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    return {"user": user.pw_uid, "group": user.pw_gid, "env": env, "cwd": "/"}


def _pid_in(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def _is_postgres_process(pid: int) -> bool:
    """True when ``pid`` is alive and is a postgres server (not a reused PID)."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, PermissionError):
        return _alive(pid)
    return comm.startswith("postgres")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

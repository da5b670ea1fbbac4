"""The embedded default database: a private PostGIS cluster in ``.onemap/pg/``.

``up`` creates the cluster the first time, recovers a stale ``postmaster.pid``, picks a free
port, starts the server (as an unprivileged user when we are root), and makes sure the
database and the PostGIS extension exist. Every step is safe to repeat.

A :class:`ReplicaCluster` is the same life cycle for a hot standby: created by a base backup
of a primary that :meth:`LocalCluster.allow_replication`, then following it by streaming.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from onemap.errors import ClusterError
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
# a streaming replica can follow this cluster (see ReplicaCluster)
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

    def url(self, database: str | None = None) -> str:
        """The URL psql understands, e.g. ``postgresql://onemap@127.0.0.1:54320/onemap``."""
        if self.port is None:
            raise ClusterError("the local cluster has never been started: run `onemap db up`")
        db = database or self.settings.pg_database
        return f"postgresql://{self.settings.pg_user}@127.0.0.1:{self.port}/{db}"

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
        """Create (first time) and start the cluster; make sure the database and PostGIS exist."""
        if not self.initialized:
            self._initdb()
        if self.running_pid() is None:
            self._remove_stale_pid()
            self._start(self._choose_port())
        self._ensure_database()
        return self.status()

    def down(self) -> None:
        """Stop the server (fast shutdown); a stopped cluster stays stopped."""
        if self.initialized and self.running_pid() is not None:
            self._pg_ctl("stop", "-m", "fast", "-w", "-t", "60")

    def allow_replication(self, role: str = "replicator") -> None:
        """Let ``role`` (created if missing) stream WAL from 127.0.0.1: a replica's login."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if not exists:
                conn.execute(f'CREATE ROLE "{role}" WITH REPLICATION LOGIN')
            hba = self.data_dir / "pg_hba.conf"
            line = f"host replication {role} 127.0.0.1/32 trust\n"
            rules = hba.read_text()
            if line not in rules:
                hba.write_text(line + rules)  # first match wins: ours goes on top
            conn.execute("SELECT pg_reload_conf()")

    # -- steps ---------------------------------------------------------------------------
    def _initdb(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self._hand_over(self.root)
        self._run(
            self.bin_dir / "initdb", "-D", self.data_dir, "-U", self.settings.pg_user,
            "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", what="initdb",
        )
        (self.data_dir / "onemap.conf").write_text(SERVER_CONF)
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'onemap.conf'\n")
        self._hand_over(self.root)

    def _choose_port(self) -> int:
        previous = self.port
        if previous and port_is_free(previous):
            return previous
        return free_port(self.settings.pg_port)

    def _start(self, port: int) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._hand_over(self.socket_dir)
        options = f"-p {port} -k {self.socket_dir}"
        self._pg_ctl("start", "-w", "-t", "120", "-l", self.log_file, "-o", options)
        self.port_file.write_text(f"{port}\n")

    def _remove_stale_pid(self) -> None:
        pid_file = self.data_dir / "postmaster.pid"
        if pid_file.exists():
            pid_file.unlink()

    def _ensure_database(self) -> None:
        admin_url = self.url("postgres")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.settings.pg_database,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.settings.pg_database}"')
            available = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'"
            ).fetchone()
        if not available:
            raise ClusterError(
                "PostGIS is not installed for PostgreSQL "
                f"{server_major(self.bin_dir)}: run `{postgis_install_hint(self.bin_dir)}`"
            )
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    # -- process helpers -----------------------------------------------------------------
    def _pg_ctl(self, *args) -> None:
        self._run(self.bin_dir / "pg_ctl", "-D", self.data_dir, *args, what=f"pg_ctl {args[0]}")

    def _run(self, *cmd, what: str) -> None:
        result = subprocess.run(
            [str(c) for c in cmd], capture_output=True, text=True, **_as_server_user()
        )
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


class ReplicaCluster(LocalCluster):
    """A hot standby of ``primary`` in ``settings.cluster_dir``: read-only, streaming its WAL.

    ``up`` takes a base backup the first time (``pg_basebackup -R`` writes the standby
    settings), then starts it like any local cluster, on its own free port.
    """

    def __init__(self, settings: Settings, primary: LocalCluster, role: str = "replicator"):
        super().__init__(settings)
        self.primary, self.role = primary, role

    def _initdb(self) -> None:
        # A replica is not initialised but copied: the primary's files up to now, plus
        # standby.signal and the primary_conninfo to follow it with.
        if self.primary.port is None or self.primary.running_pid() is None:
            raise ClusterError("the primary must be running before its replica is created")
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self._hand_over(self.root)
        self._run(
            self.bin_dir / "pg_basebackup", "-h", "127.0.0.1", "-p", self.primary.port,
            "-U", self.role, "-D", self.data_dir, "-R", "-X", "stream", "-c", "fast",
            what="pg_basebackup",
        )

    def _ensure_database(self) -> None:
        # Nothing can be created on a standby; check it is one.
        if not self.in_recovery():
            raise ClusterError(f"{self.data_dir} runs, but not as a standby of its primary")

    def in_recovery(self) -> bool:
        """True while the server replays its primary's WAL (``pg_is_in_recovery()``)."""
        with psycopg.connect(self.url("postgres")) as conn:
            return conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]

    def catch_up(self, timeout: float = 30) -> None:
        """Wait until everything the primary has written so far is replayed here."""
        with psycopg.connect(self.primary.url("postgres")) as conn:
            target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            while True:
                behind = conn.execute(
                    "SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())", (target,)
                ).fetchone()[0]
                if behind is not None and behind <= 0:
                    return
                if time.monotonic() > deadline:
                    raise ClusterError(f"the replica is {behind} bytes behind after {timeout}s")
                time.sleep(0.05)


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

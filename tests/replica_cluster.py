"""A hot standby of a :class:`~onemap.cluster.LocalCluster` for the replica tests: the same
life cycle, created by a base backup of a primary that
:meth:`~onemap.cluster.LocalCluster.allow_replication`, then following it by streaming.
Only the tests run a replica on this machine; a deployment names its own replica with
``DATABASE_READ_URL``.
"""

from __future__ import annotations

import time

import psycopg

from onemap.cluster import LocalCluster
from onemap.errors import ClusterError
from onemap.settings import Settings


class ReplicaCluster(LocalCluster):
    """A hot standby of ``primary`` in ``settings.cluster_dir``: read-only, streaming its WAL.

    ``up`` takes a base backup the first time (``pg_basebackup -R`` writes the standby
    settings), then starts it like any local cluster, on its own free port.
    """

    def __init__(self, settings: Settings, primary: LocalCluster):
        super().__init__(settings)
        self.primary = primary
        self.credentials = primary.credentials  # a copy has the primary's roles

    def _initdb(self) -> None:
        # A replica is not initialised but copied: the primary's files up to now, plus
        # standby.signal and the primary_conninfo to follow it with.
        if self.primary.port is None or self.primary.running_pid() is None:
            raise ClusterError("the primary must be running before its replica is created")
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self._hand_over(self.root)
        # The password goes by the environment (not the command line, which every user
        # sees); -R writes it into the standby's primary_conninfo, in its private folder.
        role = self.roles.replicator
        self._run(
            self.bin_dir / "pg_basebackup", "-h", "127.0.0.1", "-p", self.primary.port,
            "-U", role, "-D", self.data_dir, "-R", "-X", "stream", "-c", "fast",
            what="pg_basebackup", env={"PGPASSWORD": self.credentials.password(role)},
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

"""A load killed with SIGKILL in the middle leaves the database exactly as it was.

``onemap load cases`` runs in a subprocess on 300,000 generated cases (points inside the grids
of the synthetic 坪山区 hierarchy of ``test_etl_bad_files``) and is killed while its database
session is busy: once while staging (COPY), once while writing ``case_event`` (the upsert).
The killed client's server backend lingers until it notices the dead socket (the load runs
with ``client_connection_check_interval`` so that takes well under a second instead of the
rest of the statement); the tests wait for it to go, then check that nothing changed but
the batch's own row, which shows the load as interrupted (to ``onemap batches`` too), and
finally that the same file then loads normally and records the interrupted batch as such.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from test_etl_bad_files import CASES_MAPPING, build_hierarchy, points_inside, snapshot

from etl.load import load

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[1]
ROWS = 300_000
SEEDED = 1_000  # cases loaded beforehand that the killed load would have updated
BACKEND_GONE_S = 30

# When to pull the plug: a condition on the load's row in pg_stat_activity.
PHASES = {
    "staging": "query LIKE 'COPY %%'",
    "upsert": "state = 'active' AND query LIKE '%%INSERT INTO \"case_event\"%%'",
}


def query(url: str, sql: str, *params) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def cases_frame(area, n: int) -> pd.DataFrame:
    xs, ys = points_inside(area, n, seed=42)
    day = pd.Series(range(n)) % 28 + 1
    return pd.DataFrame({
        "编号": [f"K{i:06d}" for i in range(n)],
        "渠道": "12345热线",
        "类别": pd.Series(["城市管理", "环境保护", "交通运输", "市场监管"]).iloc[
            [i % 4 for i in range(n)]].to_numpy(),
        "上报时间": "2024-03-" + day.map("{:02d}".format) + " 09:30:00",
        "办结时间": "2024-04-" + day.map("{:02d}".format) + " 17:00:00",
        "状态": "已办结",
        "经度": [f"{x:.6f}" for x in xs],
        "纬度": [f"{y:.6f}" for y in ys],
    })


@pytest.fixture(scope="module")
def big(fresh_db, tmp_path_factory):
    """(url, csv, mapping): the hierarchy, 1,000 open cases, and a 300k-case CSV updating them."""
    url = fresh_db()
    folder = tmp_path_factory.mktemp("kill")
    area = build_hierarchy(url, folder / "hierarchy")
    frame = cases_frame(area, ROWS)
    path = folder / "cases_300k.csv"
    frame.to_csv(path, index=False)
    mapping = folder / "cases.yaml"
    mapping.write_text(CASES_MAPPING, encoding="utf-8")
    seeded = frame.head(SEEDED).assign(状态="办理中", 办结时间="")
    seed_path = folder / "cases_open.csv"
    seeded.to_csv(seed_path, index=False)
    report = load(url, "cases", [seed_path], mapping)
    assert (report.status, report.inserted, report.rejected) == ("committed", SEEDED, 0)
    return url, path, mapping


def backend(url: str, app: str) -> tuple | None:
    rows = query(url, "SELECT pid, state, query FROM pg_stat_activity "
                      "WHERE application_name = %s AND datname = current_database()", app)
    return rows[0] if rows else None


def start_load(url: str, path: Path, mapping: Path, log: Path, app: str) -> subprocess.Popen:
    # The server checks every 250 ms whether the client is still there, and so stops the
    # orphaned statement mid-way instead of running it to the end first (it is aborted either
    # way: the transaction never commits); this only keeps the test short.
    env = {**os.environ, "DATABASE_URL": url, "PGAPPNAME": app,
           "PGOPTIONS": "-c client_connection_check_interval=250"}
    env.pop("ONEMAP_DATABASE_URL", None)
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "onemap.cli", "load", "cases", str(path), "--mapping",
             str(mapping)], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def wait_for_phase(url: str, proc: subprocess.Popen, app: str, phase: str, log: Path) -> str:
    """Poll pg_stat_activity until the load's session is in ``phase``; return its query."""
    condition = PHASES[phase]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the load ended (exit {proc.returncode}) before the {phase} phase: "
                        f"{log.read_text()[-2000:]}")
        rows = query(url, f"SELECT query FROM pg_stat_activity WHERE application_name = %s "
                          f"AND datname = current_database() AND {condition}", app)
        if rows:
            return rows[0][0]
        time.sleep(0.02)
    pytest.fail(f"the load never reached the {phase} phase")


def wait_backend_gone(url: str, app: str) -> float:
    started = time.monotonic()
    while backend(url, app) is not None:
        assert time.monotonic() - started < BACKEND_GONE_S, (
            f"the killed load's backend is still there after {BACKEND_GONE_S} s: "
            f"{backend(url, app)}")
        time.sleep(0.1)
    return time.monotonic() - started


def running_batches(url: str) -> list[tuple]:
    return query(url, "SELECT id, source FROM load_batch_state WHERE state = 'running'")


def batch_states(url: str, after: int) -> list[tuple]:
    return query(url, "SELECT id, state FROM load_batch_state WHERE id > %s ORDER BY id", after)


def last_batch(url: str) -> int:
    return query(url, "SELECT coalesce(max(id), 0) FROM load_batch")[0][0]


@pytest.mark.parametrize("phase", list(PHASES))
def test_sigkill_mid_load_leaves_the_database_as_before(big, tmp_path, phase):
    url, path, mapping = big
    before = snapshot(url)  # all but batches that did not commit
    newest = last_batch(url)
    app = f"onemap-kill-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "load.log"
    proc = start_load(url, path, mapping, log, app)
    try:
        busy_with = wait_for_phase(url, proc, app, phase, log)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert busy_with  # the statement it was running when killed
    # While the orphaned backend still works, nothing of the batch's rows is visible.
    assert snapshot(url) == before
    wait_backend_gone(url, app)
    assert snapshot(url) == before
    assert query(url, "SELECT count(*) FROM case_event WHERE status = 'open'") == [(SEEDED,)]
    # The one trace it leaves: its batch, shown as interrupted.
    [(batch, state)] = batch_states(url, newest)
    assert state == "interrupted"
    env = {**os.environ, "DATABASE_URL": url, "COLUMNS": "200"}
    env.pop("ONEMAP_DATABASE_URL", None)
    listed = subprocess.run([sys.executable, "-m", "onemap.cli", "batches"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    line = next(ln for ln in listed.stdout.splitlines() if ln.strip("│ ").startswith(str(batch)))
    assert "interrupted" in line


def test_the_same_file_then_loads_normally(big):
    url, path, mapping = big
    assert running_batches(url) == []
    killed = query(url, "SELECT id FROM load_batch WHERE status = 'running'")
    report = load(url, "cases", [path], mapping)
    # The next load records the killed ones as interrupted, with a reason.
    assert killed and query(url, "SELECT DISTINCT status, message IS NOT NULL FROM load_batch "
                                 "WHERE id = ANY(%s)", [k for k, in killed]) == [
        ("interrupted", True)]
    assert report.status == "committed"
    assert report.read == ROWS == report.loaded + report.rejected
    assert report.rejected == 0, report.by_reason
    assert (report.inserted, report.updated) == (ROWS - SEEDED, SEEDED)
    assert query(url, "SELECT count(*), count(*) FILTER (WHERE status = 'closed'), "
                      "count(DISTINCT batch_id) FROM case_event") == [(ROWS, ROWS, 1)]
    assert query(url, "SELECT status, read_count, loaded_count, rejected_count FROM load_batch "
                      "WHERE id = %s", report.batch_id) == [("committed", ROWS, ROWS, 0)]
    assert running_batches(url) == []

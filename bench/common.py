"""Shared helpers for benchmarks: a scratch database, timed child processes, the result file.

Every benchmark writes ``bench/results/NAME.json``::

    {"name": ..., "commit": ..., "machine": {...}, "metrics": [
        {"metric", "value", "unit", "baseline", "baseline_value", "ratio", "target", "met"}]}
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
BIN = Path(sys.executable).parent


# -- where and on what -----------------------------------------------------------------------
def server_url() -> str:
    """The onemap database URL (DATABASE_URL, else the local cluster, started if needed)."""
    from onemap.database import database_url, libpq_url
    from onemap.settings import get_settings

    return libpq_url(database_url(get_settings(), start=True))


def server_admin_url() -> str:
    """A role of the onemap server that may create databases."""
    from onemap.database import admin_url
    from onemap.settings import get_settings

    return admin_url(get_settings(), start=True)


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` on the same server."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@contextmanager
def scratch_database(name: str, keep: bool = False):
    """A fresh database on the onemap server, migrated; dropped on exit unless ``keep``
    (so a later benchmark can read what this one loaded). Yields its URL."""
    from onemap.migrate import migrate

    admin_url = server_admin_url()
    _drop_create(admin_url, name, create=True)
    url = with_database(server_url(), name)
    try:
        migrate(url)
        yield url
    finally:
        if not keep:
            _drop_create(admin_url, name, create=False)


def _drop_create(admin_url: str, name: str, create: bool) -> None:
    from onemap.roles import create_database

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
    if create:
        create_database(admin_url, name, make_url(server_url()).username)


def git_commit() -> str | None:
    """HEAD's commit, read straight from .git (no git command needed)."""
    git = ROOT / ".git"
    try:
        if git.is_file():  # a worktree: "gitdir: …"
            git = Path(git.read_text().split(":", 1)[1].strip())
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head
        ref = head.split(":", 1)[1].strip()
        common = Path((git / "commondir").read_text().strip()) if (git / "commondir").exists() \
            else Path(".")
        for base in (git, (git / common).resolve()):
            if (base / ref).exists():
                return (base / ref).read_text().strip()
            packed = base / "packed-refs"
            if packed.exists():
                for line in packed.read_text().splitlines():
                    if line.endswith(" " + ref):
                        return line.split()[0]
    except OSError:
        return None
    return None


def machine(url: str | None = None) -> dict:
    """CPU count, memory, Python, PostgreSQL/PostGIS/GDAL versions and server settings."""
    info = {"cpus": os.cpu_count(), "memory_gb": _memory_gb(), "platform": platform.platform(),
            "python": platform.python_version()}
    if shutil.which("ogr2ogr"):
        out = subprocess.run(["ogr2ogr", "--version"], capture_output=True, text=True)
        info["gdal"] = out.stdout.strip()
    if url:
        with psycopg.connect(url) as conn:
            info["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
            info["postgis"] = conn.execute("SELECT postgis_lib_version()").fetchone()[0]
            info["server_settings"] = dict(conn.execute(
                "SELECT name, setting || COALESCE(unit, '') FROM pg_settings WHERE name IN "
                "('shared_buffers', 'work_mem', 'maintenance_work_mem', 'max_wal_size', "
                "'synchronous_commit', 'fsync', 'wal_level', 'max_parallel_workers_per_gather')"
            ).fetchall())
    return info


def _memory_gb() -> float | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        return None
    return None


# -- measuring -------------------------------------------------------------------------------
@dataclass
class Run:
    """One timed child process: wall seconds and its peak resident set (MB)."""

    name: str
    seconds: float
    peak_mb: float
    returncode: int
    stdout: str
    stderr: str


TIME_V = "/usr/bin/time"
_MAXRSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")


def run_measured(name: str, cmd: list[str], env: dict | None = None, cwd: Path = ROOT) -> Run:
    """Run ``cmd``; return its wall time and peak RSS. Raises on a non-zero exit.

    The peak comes from GNU time (``/usr/bin/time -v``), whose own tiny process is the parent:
    a child's rusage from our own wait4 would start at *our* RSS (Linux carries the parent's
    high-water mark over fork/vfork and exec), hiding small peaks behind the benchmark's size.
    """
    timed = Path(TIME_V).exists()
    out_path, err_path = RESULTS / f".{name}.out", RESULTS / f".{name}.err"
    RESULTS.mkdir(exist_ok=True)
    with out_path.open("w") as out, err_path.open("w") as err:
        started = time.perf_counter()
        proc = subprocess.Popen([TIME_V, "-v", *cmd] if timed else cmd, stdout=out,
                                stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = out_path.read_text(errors="replace"), err_path.read_text(errors="replace")
    out_path.unlink()
    err_path.unlink()
    found = _MAXRSS.findall(stderr) if timed else []
    peak_kb = int(found[-1]) if found else usage.ru_maxrss  # wait4: an upper bound only
    run = Run(name, seconds, peak_kb / 1024, proc.returncode, stdout, stderr)
    if run.returncode:
        raise RuntimeError(f"{name} failed (exit {run.returncode}):\n{stderr[-3000:]}")
    return run


def metric(name: str, value, unit: str, baseline: str | None = None,
           baseline_value=None, ratio=None, target=None, met=None) -> dict:
    def tidy(x):
        return round(x, 3) if isinstance(x, float) else x

    return {"metric": name, "value": tidy(value), "unit": unit, "baseline": baseline,
            "baseline_value": tidy(baseline_value), "ratio": tidy(ratio), "target": target,
            "met": met}


def write_results(name: str, metrics: list[dict], url: str | None = None,
                  extra: dict | None = None) -> Path:
    """Write bench/results/NAME.json and return its path."""
    RESULTS.mkdir(exist_ok=True)
    doc = {"name": name, "commit": git_commit(),
           "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "machine": machine(url), "metrics": metrics, **(extra or {})}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return path


def print_table(metrics: list[dict]) -> None:
    """A small fixed-width table of the metrics."""
    header = ("metric", "value", "unit", "baseline", "base", "ratio", "target", "met")
    rows = [header] + [tuple("" if m[k] is None else str(m[k]) for k in
                             ("metric", "value", "unit", "baseline", "baseline_value", "ratio",
                              "target", "met")) for m in metrics]
    widths = [min(max(len(r[i]) for r in rows), 44) for i in range(len(header))]
    for index, row in enumerate(rows):
        print("  ".join(cell[:44].ljust(w) for cell, w in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * w for w in widths))

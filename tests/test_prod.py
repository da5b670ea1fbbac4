"""``onemap serve --prod``: several worker processes of one gunicorn master answer, the
dashboard page is served, and a stop is graceful."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from onemap.cli import main

WORKERS = 2


def worker_pids(url: str, want: int, seconds: float = 20) -> set[int]:
    """The pids ``/healthz`` reports, asked until ``want`` distinct ones answered."""
    seen: set[int] = set()
    deadline = time.monotonic() + seconds
    while len(seen) < want and time.monotonic() < deadline:
        with urllib.request.urlopen(url + "/healthz", timeout=10) as answer:
            seen.add(json.load(answer)["pid"])
    return seen


def parent_of(pid: int) -> int:
    # /proc/PID/stat: "pid (comm) state ppid …"; comm may hold spaces, so split after ')'.
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.db
def test_prod_answers_from_several_workers_and_stops_gracefully(pg_url, serve):
    server = serve(pg_url, "--prod", "--workers", str(WORKERS))
    pids = worker_pids(server.url, WORKERS)
    assert len(pids) == WORKERS, f"only {pids} answered"
    assert server.proc.pid not in pids  # the master only supervises
    assert {parent_of(pid) for pid in pids} == {server.proc.pid}

    page = server.open("/").read().decode()
    assert "一张图" in page and "_dash-config" in page
    layout = json.load(server.open("/_dash-layout"))
    assert layout["props"]["className"] == "shell"
    assert f"Listening at: {server.url}" in server.log.read_text()

    server.stop()
    assert server.proc.returncode == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)


@pytest.mark.parametrize("args, complaint", [
    (["--workers", "2"], "--workers and --access-log go with --prod"),
    (["--prod", "--debug"], "--debug is for the development server"),
    (["--prod", "--workers", "0"], "0 is not in the range 1<=x<=64"),
])
def test_prod_options_are_checked_before_anything_starts(args, complaint):
    result = CliRunner().invoke(main, ["serve", *args], env={"DATABASE_URL": "postgresql://x/y"})
    assert result.exit_code == 2
    assert complaint in result.output
    assert "Traceback" not in result.output

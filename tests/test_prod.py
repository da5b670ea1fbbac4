"""``onemap serve --prod``: several worker processes of one gunicorn master answer, the
dashboard page is served, and a stop is graceful."""

from __future__ import annotations

import http.cookiejar
import json
import stat
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import PASSWORD

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


@pytest.mark.db
def test_workers_share_one_session_secret(pg_url, serve, tmp_path):
    """A fresh home: the key is made once at start; a cookie signed by the worker that took
    the sign-in opens every request, whichever worker answers it."""
    server = serve(pg_url, "--prod", "--workers", str(WORKERS), ONEMAP_HOME=str(tmp_path))
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600
    assert len(worker_pids(server.url, WORKERS)) == WORKERS
    browser = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    form = urllib.parse.urlencode({"name": "tester", "password": PASSWORD, "next": "/"})
    browser.open(server.url + "/login", data=form.encode(), timeout=30)
    # Each request is a new connection, which either worker may accept: twenty in a row on
    # one worker would be a 1 in 500,000 chance, and a worker with another key answers 401.
    statuses = [browser.open(server.url + "/api/kpi", timeout=30).status for _ in range(20)]
    assert statuses == [200] * 20


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

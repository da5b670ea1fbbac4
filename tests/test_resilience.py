"""Exports when the disk is full or the folder read-only: a clear message naming the path,
no traceback, no partial file, and the server keeps answering."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest
from conftest import DashServer, limit_files

FORMATS = ("csv", "geojson", "gpkg", "shp", "xlsx", "html")
FULL_AT = 64 * 1024  # bytes: every format of the demo city's cases is larger


def onemap_export(db_url: str, out: Path, fmt: str, file_limit: int | None = None):
    return subprocess.run(
        [sys.executable, "-m", "onemap.cli", "export", "cases", "--range", "90d",
         "--format", fmt, "--out", str(out)],
        env={**os.environ, "DATABASE_URL": db_url}, capture_output=True, text=True,
        timeout=300, preexec_fn=file_limit and (lambda: limit_files(file_limit)))


@pytest.mark.parametrize("fmt", FORMATS)
def test_full_disk_during_export(city_db, tmp_path, fmt):
    out = tmp_path / f"cases.{fmt}"
    done = onemap_export(city_db, out, fmt, FULL_AT)
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: cannot write {out}: ")
    assert "Traceback" not in done.stderr and "Exception" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # no partial file, no leftover draft


def test_read_only_folder(city_db, tmp_path):
    if os.geteuid() == 0:  # permissions do not stop root: sysfs is read-only for everyone
        folder = Path("/sys/onemap-export")
    else:
        folder = tmp_path / "locked"
        folder.mkdir(mode=0o555)
    out = folder / "cases.csv"
    done = onemap_export(city_db, out, "csv")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: cannot write {out}: ")
    assert not out.exists()


def test_http_export_on_a_full_disk(city_db, tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    server = DashServer(city_db, env={"TMPDIR": str(scratch)}, file_limit=FULL_AT)
    try:
        with pytest.raises(urllib.error.HTTPError) as info:
            server.open("/export/cases.gpkg?range=all")
        assert info.value.code == 507
        assert "cannot write" in json.load(info.value)["error"]
        assert list(scratch.iterdir()) == []  # the scratch folder was cleaned up
        small = server.open("/export/cases.csv?range=7d&status=overdue")
        assert small.status == 200
        assert small.read().decode("utf-8-sig").startswith("id,")  # small ones still work
        assert server.open("/api/kpi").status == 200
    finally:
        server.stop()

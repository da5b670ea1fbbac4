"""Grid workers (网格员): the roster loaded through the ETL with its mapping (every bad row
kept with its file, row, field and reason; a second load changes nothing), the demo city's
roster and the cases naming their handler, and the workers where people read them — the
grid view's panel and the case detail in Chromium, ``/api/workers`` — with their figures
recomputed in pandas from ``case_event``, phones masked for a masked role (the full number
never in the page or the answer) and an official's roster cut to her street."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import psycopg
import pytest
from conftest import DashServer, ensure_user, screenshot, sql_rows

from democity.city import ADMIN_LAYERS
from democity.roster import COLUMNS, PRESET
from etl.load import load

pytestmark = [pytest.mark.db]

ROOT = Path(__file__).resolve().parents[1]
ZONE = ZoneInfo("Asia/Shanghai")
PERIOD = ("2026-08-01", "2026-10-31")  # local days, the end day included


@pytest.fixture(scope="module")
def admin_db(fresh_db, city) -> str:
    """A database of its own holding the demo city's admin units only: the loads below
    write to it."""
    url = fresh_db()
    for level in ADMIN_LAYERS:
        load(url, "admin", [city.admin], city.mapping(f"admin-{level}"), level=level)
    return url


@pytest.fixture(scope="module")
def units(admin_db) -> dict:
    """Two grids of one community, a grid of another street, a community's code."""
    grids = sql_rows(admin_db, "SELECT code, community_code, street_code FROM admin_unit "
                               "WHERE level = 4 ORDER BY code")
    first = grids[0]
    sibling = next(g for g in grids if g[1] == first[1] and g[0] != first[0])
    other = next(g for g in grids if g[2] != first[2])
    return {"grid": first[0], "sibling": sibling[0], "other": other[0],
            "community": first[1], "street": first[2]}


def write_roster(path: Path, rows: list[tuple]) -> Path:
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame.to_csv(path, index=False, encoding="utf-8")
    return path


def test_the_load_keeps_good_rows_and_every_bad_one_with_its_reason(admin_db, units,
                                                                     tmp_path):
    g, s, o = units["grid"], units["sibling"], units["other"]
    rows = [  # the loader numbers data rows from 1
        ("W1", "王建华", "专职网格员", "13812345678", g),          # 1: good
        ("W2", "李敏", "兼职网格员", "0755-2833 1234", g),         # 2: good (a landline)
        ("Z1", "陈志国", "站长", "+86 139 0000 1111", g),          # 3: good, covers g …
        ("Z1", "陈志国", "站长", "+86 139 0000 1111", s),          # 4: … and s
        ("W3", "赵芳", "专职网格员", "13900002222", o),            # 5: good, another street
        ("W4", "孙强", "专职网格员", "13900003333", "440310999999999"),  # 6: unknown grid
        ("W5", "", "专职网格员", "13900004444", g),                # 7: no name
        ("W6", "周杰", "专职网格员", "1381234", g),                # 8: a phone too short
        ("W7", "吴娟", "专职网格员", "电话待补", g),                # 9: not a phone
        ("W8", "郑涛", "协管员", "13900005555", g),                # 10: a role not in the map
        ("W1", "王建华", "专职网格员", "13812345678", g),          # 11: the same worker twice
        ("W9", "冯刚", "专职网格员", "13900006666", units["community"]),  # 12: not a grid
        ("W10", "韩梅", "专职网格员", "", s),                       # 13: good, no phone
    ]
    path = write_roster(tmp_path / "roster.csv", rows)
    report = load(admin_db, "roster", [path], PRESET)
    assert report.status == "committed"
    assert (report.read, report.loaded, report.rejected) == (13, 6, 7)
    assert report.read == report.loaded + report.rejected
    rejects = sql_rows(admin_db, "SELECT source_file, row_number, field, reason, raw "
                                 "FROM rejected_row WHERE batch_id = %s ORDER BY row_number",
                       report.batch_id)
    found = {r[1]: (r[2], r[3]) for r in rejects}
    assert {r[0] for r in rejects} == {str(path)}
    assert found == {
        6: ("grid_code", "'440310999999999' is not the code of a loaded grid"),
        7: ("name", "name is missing"),
        8: ("phone", "'1381234' is not a phone number (an 11-digit mobile number, or a "
                     "landline with its area code: 0755-12345678)"),
        9: ("phone", "'电话待补' is not a phone number (an 11-digit mobile number, or a "
                      "landline with its area code: 0755-12345678)"),
        10: ("role", "'协管员' is not in the mapping's value map"),
        11: ("id", "duplicate key, first seen at row 1"),
        12: ("grid_code", f"'{units['community']}' is not the code of a loaded grid"),
    }
    raw = {r[1]: r[4] for r in rejects}
    assert raw[9]["姓名"] == "吴娟" and raw[6]["网格编码"] == "440310999999999"
    stored = sql_rows(admin_db, "SELECT w.id, w.grid_code, w.name, w.role, w.phone, "
                                "w.community_code = a.community_code AND w.street_code = "
                                "a.street_code AND w.district_code = a.district_code "
                                "FROM grid_worker w JOIN admin_unit a ON a.code = w.grid_code "
                                "ORDER BY 1, 2")
    assert stored == sorted([
        ("W1", g, "王建华", "full_time", "13812345678", True),
        ("W2", g, "李敏", "part_time", "0755-2833 1234", True),
        ("Z1", g, "陈志国", "station_head", "+86 139 0000 1111", True),
        ("Z1", s, "陈志国", "station_head", "+86 139 0000 1111", True),
        ("W3", o, "赵芳", "full_time", "13900002222", True),
        ("W10", s, "韩梅", "full_time", None, True)])

    again = load(admin_db, "roster", [path], PRESET)
    assert (again.inserted, again.updated, again.unchanged, again.rejected) == (0, 0, 6, 7)
    assert sql_rows(admin_db, "SELECT count(*) FROM grid_worker") == [(6,)]

    # A new export of the same file: a phone changed, a worker gone (replace: as the demo
    # city loads it).
    changed = [r for r in rows if r[0] != "W3"]
    changed[0] = ("W1", "王建华", "专职网格员", "13812349999", g)
    write_roster(path, changed)
    third = load(admin_db, "roster", [path], PRESET, replace=True)
    assert (third.inserted, third.updated, third.removed) == (0, 1, 1)
    assert sql_rows(admin_db, "SELECT phone FROM grid_worker WHERE id = 'W1'") == \
        [("13812349999",)]
    assert sql_rows(admin_db, "SELECT count(*) FROM grid_worker WHERE id = 'W3'") == [(0,)]


def test_the_command_line_loads_a_roster(admin_db, units, tmp_path):
    """``onemap load roster PATH --mapping FILE``, tried first as a dry run."""
    path = write_roster(tmp_path / "名册.csv", [
        ("C1", "蔡明", "专职网格员", "13700001111", units["grid"]),
        ("C2", "", "专职网格员", "13700002222", units["grid"])])
    env = {"DATABASE_URL": admin_db, "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "onemap.cli", "load", "roster", str(path),
                          "--mapping", str(PRESET), "--dry-run"], capture_output=True,
                         text=True, cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    assert "name is missing" in run.stdout
    assert sql_rows(admin_db, "SELECT count(*) FROM grid_worker WHERE id LIKE 'C%%'") == [(0,)]
    run = subprocess.run([sys.executable, "-m", "onemap.cli", "load", "roster", str(path),
                          "--mapping", str(PRESET)], capture_output=True, text=True,
                         cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    assert sql_rows(admin_db, "SELECT name FROM grid_worker WHERE id LIKE 'C%%'") == \
        [("蔡明",)]

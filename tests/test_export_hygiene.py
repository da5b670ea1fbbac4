"""Exports leave nothing behind and are always audited: a bad parameter is refused before
anything is written, every failure (before, during and after writing, or a download that is
never read) removes its temporary files, and no file is served without its audit row. The
server runs with its own TMPDIR, so every file it leaves is counted."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from urllib.parse import quote

import psycopg
import pytest
from conftest import PASSWORD, DashServer

pytestmark = [pytest.mark.db]

FORMATS = ("csv", "geojson", "gpkg", "shp", "xlsx", "html")
FULL_AT = 256 * 1024  # bytes: the demo city's cases in every format are larger


def sql(url: str, query: str, *args):
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query, args)
        return cursor.fetchall() if cursor.description else []


def exports_audited(url: str) -> int:
    return sql(url, "SELECT count(*) FROM audit_log WHERE action = 'export'")[0][0]


def leftovers(folder, expected: list[str] | None = None) -> list[str]:
    """The files and folders under ``folder``; with ``expected``, once they are that or
    after 5 s (the server closes an answer just after its last byte is sent)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            found = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
        except FileNotFoundError:  # the server removed a folder while it was being listed
            continue
        if expected is None or found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def get(site, path: str, method: str = "GET"):
    """(status, body) of a request as the admin ``tester`` over HTTP Basic."""
    try:
        answer = site.open(path, "tester", PASSWORD) if method == "GET" else _head(site, path)
        return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _head(site, path: str):
    import base64

    token = base64.b64encode(f"tester:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(site.url + path, method="HEAD",
                                     headers={"Authorization": f"Basic {token}"})
    return urllib.request.urlopen(request, timeout=60)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("scratch")


@pytest.fixture(scope="module")
def site(city_db, scratch):
    server = DashServer(city_db, env={"TMPDIR": str(scratch)})
    yield server
    server.stop()


@pytest.mark.parametrize("query, name", [
    ("foo=%00", "foo"),                 # a parameter the export ignores
    ("category=a%00b", "category"),
    ("crs=wgs84%00", "crs"),
])
def test_a_nul_anywhere_is_a_400_naming_the_parameter(site, city_db, scratch, query, name):
    before, files = exports_audited(city_db), leftovers(scratch)
    status, body = get(site, f"/export/cases.csv?range=7d&{query}")
    assert status == 400, body[:300]
    assert f"'{name}'" in json.loads(body)["error"]
    assert leftovers(scratch, files) == files
    assert exports_audited(city_db) == before  # nothing was exported


def test_the_audit_row_is_written_before_the_file_is_served(site, city_db, scratch):
    before, files = exports_audited(city_db), leftovers(scratch)
    answer = site.open("/export/cases.csv?range=7d&foo=bar", "tester", PASSWORD)
    assert answer.status == 200
    assert exports_audited(city_db) == before + 1  # headers only so far: already recorded
    detail = sql(city_db, "SELECT detail FROM audit_log WHERE action = 'export' "
                          "ORDER BY id DESC LIMIT 1")[0][0]
    rows = answer.read().decode("utf-8-sig").strip().splitlines()
    assert detail["rows"] == len(rows) - 1 and detail["filters"]["foo"] == "bar"
    assert leftovers(scratch, files) == files


def test_a_download_never_read_leaves_nothing(site, scratch):
    files = leftovers(scratch)
    status, body = get(site, "/export/cases.gpkg?range=30d", method="HEAD")
    assert status == 200 and body == b""
    assert leftovers(scratch, files) == files


def test_no_file_without_its_audit_row(site, city_db, scratch):
    """When the audit log refuses the row, the export is not served, and not left."""
    files = leftovers(scratch)
    sql(city_db, "ALTER TABLE audit_log ADD CONSTRAINT test_no_exports "
                 "CHECK (action <> 'export') NOT VALID")
    try:
        before = exports_audited(city_db)
        for fmt in ("csv", "xlsx"):
            status, _ = get(site, f"/export/cases.{fmt}?range=30d")
            assert status == 503
        assert exports_audited(city_db) == before
    finally:
        sql(city_db, "ALTER TABLE audit_log DROP CONSTRAINT test_no_exports")
    assert leftovers(scratch, files) == files


def test_failures_while_writing_leave_nothing(city_db, tmp_path):
    """A full disk in the middle of every format: 507, and the temporary folder as empty as
    before (openpyxl's and GDAL's own scratch files included)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    server = DashServer(city_db, env={"TMPDIR": str(scratch)}, file_limit=FULL_AT)
    try:
        for fmt in FORMATS:
            status, body = get(server, f"/export/cases.{fmt}?range=all")
            # HTML stops at its row cap before writing; the others fail mid-write.
            assert status == (400 if fmt == "html" else 507), (fmt, body[:300])
            assert leftovers(scratch, []) == [], fmt
        status, _ = get(server, "/export/cases.csv?range=7d&status=overdue")
        assert status == 200  # small ones still work
        assert leftovers(scratch, []) == []
    finally:
        server.stop()


# -- list filters are capped ----------------------------------------------------------------
def _items(site, path: str) -> int:
    return json.load(site.open(path, "tester", PASSWORD))["numberMatched"]


CAP = 200  # the documented cap


def test_list_filters_hold_at_most_the_documented_number_of_items(site, city_db, scratch):
    real = [r[0] for r in sql(city_db, "SELECT DISTINCT category_2 FROM case_event "
                                       "ORDER BY 1 LIMIT 5")]
    full = real + [f"无此分类{i}" for i in range(CAP - len(real))]
    want = sql(city_db, "SELECT count(*) FROM case_event WHERE category_1 = ANY(%s) OR "
                        "category_2 = ANY(%s) OR category_3 = ANY(%s) OR category_4 = ANY(%s)",
               full, full, full, full)[0][0]
    assert want > 0
    assert _items(site, f"/collections/cases/items?limit=1&category={quote(','.join(full))}") \
        == want
    files = leftovers(scratch)
    over = quote(",".join([*full, "多一个"]))
    for path, name in ((f"/collections/cases/items?category={over}", "category"),
                       (f"/api/kpi?channel={over}", "channel"),
                       (f"/export/cases.csv?range=all&category={over}", "category"),
                       ("/collections/facilities/items?" + "&".join(
                           f"kind=k{i}" for i in range(CAP + 1)), "kind")):
        status, body = get(site, path)
        assert status == 400, (path[:60], body[:200])
        error = json.loads(body)["error"]
        assert f"'{name}'" in error and "at most 200 items" in error
    assert leftovers(scratch, files) == files
    spec = json.load(site.open("/openapi.json", "tester", PASSWORD))
    assert "at most 200" in json.dumps(spec)  # the cap is documented where clients look
    # The attack's size is refused before any query: no connection is even needed.
    from layers.errors import BadParameter
    from layers.filters import MAX_LIST_ITEMS, parse_filters

    assert MAX_LIST_ITEMS == CAP
    with pytest.raises(BadParameter, match="'category' = '600,000 items'"):
        parse_filters({"category": ",".join(f"c{i}" for i in range(600_000))})


# -- memory stays flat with export size -----------------------------------------------------
MEASURE = """
import json, sys
from pathlib import Path

from layers.catalog import default_catalog
from layers.exports import export
from layers.filters import parse_filters
from layers.scope import resolve_scope
from onemap.database import make_engine


def mb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024


url, fmt, out, sizes = sys.argv[1], sys.argv[2], Path(sys.argv[3]), json.loads(sys.argv[4])
engine = make_engine(url)
layer = default_catalog().get("cases")


def run(params, name):
    with engine.connect() as conn:
        return export(conn, layer, resolve_scope(conn, None), parse_filters(params), fmt,
                      out / f"{name}.{fmt}", zone="Asia/Shanghai").rows


run({"range": "7d"}, "warm-up")  # libraries loaded, pool and drivers ready
found = {}
for label, params in sizes.items():
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again here
    base = mb("VmRSS:")
    rows = run(params, label)
    found[label] = {"rows": rows, "growth_mb": mb("VmHWM:") - base}
print(json.dumps(found))
"""


@pytest.mark.parametrize("fmt", ("csv", "geojson", "gpkg", "shp", "xlsx"))
def test_export_memory_does_not_grow_with_its_size(city_db, tmp_path, fmt):
    """The peak memory an export adds, in a child process, for a tenth of the city's cases
    and for all of them: rows stream in bounded batches, so ten times the rows must not
    take much more memory."""
    import os
    import subprocess
    import sys

    sizes = {"tenth": {"range": "all", "bbox": "114,22,114.2965,23"}, "all": {"range": "all"}}
    done = subprocess.run([sys.executable, "-c", MEASURE, city_db, fmt, str(tmp_path),
                           json.dumps(sizes)], capture_output=True, text=True, timeout=600,
                          env=os.environ)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    small, large = found["tenth"], found["all"]
    assert large["rows"] >= 8 * small["rows"] > 0, found
    assert large["growth_mb"] < 1.5 * small["growth_mb"] + 20, found

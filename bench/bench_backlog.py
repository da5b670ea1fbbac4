"""The backlog now (在办, 超期未办结, 即将超期, per stage; ``layers.backlog``) at a loaded city:
p50/p95 of one scope's backlog by child at each level, as a view reads it, from the open
cases through their partial index; and how many open cases there are. What a live backlog
table kept by delta could save is at most this.

Run: ``BENCH_BACKLOG_DB=NAME python -m bench.bench_backlog`` (a database holding a loaded
city, e.g. one ``bench/tree_city.py`` made); writes ``bench/results/backlog.json``.
"""

from __future__ import annotations

import os
import statistics
import time

from sqlalchemy import text

from bench.common import metric, print_table, server_url, with_database, write_results
from layers import backlog as stock
from layers.filters import parse_filters
from layers.scope import resolve_scope
from onemap.database import make_engine

REPEAT = 30


def main() -> None:
    url = with_database(server_url(), os.environ.get("BENCH_BACKLOG_DB", "onemap_bench_city_l"))
    engine = make_engine(url)
    metrics = []
    with engine.connect() as conn:
        open_cases, cases = conn.execute(text(
            "SELECT count(*) FILTER (WHERE status = 'open'), count(*) FROM case_event")).one()
        for level in (1, 2, 3, 4):
            code = conn.execute(text("SELECT code FROM admin_unit WHERE level = :l "
                                     "ORDER BY area_km2 DESC LIMIT 1"), {"l": level}).scalar_one()
            scope = resolve_scope(conn, code)
            filters = parse_filters({"range": "90d", "scope": code}, "Asia/Shanghai")
            times = []
            for _ in range(REPEAT):
                started = time.perf_counter()
                stock.backlog(conn, scope, filters, by_child=scope.child_level is not None)
                times.append((time.perf_counter() - started) * 1000)
            times.sort()
            p95 = times[max(0, round(0.95 * len(times)) - 1)]
            metrics += [metric(f"level {level} ({code}): backlog by child p50",
                               statistics.median(times), "ms"),
                        metric(f"level {level} ({code}): backlog by child p95", p95, "ms")]
    engine.dispose()
    print_table(metrics)
    print(write_results("backlog", metrics, url, {
        "cases": cases, "open_cases": open_cases,
        "note": "the machine (2 cores) was shared with other workers' tests and benchmarks "
                "during the run; see machine and the load average in the report"}))


if __name__ == "__main__":
    main()

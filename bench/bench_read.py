"""Read side at a loaded city (default: the L city kept by ``BENCH_KEEP=1 bench_city``):
p50/p95 of one view's KPIs + children + hotspots at each level, against a plain GROUP BY
over the raw case table with the same filters, in the same run. The hotspots are judged
anew each time (a street's need the whole district's grids counted), not read again from
the verdicts a process keeps.

Each level also reports the server's own time for the view's statements (planning and
execution by ``EXPLAIN ANALYZE``, medians): no client can answer faster than that, however
few its round trips.

Run: ``python -m bench.bench_read`` (``BENCH_READ_DB`` names another database).
"""

from __future__ import annotations

import os
import statistics
import time

from sqlalchemy import event, text

from bench.common import metric, print_table, server_url, with_database, write_results
from layers.cases import local_zone
from layers.filters import parse_filters
from layers.hotspots import VERDICTS, hotspots
from layers.kpi import with_children
from layers.scope import resolve_scope
from onemap.database import make_engine

REPEAT = 15       # the plain GROUP BY: seconds a run
VIEW_REPEAT = 40  # the view: tens of milliseconds, so enough runs for a steady p95
RANGE = "90d"
RAW = """
SELECT {child} AS unit, count(*) AS total, count(*) FILTER (WHERE status = 'closed') AS closed,
       count(*) FILTER (WHERE on_time) AS on_time,
       count(*) FILTER (WHERE status = 'open') AS open,
       count(*) FILTER (WHERE status = 'open' AND deadline < now()) AS overdue,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY handling_hours) AS median,
       avg(satisfaction) AS satisfaction
FROM case_event WHERE {scope} AND reported_at >= :start AND reported_at < :end
GROUP BY ROLLUP ({child})
"""
RAW_GRID_COUNTS = """
SELECT grid_code, count(*) FROM case_event WHERE {scope} AND reported_at >= :start
  AND reported_at < :end AND grid_code IS NOT NULL GROUP BY 1
"""
# The plain GROUP BY runs with the server's own settings, not the read side's session ones
# (onemap.database.make_engine): parallel workers included.
DEFAULTS = "RESET plan_cache_mode; RESET max_parallel_workers_per_gather"
CHILD = {1: "street_code", 2: "community_code", 3: "grid_code", 4: "grid_code"}
COLUMN = {1: "district_code", 2: "street_code", 3: "community_code", 4: "grid_code"}


def timed(func, repeat: int = REPEAT) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        times.append((time.perf_counter() - started) * 1000)
    return times


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(round(0.95 * len(values))) - 1)]


def server_ms(conn, view) -> float:
    """The server's planning + execution time of the statements ``view()`` runs (medians
    over a few runs each, read from EXPLAIN ANALYZE), in ms."""
    statements = []

    def note(_conn, _cursor, statement, parameters, _context, _many):
        statements.append((statement, parameters))

    event.listen(conn, "before_cursor_execute", note)
    try:
        view()
    finally:
        event.remove(conn, "before_cursor_execute", note)
    driver = conn.connection.driver_connection
    total = 0.0
    for statement, parameters in statements:
        runs = [driver.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement,
                               parameters).fetchone()[0][0] for _ in range(9)]
        total += statistics.median(r["Planning Time"] + r["Execution Time"] for r in runs)
    driver.rollback()
    return total


def scopes(conn) -> dict[int, str]:
    """The largest unit at each level (the most cases to aggregate)."""
    found = {}
    for level in (1, 2, 3, 4):
        found[level] = conn.execute(text(
            "SELECT code FROM admin_unit WHERE level = :l ORDER BY area_km2 DESC LIMIT 1"),
            {"l": level}).scalar_one()
    return found


def main() -> None:
    url = with_database(server_url(), os.environ.get("BENCH_READ_DB", "onemap_bench_city_l"))
    engine = make_engine(url)
    metrics = []
    with engine.connect() as conn, engine.connect() as server_default:
        server_default.execute(text(DEFAULTS))
        server_default.commit()
        zone = local_zone(conn, "Asia/Shanghai")
        cases = conn.execute(text("SELECT count(*) FROM case_event")).scalar_one()
        for level, code in scopes(conn).items():
            filters = parse_filters({"range": RANGE, "scope": code}, zone)
            scope = resolve_scope(conn, code)

            def view(scope=scope, filters=filters):
                with_children(conn, scope, filters, zone)  # what /api/kpi and the views call
                VERDICTS.clear()  # the district's grids judged anew, not read again
                hotspots(conn, scope, filters, "grid", 12, zone)

            def raw(level=level, code=code, filters=filters):
                params = {"code": code, "start": filters.start, "end": filters.end}
                where = f"{COLUMN[level]} = :code"
                for query in (RAW.format(child=CHILD[level], scope=where),
                              RAW_GRID_COUNTS.format(scope=where)):
                    server_default.execute(text(query), params).all()

            view()
            raw()  # warm both once
            ours, plain = timed(view, VIEW_REPEAT), timed(raw)
            p50, base = statistics.median(ours), statistics.median(plain)
            floor = server_ms(conn, view)
            name = f"level {level} ({code}): KPIs + children + hotspots"
            metrics += [
                metric(f"{name} p50", p50, "ms", "plain GROUP BY on case_event (p50)", base,
                       base / p50, ">= 20x faster", base / p50 >= 20),
                metric(f"{name} p95", p95(ours), "ms", "plain GROUP BY on case_event (p95)",
                       p95(plain), p95(plain) / p95(ours), "< 100 ms", p95(ours) < 100),
                metric(f"{name}: its statements' time in the server", floor, "ms",
                       "plain GROUP BY on case_event (p50)", base, base / floor),
            ]
    engine.dispose()
    print_table(metrics)
    print(write_results("read", metrics, url, {"cases": cases, "range": RANGE}))


if __name__ == "__main__":
    main()

"""p95 of the workbench's panels (``layers.workbench``): the lifecycle funnel, the
indicators with the not-satisfied list, and the handling units' ranking, each read as
``/api/workbench`` reads it, for the district and for its largest street, over the last
90 days and over everything.

Run: ``BENCH_WORKBENCH_DB=postgresql://… python -m bench.bench_workbench`` on a database
holding a loaded demo city (its size is read from the case count and written with the
results). The target, 300 ms per panel, is the issue's at L (10M cases); smaller cities
are measured against it too, and the results say which size was measured.
"""

from __future__ import annotations

import os
import statistics
import time

from bench.common import metric, print_table, write_results
from layers import workbench as wb
from layers.cases import local_zone
from layers.filters import parse_filters
from layers.scope import resolve_scope
from onemap.database import make_engine

REPEATS = int(os.environ.get("BENCH_WORKBENCH_REPEATS", "10"))
TARGET_MS = 300
ZONE = "Asia/Shanghai"


def _panels(conn, scope, filters, zone):
    now = wb.stock.database_now(conn)
    return {
        "funnel": lambda: wb.funnel(conn, scope, filters, zone, now),
        "indicators": lambda: (wb.indicators(wb._sums(conn, scope, filters, zone),
                                             wb.filled(conn, {n for i in wb.INDICATORS
                                                              for n in i.needs})),
                               wb._listed(conn, wb.raw_where(filters, scope).add(
                                   f"c.satisfaction <= {wb.UNSATISFIED_AT_MOST}"), zone)),
        "ranking": lambda: wb.ranking(conn, scope, filters, zone),
    }


def main() -> None:
    url = os.environ["BENCH_WORKBENCH_DB"]
    engine = make_engine(url)
    metrics, sizes = [], {}
    with engine.connect() as conn:
        zone = local_zone(conn, ZONE)
        cases = conn.exec_driver_sql("SELECT count(*) FROM case_event").scalar()
        street = conn.exec_driver_sql(
            "SELECT street_code FROM case_event WHERE street_code IS NOT NULL "
            "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").scalar()
        for where, code in (("district", None), ("street", street)):
            for range_ in ("90d", "all"):
                filters = parse_filters({"range": range_, "scope": code}, zone)
                scope = resolve_scope(conn, code)
                for name, read in _panels(conn, scope, filters, zone).items():
                    read()  # warm
                    times = []
                    for _ in range(REPEATS):
                        start = time.perf_counter()
                        read()
                        times.append((time.perf_counter() - start) * 1000)
                    p95 = statistics.quantiles(times, n=20)[-1] if len(times) > 1 else times[0]
                    metrics.append(metric(f"{name} p95 ({where}, {range_})", p95, "ms",
                                          target=f"< {TARGET_MS} ms at L",
                                          met=p95 < TARGET_MS))
        sizes = {"cases": cases, "street": street, "repeats": REPEATS}
    engine.dispose()
    print_table(metrics)
    write_results("workbench", metrics, url, extra={
        "city": sizes, "note": "the machine (2 cores) was shared with other workers' tests "
                               "and benches while this ran"})


if __name__ == "__main__":
    main()

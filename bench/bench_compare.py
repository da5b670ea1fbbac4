"""What 环比, 同比 and the weekday × hour grid add to a view (default: the demo city S kept
in ``onemap_bench_city_s``; ``BENCH_COMPARE_DB`` names another): at the largest unit of
each level and a 90-day range, the p50/p95 time and the statements of the two compared
periods (``layers.comparison.comparisons``: the view's own CaseQuery over each; and for the district
over the fortnight after the data, whose 环比 and 同比 the data both holds) and of the
grid (``CaseQuery.weekday_hours``, from the cases), beside the view's KPIs without them
(``CaseQuery.closed`` + ``by_child`` + ``mixes`` + ``trend``), in the same run.

The compared periods are read from the aggregates as the view's flows are, so their cost
follows the units and days read, not the cases; the grid reads the period's cases, so its
cost grows with them.

Run: ``python -m bench.bench_compare``.
"""

from __future__ import annotations

import os
import statistics
from datetime import timedelta

from sqlalchemy import event, text

from bench.bench_read import p95, scopes, timed
from bench.common import metric, print_table, server_url, with_database, write_results
from layers.case_query import CaseQuery
from layers.cases import local_zone
from layers.comparison import comparisons
from layers.filters import parse_filters
from layers.scope import resolve_scope
from onemap.database import make_engine

RANGE = "90d"
REPEAT = 40
EXTRA_TARGET_MS = 100  # the district's comparisons must add well under this


def statements(conn, work) -> int:
    """How many statements ``work()`` sends."""
    sent = []

    def note(*_args):
        sent.append(1)

    event.listen(conn, "before_cursor_execute", note)
    try:
        work()
    finally:
        event.remove(conn, "before_cursor_execute", note)
    return len(sent)


def main() -> None:
    url = with_database(server_url(), os.environ.get("BENCH_COMPARE_DB",
                                                     "onemap_bench_city_s"))
    engine = make_engine(url)
    metrics = []
    with engine.connect() as conn:
        zone = local_zone(conn, "Asia/Shanghai")
        cases = conn.execute(text("SELECT count(*) FROM case_event")).scalar_one()
        # Also the fortnight after the data's last day: its 环比 and its 同比 are both read
        # where the data spans a year (the S city's 12 months reach the 同比 of no 90 days).
        last = conn.execute(text("SELECT (max(reported_at) AT TIME ZONE :z)::date "
                                 "FROM case_event"), {"z": zone}).scalar_one()
        after = {"start": (last + timedelta(days=1)).isoformat(),
                 "end": (last + timedelta(days=14)).isoformat()}
        for (level, code), period in [(unit, {"range": RANGE}) for unit in scopes(conn).items()] \
                + [((1, None), after)]:
            filters = parse_filters({**period, "scope": code}, zone)
            query = CaseQuery(conn, resolve_scope(conn, code), filters, zone)
            flows = query.closed()

            def kpis(query=query):
                query.closed(), query.by_child(), query.mixes(), query.trend()

            def compared(query=query, flows=flows):
                comparisons(query, flows)

            def grid(query=query):
                query.weekday_hours(zone)

            for work in (kpis, compared, grid):
                work()  # warm
            base, extra, heat = timed(kpis, REPEAT), timed(compared, REPEAT), timed(grid, REPEAT)
            name = f"level {level} ({code or 'all'}), {'/'.join(period.values())}"
            metrics += [
                metric(f"{name}: 环比 + 同比 p50", statistics.median(extra), "ms",
                       "the view's KPIs without them (p50)", statistics.median(base),
                       statistics.median(extra) / statistics.median(base)),
                metric(f"{name}: 环比 + 同比 p95", p95(extra), "ms",
                       "the view's KPIs without them (p95)", p95(base),
                       p95(extra) / p95(base), f"< {EXTRA_TARGET_MS} ms",
                       p95(extra) < EXTRA_TARGET_MS),
                metric(f"{name}: 环比 + 同比 statements", statements(conn, compared), "",
                       "the view's KPIs' statements", statements(conn, kpis)),
                metric(f"{name}: weekday × hour grid p50", statistics.median(heat), "ms",
                       "the view's KPIs without it (p50)", statistics.median(base),
                       statistics.median(heat) / statistics.median(base)),
                metric(f"{name}: weekday × hour grid p95", p95(heat), "ms",
                       "the view's KPIs without it (p95)", p95(base), p95(heat) / p95(base)),
            ]
    engine.dispose()
    print_table(metrics)
    print(write_results("compare", metrics, url, {
        "cases": cases, "range": RANGE,
        "note": "2-core machine shared with other workers' tests and benches during the run"}))


if __name__ == "__main__":
    main()

"""The aggregates' size next to the cases: rows per case of each aggregate table, and in all,
at a loaded city, against the same city in a database made by another tree (the baseline).

Each database is named on the command line; it holds the demo city loaded by its own tree
(``bench/tree_city.py``, as ``bench/bench_before_after.py`` makes them). Rows are counted
exactly (``count(*)``), per table and level, with each table's size on disk.

Run::

    python -m bench.bench_grain --before onemap_before_after_before_m \\
        --after onemap_before_after_after_m

writes ``bench/results/grain.json``.
"""

from __future__ import annotations

import argparse

import psycopg
from psycopg import sql

from bench.common import metric, print_table, server_url, with_database, write_results
from onemap import aggregates as agg

# The case aggregates a database may hold (the baseline's may be other or more than ours).
FOUND = ("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
         "WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname LIKE 'case\\_%' "
         "AND c.relname <> 'case_event' ORDER BY 1")


def sizes(url: str) -> dict:
    """The cases, and each aggregate table's rows (in all and per level) and bytes."""
    with psycopg.connect(url) as conn:
        cases = conn.execute("SELECT count(*) FROM case_event").fetchone()[0]
        tables = {}
        for (name,) in conn.execute(FOUND).fetchall():
            table = sql.Identifier(name)
            levels = dict(conn.execute(sql.SQL(
                "SELECT level, count(*) FROM {} GROUP BY 1 ORDER BY 1").format(table)))
            size = conn.execute("SELECT pg_total_relation_size(%s)", (name,)).fetchone()[0]
            tables[name] = {"rows": sum(levels.values()), "by_level": levels, "bytes": size}
    return {"cases": cases, "tables": tables}


def compare(before: dict, after: dict) -> list[dict]:
    metrics = []
    for name in sorted(set(before["tables"]) | set(after["tables"])):
        old = before["tables"].get(name, {"rows": 0})["rows"] / before["cases"]
        new = after["tables"].get(name, {"rows": 0})["rows"] / after["cases"]
        metrics.append(metric(f"{name}: rows per case", new, "rows/case", "before",
                              old, new / old if old else None))
    for label, key, unit in (("rows per case", "rows", "rows/case"),
                             ("MB per 1,000 cases", "bytes", "MB")):
        old, new = (sum(t[key] for t in doc["tables"].values()) / doc["cases"]
                    * (1000 / 2**20 if key == "bytes" else 1) for doc in (before, after))
        metrics.append(metric(f"every aggregate table: {label}", new, unit, "before", old,
                              new / old, "fewer rows than cases" if key == "rows" else None,
                              new < 1 if key == "rows" else None))
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the baseline tree's database")
    parser.add_argument("--after", required=True, help="this tree's database")
    parser.add_argument("--city", default="M, seed 7, as of 2026-11-21T00:00:00")
    args = parser.parse_args()
    url = server_url()
    before, after = (sizes(with_database(url, name)) for name in (args.before, args.after))
    metrics = compare(before, after)
    print_table(metrics)
    print(write_results("grain", metrics, with_database(url, args.after), extra={
        "city": args.city, "declared": {t.name: list(t.levels) for t in agg.TABLES},
        "before": {"database": args.before, **before},
        "after": {"database": args.after, **after},
        "note": "exact row counts; sizes on disk include indexes and whatever free room "
                "the tables' past loads left"}))


if __name__ == "__main__":
    main()

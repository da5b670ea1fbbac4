"""并案 suggestions (``layers.merging``) against the duplicates the demo city plants.

The generator writes ``cases.duplicates.csv`` beside the cases (``democity.duplicates``):
each later report of an event with the id of the event's first report. Nothing loads it;
the detector sees only ``case_event``. Measured over pairs of loaded cases with points:

* precision: of the pairs the suggestions put in one cluster, the share that are reports
  of one planted event;
* recall: of the pairs of reports of one planted event, the share the suggestions put in
  one cluster.

The suggestions run as the workbench asks for them: the district, the S city's whole period
(the M city's last ``M_DAYS``). Also the time of the suggestions for the last 30 and 90
days of the district and of its largest street.

Run: ``python -m bench.bench_merge``. Without ``BENCH_MERGE_DB`` the S city (seed 7, at
the pinned reference time) is generated into a scratch folder, loaded into the scratch
database ``onemap_bench_merge`` (kept for a look afterwards) and measured;
``BENCH_MERGE_DB`` and ``BENCH_MERGE_CITY`` (the folder of the city loaded in it) measure a
loaded city instead.
``BENCH_MERGE_SIZE`` (S, M) and ``BENCH_MERGE_SEED`` pick another city; the results go to
``merge.json`` for the S city of seed 7 and, measured in the same run, the M city when
``BENCH_MERGE_M_DB`` and ``BENCH_MERGE_M_CITY`` name one.
"""

from __future__ import annotations

import csv
import itertools
import os
import statistics
import tempfile
import time
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.common import metric, print_table, scratch_database, write_results
from layers import merging
from layers.cases import local_zone
from layers.filters import parse_filters
from layers.scope import resolve_scope
from onemap.database import make_engine

ZONE = "Asia/Shanghai"
TARGET = 0.9
REPEATS = int(os.environ.get("BENCH_MERGE_REPEATS", "3"))
# The M city's precision and recall over its last 90 days: its whole 24 months take the
# suggestions many minutes (each of 1M cases looks up its neighbours), and no person asks
# for them.
M_DAYS = 90


def truth_pairs(folder: Path, loaded: set[str]) -> set[tuple[str, str]]:
    """Pairs (sorted) of loaded cases that report one planted event."""
    events: dict[str, set[str]] = {}
    with (folder / "cases.duplicates.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            events.setdefault(row["事件编号"], {row["事件编号"]}).add(row["工单编号"])
    return {tuple(sorted(p)) for members in events.values()
            for p in itertools.combinations(sorted(members & loaded), 2)}


def found_pairs(clusters: list[dict]) -> set[tuple[str, str]]:
    return {tuple(sorted(p)) for c in clusters
            for p in itertools.combinations([x["id"] for x in c["cases"]], 2)}


def measure(url: str, folder: Path, label: str, days: int | None = None) -> list[dict]:
    """Precision, recall and times on the city of ``folder`` loaded at ``url``; precision
    and recall over its whole period, or over its last ``days``."""
    engine = make_engine(url)
    metrics = []
    with engine.connect() as conn:
        zone = local_zone(conn, ZONE)
        end = conn.exec_driver_sql("SELECT max(reported_at) FROM case_event").scalar()
        last_day = (end.astimezone(ZoneInfo(zone)) + timedelta(days=1)).date()
        district = resolve_scope(conn, None)
        street = conn.exec_driver_sql(
            "SELECT street_code FROM case_event WHERE street_code IS NOT NULL "
            "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").scalar()
        whole = parse_filters({"range": "all"} if days is None else _last(last_day, days), zone)
        span = "whole period" if days is None else f"last {days} days"
        loaded = set(conn.exec_driver_sql(
            "SELECT id FROM case_event WHERE geom IS NOT NULL AND reported_at >= "
            "coalesce(%s::timestamptz, '-infinity') AND reported_at < "
            "coalesce(%s::timestamptz, 'infinity')",
            (whole.start, whole.end)).scalars())
        truth = truth_pairs(folder, loaded)
        start = time.perf_counter()
        found = merging.suggestions(conn, district, whole, zone, limit=10**9, longest=None)
        took = time.perf_counter() - start
        got = found_pairs(found["clusters"])
        hits = len(got & truth)
        precision = hits / len(got) if got else None
        recall = hits / len(truth) if truth else None
        metrics += [
            metric(f"precision ({label}, {span})", precision, "share",
                   target=f">= {TARGET}", met=precision is not None and precision >= TARGET),
            metric(f"recall ({label}, {span})", recall, "share",
                   target=f">= {TARGET}", met=recall is not None and recall >= TARGET),
            metric(f"planted pairs ({label}, {span})", len(truth), "pairs"),
            metric(f"proposed pairs ({label}, {span})", len(got), "pairs"),
            metric(f"clusters proposed ({label}, {span})", found["total"], "clusters"),
            metric(f"suggestions time ({label}, district, {span})", took * 1000, "ms")]
        for length in (30, 90):
            period = parse_filters(_last(last_day, length), zone)
            for where, code in (("district", None), ("street", street)):
                scope = resolve_scope(conn, code)
                times = []
                for _ in range(REPEATS):
                    start = time.perf_counter()
                    merging.suggestions(conn, scope, period, zone)
                    times.append((time.perf_counter() - start) * 1000)
                metrics.append(metric(f"suggestions time ({label}, {where}, {length} days)",
                                      statistics.median(times), "ms"))
    engine.dispose()
    return metrics


def _last(last_day, days: int) -> dict:
    """The filters of the ``days`` local days before ``last_day``."""
    return {"start": (last_day - timedelta(days=days)).isoformat(),
            "end": (last_day - timedelta(days=1)).isoformat()}


def main() -> None:
    size = os.environ.get("BENCH_MERGE_SIZE", "S").upper()
    seed = int(os.environ.get("BENCH_MERGE_SEED", "7"))
    url, city = os.environ.get("BENCH_MERGE_DB"), os.environ.get("BENCH_MERGE_CITY")
    if url and city:
        metrics = measure(url, Path(city), f"{size} seed {seed}")
    else:
        from democity.city import PINNED_AS_OF, generate, load_city

        with tempfile.TemporaryDirectory(prefix="bench-merge-") as folder, \
                scratch_database("onemap_bench_merge", keep=True) as url:
            made = generate(size, seed, Path(folder), as_of=PINNED_AS_OF)
            load_city(url, made)
            metrics = measure(url, made.folder, f"{size} seed {seed}")
    m_url, m_city = os.environ.get("BENCH_MERGE_M_DB"), os.environ.get("BENCH_MERGE_M_CITY")
    if m_url and m_city:
        metrics += measure(m_url, Path(m_city), "M seed 7", days=M_DAYS)
    print_table(metrics)
    name = "merge" if (size, seed) == ("S", 7) else f"merge-{size}-seed{seed}"
    write_results(name, metrics, url, extra={
        "rule": asdict(merging.RULE),
        "note": "pairs of loaded cases with points; the machine (2 cores) was shared with "
                "other workers' tests and benches while this ran"})


if __name__ == "__main__":
    main()

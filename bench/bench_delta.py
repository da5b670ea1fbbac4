"""A small case batch into a loaded city: the aggregates by delta against the whole-day
recount, in the same run on the same batches.

The demo city (``BENCH_SIZE``, default M, seed 7, at the pinned reference time) is generated
and loaded through the ETL into a scratch database (or ``BENCH_DELTA_DB`` names one holding
it already; ``BENCH_KEEP=1`` keeps the scratch one for the next run). Batches of 10 and
1,000 cases, half of them open cases of the city now closed (with a closing time,
satisfaction and resolution level), half new cases copied from the city's under new ids,
are loaded through ``etl.load.load`` as a dry run (all the work, then rolled back), once
with the aggregates kept by delta and once recounted by whole days
(``etl.rollup.DELTA_MAX_CASES`` set to 0), alternately, ``REPEAT`` times each; the median
seconds of the whole load and of its aggregate step alone are reported, the recount the
baseline (ratio = recount / delta).

Run: ``python -m bench.bench_delta``. The machine is shared (2 cores): the figures are of
one run among other work.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.common import (
    metric,
    print_table,
    scratch_database,
    server_url,
    with_database,
    write_results,
)
from democity.city import PINNED_AS_OF, City, default_folder, generate, load_city
from etl import rollup
from etl.load import load

SIZES = (10, 1_000)
REPEAT = 3
ID, STATUS, REPORTED, CLOSED, CATEGORY = "工单编号", "办理状态", "上报时间", "办结时间", "一级分类"
OPEN = ("待受理", "待分拨", "处理中", "已反馈")


def batch(cases: pd.DataFrame, size: int, folder: Path) -> Path:
    """A file of ``size`` cases: half the city's open cases closed 5 hours after their
    report, half new copies of its cases (spread over its days)."""
    open_cases = cases[cases[STATUS].isin(OPEN)].sample(size // 2, random_state=size).copy()
    open_cases[STATUS] = "已办结"
    reported = pd.to_datetime(open_cases[REPORTED])
    open_cases[CLOSED] = (reported + pd.Timedelta(hours=5)).dt.strftime("%Y-%m-%d %H:%M:%S")
    open_cases["满意度"] = 5
    open_cases["解决层级"] = "网格"
    new = cases.sample(size - size // 2, random_state=size + 1).copy()
    new[ID] = [f"BENCH{size}-{i:06d}" for i in range(len(new))]
    path = folder / f"batch-{size}.csv"
    pd.concat([open_cases, new]).to_csv(path, index=False)
    return path


def timed_load(url: str, city, path: Path, delta_max: int) -> tuple[float, float]:
    """Seconds of a dry-run load of ``path`` and of its aggregate step."""
    spent = {}
    real = rollup.update

    def update(*args):
        started = time.perf_counter()
        real(*args)
        spent["aggregates"] = time.perf_counter() - started

    rollup.update, kept = update, rollup.DELTA_MAX_CASES
    rollup.DELTA_MAX_CASES = delta_max
    try:
        started = time.perf_counter()
        report = load(url, "cases", [path], city.mapping("cases"), dry_run=True)
        seconds = time.perf_counter() - started
    finally:
        rollup.update, rollup.DELTA_MAX_CASES = real, kept
    assert report.inserted + report.updated > 0, report   # the city has a few bad rows
    return seconds, spent["aggregates"]


def measure(url: str, city, folder: Path) -> list[dict]:
    cases = pd.read_csv(city.csv("cases"), dtype=str, keep_default_na=False)
    total = len(cases)
    cases = cases[cases[CATEGORY] != ""]     # the city's few rows the loader rejects
    metrics = []
    for size in SIZES:
        path = batch(cases, size, folder)
        runs = {"delta": [], "recount": []}
        for _ in range(REPEAT):
            runs["delta"].append(timed_load(url, city, path, rollup.DELTA_MAX_CASES))
            runs["recount"].append(timed_load(url, city, path, 0))
        for part, name in ((0, "load"), (1, "aggregate step")):
            delta = statistics.median(r[part] for r in runs["delta"])
            recount = statistics.median(r[part] for r in runs["recount"])
            metrics.append(metric(
                f"{size:,}-case batch into {total:,} cases: {name} by delta", delta, "s",
                baseline=f"{name} by whole-day recount", baseline_value=recount,
                ratio=recount / delta))
    return metrics


def main() -> None:
    size = os.environ.get("BENCH_SIZE", "M").upper()
    home = Path(os.environ.get("BENCH_DELTA_HOME") or tempfile.mkdtemp(prefix="onemap-delta-"))
    city_folder = default_folder(home, size, 7)
    try:
        if not (city_folder / "complete.json").exists():
            generate(size, 7, city_folder, as_of=PINNED_AS_OF)
        city = City(city_folder)
        given = os.environ.get("BENCH_DELTA_DB")
        if given:
            url = with_database(server_url(), given)
            metrics = measure(url, city, home)
        else:
            keep = os.environ.get("BENCH_KEEP") == "1"
            with scratch_database(f"onemap_bench_delta_{size.lower()}", keep=keep) as url:
                load_city(url, city)
                metrics = measure(url, city, home)
    finally:
        if not os.environ.get("BENCH_DELTA_HOME"):
            shutil.rmtree(home, ignore_errors=True)
    print_table(metrics)
    print(write_results("delta", metrics, url, extra={
        "city": f"{size}, seed 7, as of {PINNED_AS_OF}",
        "note": "dry-run loads (all the work, then rolled back), median of "
                f"{REPEAT} alternating runs each; the machine (2 cores) was shared with "
                "other work during the run"}))


if __name__ == "__main__":
    main()

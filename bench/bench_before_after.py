"""``bench_read`` and ``bench_load`` of two source trees, interleaved (before, after, after,
before, …) so that whatever else the machine does, and its drift, falls on both alike; each
tree runs its own copy of the benchmark on its own code and on a database its own migrations
made.

* read: ``python -m bench.bench_read`` on the demo city (default M, pinned at 2026-11-21
  00:00, seed 7) loaded by each tree into its own database (bench/tree_city.py makes it, or
  keeps it when it already holds that city).
* load: ``python -m bench.bench_load`` with ``BENCH_LOAD_ROWS`` synthetic NYC 311 rows (default
  100,000; the benchmark's own default is 1,000,000) and ``BENCH_LOAD_REPEAT=1``, each tree in
  a scratch database of its own name.

Every run's result file is kept whole in the output; the summary gives, per figure, each
round's value, the median per tree, after / before, and the noise: the larger spread between
two rounds of the same tree. A figure counts as slower only when after / before - 1 exceeds
that noise.

Run (ONEMAP_HOME or DATABASE_URL naming the server to use)::

    python bench/bench_before_after.py     # before: a temporary worktree of 740fe0b
    git worktree add /work/wt-before 740fe0b
    git worktree add --detach /work/wt-after main
    python bench/bench_before_after.py --before /work/wt-before --after /work/wt-after

writes ``bench/results/before-after.json`` (``--only read`` or ``--only load`` runs one;
``BENCH_ROUNDS`` sets the rounds, default 2).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 2))
LOAD_ROWS = int(os.environ.get("BENCH_LOAD_ROWS", 100_000))


def run(label: str, tree: Path, what: str, args) -> dict:
    """One benchmark run in ``tree``; its result document (the tree's copy is put back)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    if what == "read":
        env["BENCH_READ_DB"] = f"{args.prefix}_{label}_{args.size.lower()}"
        cmd = [sys.executable, "-m", "bench.bench_read"]
    else:
        env.update(BENCH_LOAD_ROWS=str(LOAD_ROWS), BENCH_LOAD_REPEAT="1")
        cmd = [sys.executable, "-c", "import bench.bench_load as b; "
               f"b.DATABASE = '{args.prefix}_load_{label}'; b.main()"]
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{what} in {tree} failed:\n{done.stdout[-2000:]}\n"
                         f"{done.stderr[-3000:]}")
    results = tree / "bench" / "results" / f"{what}.json"
    doc = json.loads(results.read_text())
    subprocess.run(["git", "-C", str(tree), "checkout", "--", str(results)], check=True)
    doc["wall_seconds"] = round(seconds, 1)
    doc["loadavg_before"] = _loadavg()
    return doc


def _loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def figures(what: str, doc: dict) -> dict[str, tuple[float, str]]:
    """The figures of one run to compare, by name: (value, unit)."""
    if what == "read":
        found = {}
        for m in doc["metrics"]:
            level = m["metric"].split(" (")[0]
            part = m["metric"].split("hotspots")[-1].strip(" :")
            found[f"{level}: KPIs + children + hotspots {part}"] = (m["value"], m["unit"])
            if part == "p50":  # the same SQL in both trees: the noise
                found[f"{level}: plain GROUP BY p50 (same SQL in both trees)"] = (
                    m["baseline_value"], m["unit"])
        return found
    runs = doc["runs"]
    found = {"onemap load (whole process)": (runs["onemap"][0]["seconds"], "s"),
             "onemap load peak RSS": (runs["onemap"][0]["peak_mb"], "MB"),
             "aggregate refresh alone": (runs["floor"][0]["aggregates_seconds"], "s"),
             "floor (rows written + indexes)": (runs["floor"][0]["seconds"], "s")}
    for name in ("geopandas", "ogr2ogr", "copy"):  # the same code in both trees: the noise
        found[f"{name} (same code in both trees)"] = (runs[name][0]["seconds"], "s")
    for name, grid in doc["grids"].items():
        found[f"admin load of NYC {name} ({grid['loaded']} units)"] = (grid["seconds"], "s")
    return found


def summarise(what: str, before: list[dict], after: list[dict]) -> list[dict]:
    from bench.common import metric

    old = [figures(what, d) for d in before]
    new = [figures(what, d) for d in after]
    metrics = []
    for name, (_, unit) in new[0].items():
        b = [f[name][0] for f in old if name in f]
        a = [f[name][0] for f in new]
        if not b:
            continue
        spreads = [(max(x) - min(x)) / statistics.mean(x) for x in (a, b)
                   if len(x) > 1 and statistics.mean(x)]
        noise = max(spreads) if spreads else None
        ratio = statistics.median(a) / statistics.median(b) if statistics.median(b) else None
        slower = ratio is not None and noise is not None and ratio - 1 > noise
        row = metric(f"{what}: {name} (median of {len(a)} runs)", statistics.median(a), unit,
                     f"before, median of {len(b)} runs", statistics.median(b), ratio,
                     "after / before - 1 <= noise (not slower beyond noise)",
                     None if noise is None else not slower)
        row.update(before_runs=b, after_runs=a, noise=None if noise is None else round(noise, 3))
        metrics.append(row)
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path,
                        help="the older tree (default: a temporary worktree of 740fe0b)")
    parser.add_argument("--after", type=Path, default=HERE.parent)
    parser.add_argument("--only", choices=("read", "load"))
    parser.add_argument("--keep-city", action="store_true",
                        help="keep each tree's database when it holds any city (see "
                             "bench/tree_city.py --keep)")
    parser.add_argument("--size", default="M", help="the demo city bench_read reads")
    parser.add_argument("--prefix", default="onemap_before_after")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    from bench.trees import tree_at

    with tree_at(args.before) as before:
        compare(before, args.after.resolve(), args)


def compare(before: Path, after: Path, args) -> None:
    from bench.common import git_commit, write_results

    trees = {"before": before, "after": after}
    kinds = [args.only] if args.only else ["read", "load"]
    docs: dict = {kind: {label: [] for label in trees} for kind in kinds}
    cities = {}
    if "read" in kinds:
        for label, tree in trees.items():
            made = subprocess.run(
                [sys.executable, str(HERE / "tree_city.py"), "--size", args.size, "--database",
                 f"{args.prefix}_{label}_{args.size.lower()}",
                 *(["--keep"] if args.keep_city else [])], cwd=tree, capture_output=True,
                text=True, env={**os.environ, "PYTHONPATH": str(tree)})
            if made.returncode:
                raise SystemExit(f"{label}: no city:\n{made.stderr[-3000:]}")
            cities[label] = json.loads(made.stdout.strip().splitlines()[-1])
            print(f"{label}: {cities[label]}", flush=True)
    started = time.perf_counter()
    for kind in kinds:
        for round_ in range(ROUNDS):  # before first, then after first: drift cancels
            order = list(trees.items())
            for label, tree in order if round_ % 2 == 0 else order[::-1]:
                doc = run(label, tree, kind, args)
                docs[kind][label].append(doc)
                print(f"   {kind} {label} round {round_ + 1}: {doc['wall_seconds']} s "
                      f"(load average {doc['loadavg_before']} after it)", flush=True)
    metrics = [m for kind in kinds for m in summarise(kind, docs[kind]["before"],
                                                        docs[kind]["after"])]
    commits = {label: subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"],
                                     capture_output=True, text=True).stdout.strip()
               for label, tree in trees.items()}
    name = "before-after" + (f"-{args.only}" if args.only else "")
    path = write_results(name, metrics, extra={
        "commits": commits, "bench_commit": git_commit(), "rounds": ROUNDS,
        "read_city": {"size": args.size, **cities.get("after", {})},
        "load_rows": LOAD_ROWS,
        "notes": "The machine was shared: 2 cores with other workers' tests and builds "
                 "running (see each run's machine and loadavg_before), so absolute times are "
                 "slower than on a quiet machine; the trees ran interleaved (before, after, "
                 "after, before, …) so that the load and its drift fell on both alike. "
                 "ratio = after / before (medians; above 1: after slower or larger); "
                 "noise = the larger relative spread between runs of the same tree. "
                 "read: bench_read at the demo city "
                 f"{args.size} (pinned 2026-11-21 00:00, seed 7), each tree on a database its "
                 f"own migrations made; load: bench_load with {LOAD_ROWS:,} synthetic NYC 311 "
                 "rows over the NYC tracts (the benchmark's own default is 1,000,000), "
                 "repeat 1 per run.",
        "total_seconds": round(time.perf_counter() - started),
        "runs": docs})
    for m in metrics:
        print(f"{m['metric']:80} before {m['baseline_value']:>10} after {m['value']:>10} "
              f"ratio {m['ratio']} noise {m['noise']}")
    print(f"   → {path}")


if __name__ == "__main__":
    main()

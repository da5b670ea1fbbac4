"""The hotspot detector against the hotspots the demo generator plants, on the M city.

The generator writes ``cases.truth.json`` beside the cases: each planted hotspot's kind
(persistent, emerging, fading), its category and the grids its cases fell in. A planted
hotspot's footprint is the grids holding at least ``FOOTPRINT_SHARE`` of its cases.

The detector runs as the dashboard runs it (district, the generator's whole period) once
per category that hotspots were planted in: a hotspot is "dominated by one third-level
category", so that is where a person looks for it. Over those views:

* precision: of the grids shown hot, the share in the footprint of a planted hotspot of
  the kind their trend says;
* recall: of the hotspots planted in the view's category, the share with a footprint grid
  shown hot with their kind.

Also the time of a view's hotspots at each level, judged anew and read again.

The view without a filter is reported too, without a target: there, the background of
every case follows the grids' population density, so the densest neighbourhoods are
concentrations of cases as real as any planted one (the result lists, for each planted
hotspot, how its grid compares with the background).

Run: ``python -m bench.bench_hotspots``. ``BENCH_HOTSPOTS_DB`` names the database and
``BENCH_HOTSPOTS_HOME`` the onemap home holding ``city/M-seed7``; when the database holds
no cases the city is generated (if needed) and loaded into it first, which takes minutes,
at the pinned reference time the recorded figures were measured at.
``BENCH_HOTSPOTS_SIZE`` and ``BENCH_HOTSPOTS_SEED`` measure another city (a rule of the
detector should hold beyond the one city it is measured on); its results go to
``hotspots-SIZE-seedN.json``, its database and home are named after it.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg

from bench.common import (
    BIN,
    metric,
    print_table,
    scratch_database,
    server_url,
    with_database,
    write_results,
)
from democity.city import PINNED_AS_OF
from layers.filters import parse_filters
from layers.hotspots import VERDICTS, hotspots
from layers.scope import resolve_scope
from onemap.database import make_engine

SIZE = os.environ.get("BENCH_HOTSPOTS_SIZE", "M").upper()
SEED = int(os.environ.get("BENCH_HOTSPOTS_SEED", "7"))
MEASURED = (SIZE, SEED) == ("M", 7)  # the city the targets are set on
FOOTPRINT_SHARE = 0.05
TARGET = 0.9
ZONE = "Asia/Shanghai"
KINDS = ("persistent", "emerging", "fading")
RESULTS = "hotspots" if MEASURED else f"hotspots-{SIZE}-seed{SEED}"
DATABASE = ("onemap_bench_hotspots_m" if MEASURED else
            f"onemap_bench_hotspots_{SIZE.lower()}_seed{SEED}")


def city_ready(home: Path, name: str) -> tuple[str, dict]:
    """The database URL and the truth of the loaded city, loading it first if needed."""
    url = with_database(server_url(), name)
    folder = home / "city" / f"{SIZE}-seed{SEED}"
    if not _has_cases(url):
        with scratch_database(name, keep=True) as url:
            env = {**os.environ, "DATABASE_URL": url, "ONEMAP_HOME": str(home)}
            subprocess.run([str(BIN / "onemap"), "demo", "--size", SIZE, "--seed", str(SEED),
                            "--as-of", str(PINNED_AS_OF).replace("T", " ")],
                           env=env, check=True)
    truth = json.loads((folder / "cases.truth.json").read_text(encoding="utf-8"))
    return url, truth


def _has_cases(url: str) -> bool:
    try:
        with psycopg.connect(url) as conn:
            return conn.execute("SELECT EXISTS (SELECT 1 FROM case_event)").fetchone()[0]
    except psycopg.Error:
        return False


def footprints(spots: list[dict]) -> dict[str, list[dict]]:
    """Grid code → the planted hotspots whose footprint holds it."""
    found: dict[str, list[dict]] = {}
    for spot in spots:
        total = sum(spot["grids"].values())
        for grid, n in spot["grids"].items():
            if n >= FOOTPRINT_SHARE * total:
                found.setdefault(grid, []).append(spot)
    return found


def evaluate(result: dict, planted: list[dict], everywhere: dict) -> dict:
    """Hot grids against the footprints: which are right, which hotspots were found."""
    hot = [f["properties"] for f in result["features"] if f["properties"]["hot"]]
    right = [p for p in hot if any(s["kind"] == p["trend"] for s in everywhere.get(p["id"], []))]
    mine = {s["id"] for s in planted}
    found = {s["id"] for p in hot for s in everywhere.get(p["id"], [])
             if s["kind"] == p["trend"] and s["id"] in mine}
    return {
        "shown": [{"grid": p["id"], "name": p["name"], "n": p["n"], "z": p["z"], "q": p["q"],
                   "trend": p["trend"],
                   "planted": [s["id"] + " " + s["kind"] for s in everywhere.get(p["id"], [])]}
                  for p in hot],
        "right": len(right), "hot": len(hot), "found": sorted(found),
        "missed": sorted(mine - found), "planted": len(planted),
        "right_by_kind": Counter(p["trend"] for p in right),
        "hot_by_kind": Counter(p["trend"] for p in hot),
        "found_by_kind": Counter(s["kind"] for s in planted if s["id"] in found),
        "planted_by_kind": Counter(s["kind"] for s in planted),
    }


def background(conn, truth: dict, period: dict) -> list[dict]:
    """For each planted hotspot, its main grid's cases, how many were planted there, and
    the rank of the rest (its background) among all grids' counts (1 = most)."""
    counts = dict(conn.exec_driver_sql(
        "SELECT grid_code, count(*) FROM case_event WHERE grid_code IS NOT NULL AND "
        "reported_at >= %(start)s AND reported_at < %(end)s GROUP BY 1", period).all())
    planted: Counter = Counter()
    for spot in truth["hotspots"]:
        planted.update(spot["grids"])
    ranked = sorted(counts.values(), reverse=True)
    rows = []
    for spot in truth["hotspots"]:
        grid = next(iter(spot["grids"]))
        rest = counts.get(grid, 0) - planted[grid]
        rows.append({"hotspot": spot["id"], "kind": spot["kind"], "grid": grid,
                     "cases": counts.get(grid, 0), "planted": planted[grid],
                     "background": rest, "grids": len(counts),
                     "background_rank": 1 + sum(1 for n in ranked if n > rest),
                     "grid_mean": round(statistics.mean(counts.values()), 1),
                     "grid_sd": round(statistics.pstdev(counts.values()), 1)})
    return rows


def main() -> None:
    home = Path(os.environ.get("BENCH_HOTSPOTS_HOME", f"/tmp/onemap-hotspots-{SIZE}"))
    url, truth = city_ready(home, os.environ.get("BENCH_HOTSPOTS_DB", DATABASE))
    everywhere = footprints(truth["hotspots"])
    # The generator's period, its end exclusive; a filter's end day is inclusive.
    start = truth["period"]["start"][:10]
    last = (datetime.fromisoformat(truth["period"]["end"]) - timedelta(seconds=1)).date()
    engine = make_engine(url)
    views, seconds = {}, []
    with engine.connect() as conn:
        scope = resolve_scope(conn, None)
        for category in [None, *sorted({s["category_1"] for s in truth["hotspots"]})]:
            params = {"start": start, "end": str(last)}
            if category:
                params["category"] = category
            began = time.perf_counter()
            result = hotspots(conn, scope, parse_filters(params, ZONE), "grid", 12, ZONE)
            seconds.append(time.perf_counter() - began)
            planted = [s for s in truth["hotspots"] if category in (None, s["category_1"])]
            views[category or "(all cases)"] = evaluate(result, planted, everywhere)
        filters = parse_filters({"start": start, "end": str(last)}, ZONE)
        spread = background(conn, truth, {"start": filters.start, "end": filters.end})
        reads = read_times(conn, last)
    engine.dispose()
    metrics = summary(views)
    metrics.append(metric("seconds per view (district, whole period, median)",
                          statistics.median(seconds), "s"))
    metrics += reads
    print_table(metrics)
    print(write_results(RESULTS, metrics, url, {
        "size": SIZE, "seed": SEED, "period": [start, str(last)],
        "footprint_share": FOOTPRINT_SHARE, "views": views,
        "load_average_1_5_15": os.getloadavg(),  # the read times depend on it
        "unfiltered_background": spread}))


def read_times(conn, last: date, repeat: int = 15) -> list[dict]:
    """p50 of one view's hotspots over the last 90 days at each level: judged anew (the
    district's grids counted and judged) and as read again (from the shared verdicts)."""
    metrics = []
    start = last - timedelta(days=89)
    for level in (1, 2, 3, 4):
        code = conn.exec_driver_sql("SELECT min(code) FROM admin_unit WHERE level = %(l)s",
                                    {"l": level}).scalar_one()
        scope = resolve_scope(conn, code)
        filters = parse_filters({"start": str(start), "end": str(last), "scope": code}, ZONE)
        for fresh in (True, False):
            times = []
            for _ in range(repeat):
                if fresh:
                    VERDICTS.clear()
                began = time.perf_counter()
                hotspots(conn, scope, filters, "grid", 12, ZONE)
                times.append((time.perf_counter() - began) * 1000)
            how = "judged anew" if fresh else "read again"
            metrics.append(metric(f"hotspots of a level-{level} view, 90 days, {how} (p50)",
                                  statistics.median(times), "ms"))
    return metrics


def summary(views: dict) -> list[dict]:
    """Precision and recall over the category views (targets), by kind, and the view of
    all cases (no target)."""
    by_category = {k: v for k, v in views.items() if k != "(all cases)"}
    right = sum(v["right"] for v in by_category.values())
    hot = sum(v["hot"] for v in by_category.values())
    found = sum(len(v["found"]) for v in by_category.values())
    planted = sum(v["planted"] for v in by_category.values())
    metrics = [
        metric("precision: hot grids that are planted, of that kind (category views)",
               right / hot if hot else 0.0, "ratio", target=f">= {TARGET}",
               met=hot > 0 and right / hot >= TARGET),
        metric("recall: planted hotspots found with their kind (category views)",
               found / planted, "ratio", target=f">= {TARGET}", met=found / planted >= TARGET),
    ]
    for kind in KINDS:
        shown = sum(v["hot_by_kind"][kind] for v in by_category.values())
        good = sum(v["right_by_kind"][kind] for v in by_category.values())
        metrics.append(metric(f"precision, {kind} (category views)",
                              good / shown if shown else 0.0, "ratio", target=f">= {TARGET}",
                              met=shown > 0 and good / shown >= TARGET))
        sown = sum(v["planted_by_kind"][kind] for v in by_category.values())
        caught = sum(v["found_by_kind"][kind] for v in by_category.values())
        metrics.append(metric(f"recall, {kind} (category views)", caught / sown, "ratio",
                              target=f">= {TARGET}", met=caught / sown >= TARGET))
    all_cases = views["(all cases)"]
    metrics += [
        metric("precision (all cases, no filter)",
               all_cases["right"] / all_cases["hot"] if all_cases["hot"] else 0.0, "ratio"),
        metric("recall (all cases, no filter)", len(all_cases["found"]) / all_cases["planted"],
               "ratio"),
    ]
    return metrics


if __name__ == "__main__":
    main()

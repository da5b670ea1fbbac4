"""The case feed (issue 18, item 3): case events through ``POST /api/cases``, and a file of
cases loaded into the city then visible on ``/api/kpi``.

The demo city (``BENCH_FEED_SIZE``, default S: the L city is out of reach on this shared
2-core machine, and M takes a long while to build) is generated and loaded into a scratch
database; ``onemap serve`` (the single-process server) runs on it as a child process with a
feed user.

1. *events through the API*: ``BENCH_FEED_BATCHES`` requests (default 20) of
   ``BENCH_FEED_BATCH`` new cases each (default 100), then as many requests carrying those
   cases' next stages (受理, 分拨, 处置, 办结 with a rating: each stage for a quarter of the
   batches), posted one after the other by one client. Reported: events written a second
   over all of them (target ≥ 500/s), and the median request's time. The same again with
   ``BENCH_FEED_BIG_BATCHES`` (4) requests of ``BENCH_FEED_BIG_BATCH`` (1,000) events: a
   request's fixed costs (the batch, the transform's per-column work, the recount of the
   touched day's aggregates) spread over more events.
2. *a file into the city*: ``BENCH_FEED_FILE_ROWS`` (default 10,000) cases of the city's own
   export, under new ids, loaded with ``etl.load.load`` (what ``onemap load cases`` runs)
   while the server runs; timed from the start of the load until ``/api/kpi`` counts them
   (target < 5 s).

The machine is shared with other workers' tests and benchmarks: its load average is
recorded beside the figures. Run: ``python -m bench.bench_feed``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd

from bench.common import (
    RESULTS,
    ROOT,
    metric,
    print_table,
    scratch_database,
    write_results,
)

SIZE = os.environ.get("BENCH_FEED_SIZE", "S")
BATCHES = int(os.environ.get("BENCH_FEED_BATCHES", 20))
BATCH = int(os.environ.get("BENCH_FEED_BATCH", 100))
BIG_BATCH = int(os.environ.get("BENCH_FEED_BIG_BATCH", 1000))   # the most one request takes
BIG_BATCHES = int(os.environ.get("BENCH_FEED_BIG_BATCHES", 4))
FILE_ROWS = int(os.environ.get("BENCH_FEED_FILE_ROWS", 10_000))
DATABASE = "onemap_bench_feed"
EVERYTHING = "/api/kpi?start=2000-01-01&end=2100-01-01"
DAY = "2026-11-20"


def main() -> None:
    from democity.city import PINNED_AS_OF, default_folder, generate, load_city
    from onemap.accounts import add_user
    from onemap.database import make_engine

    home = Path(tempfile.mkdtemp(prefix="onemap-bench-feed-"))
    city = generate(SIZE, 7, default_folder(home, SIZE, 7), as_of=PINNED_AS_OF)
    with scratch_database(DATABASE) as url:
        print(f"loading the {SIZE} city …", flush=True)
        load_city(url, city)
        engine = make_engine(url)
        token = add_user(engine, "bench-feed", "feed")
        add_user(engine, "bench-admin", "admin", password="bench-password")
        engine.dispose()
        with served(url) as base:
            metrics, extra = api_rate(url, base, token, BATCH, BATCHES, "B")
            big, extra["api_big"] = api_rate(url, base, token, BIG_BATCH, BIG_BATCHES, "C")
            metrics += big
            metrics += file_visible(url, base, city)
        extra["load_average"] = os.getloadavg()
        extra["city"] = SIZE
        extra["note"] = (f"the {SIZE} city on a 2-core machine shared with other workers "
                         "(load average beside); the L city was out of reach here")
        print_table(metrics)
        print(write_results("feed", metrics, url, extra))


class served:
    """``onemap serve`` on a free port against ``url``; yields its base address."""

    def __init__(self, url: str):
        self.url = url

    def __enter__(self) -> str:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        RESULTS.mkdir(exist_ok=True)
        self.log = RESULTS / ".feed-serve.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "onemap.cli", "serve", "--port", str(port), "--no-debug"],
            env={**os.environ, "DATABASE_URL": self.url, "PYTHONPATH": str(ROOT)},
            stdout=self.log.open("w"), stderr=subprocess.STDOUT, cwd=ROOT)
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2)
                return base
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.log.read_text()[-2000:]) from None
                time.sleep(0.3)
        raise RuntimeError("onemap serve did not answer")

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def post(base: str, token: str, events: list[dict]) -> dict:
    request = urllib.request.Request(
        base + "/api/cases", data=json.dumps(events, ensure_ascii=False).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST")
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.loads(answer.read())


def kpi_total(base: str) -> int:
    import base64

    basic = base64.b64encode(b"bench-admin:bench-password").decode()
    request = urllib.request.Request(base + EVERYTHING,
                                     headers={"Authorization": f"Basic {basic}"})
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.loads(answer.read())["cases"]["total"]


def api_rate(url: str, base: str, token: str, size: int, batches: int,
             prefix: str) -> tuple[list[dict], dict]:
    import psycopg

    with psycopg.connect(url) as conn:
        lon, lat = conn.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) "
                                "AS p FROM admin_unit WHERE level = 4 ORDER BY code "
                                "LIMIT 1) g").fetchone()
    ids = [[f"{prefix}-{b}-{i}" for i in range(size)] for b in range(batches)]
    stages = ["accepted_at", "dispatched_at", "handled_at", "closed_at"]
    requests = [[{"id": case, "channel": "12345热线", "category_1": "城市管理",
                  "reported_at": f"{DAY}T08:{i % 60:02d}:00+08:00", "status": "open",
                  "deadline": f"{DAY}T20:00:00+08:00", "lon": lon, "lat": lat}
                 for i, case in enumerate(batch)] for batch in ids]
    for hour, stage in enumerate(stages, start=10):
        extra = {"evaluated_at": f"{DAY}T22:00:00+08:00", "satisfaction": 4} \
            if stage == "closed_at" else {}
        requests += [[{"id": case, stage: f"{DAY}T{hour}:00:00+08:00", **extra}
                      for case in batch] for batch in ids[: max(1, batches // len(stages))]]
    before = kpi_total(base)
    times, written = [], 0
    started = time.perf_counter()
    for events in requests:
        t0 = time.perf_counter()
        answer = post(base, token, events)
        times.append(time.perf_counter() - t0)
        assert answer["rejected"] == 0, answer["results"][:3]
        written += answer["inserted"] + answer["updated"]
    seconds = time.perf_counter() - started
    events = sum(len(r) for r in requests)
    assert kpi_total(base) == before + batches * size
    rate = events / seconds
    print(f"{events} events in {len(requests)} requests: {seconds:.2f} s, {rate:.0f}/s",
          flush=True)
    return [
        metric(f"case events through POST /api/cases, {size} a request", rate, "events/s",
               target=">= 500", met=rate >= 500),
        metric(f"median request of {size} events", statistics.median(times) * 1000, "ms"),
        metric(f"slowest request of {size} events", max(times) * 1000, "ms"),
    ], {"api": {"events": events, "requests": len(requests), "seconds": round(seconds, 2),
                "written": written}}


def file_visible(url: str, base: str, city) -> list[dict]:
    from etl.load import load

    frame = pd.read_csv(city.csv("cases"), dtype=str, nrows=FILE_ROWS, keep_default_na=False)
    id_column = frame.columns[0]
    frame[id_column] = "FILE-" + frame[id_column]
    path = Path(tempfile.mkdtemp(prefix="onemap-bench-feed-")) / "cases-10k.csv"
    frame.to_csv(path, index=False)
    before = kpi_total(base)
    started = time.perf_counter()
    report = load(url, "cases", [path], city.mapping("cases"))
    loaded = time.perf_counter() - started
    while kpi_total(base) < before + report.inserted:
        if time.perf_counter() - started > 120:
            raise RuntimeError("the file's cases never showed on /api/kpi")
        time.sleep(0.05)
    visible = time.perf_counter() - started
    print(f"{len(frame)} rows ({report.inserted} new): loaded in {loaded:.2f} s, visible on "
          f"/api/kpi after {visible:.2f} s", flush=True)
    return [
        metric(f"{len(frame):,}-row file loaded, then visible on /api/kpi", visible, "s",
               target="< 5", met=visible < 5),
        metric("of which the load", loaded, "s"),
    ]


if __name__ == "__main__":
    main()

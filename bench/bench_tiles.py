"""Case vector tiles at zooms 10–16: onemap's ``/tiles/cases/{z}/{x}/{y}.pbf`` against tipg
serving the same ``case_event`` table, both over HTTP on loopback, in the same run.

Each zoom gets a fixed set of tiles that hold data: the tiles under the district's centre
and under its busiest grids. Both servers get the same tiles, after a warm-up pass, in
interleaved rounds (the order alternates each round). The client is the same for both: one
fresh HTTP/1.1 connection per tile, no compression asked for, the body read in full. Each
server runs as deployed, one worker process: ``onemap serve --prod`` (gunicorn) and tipg
under uvicorn; onemap's API wants a signed-in caller, so its requests carry a kiosk token.

tipg runs with its defaults (at most 10,000 features a tile, ordered by the primary key)
and is asked for the properties onemap's tiles carry. onemap's tiles hold at most 10,000
points too, the first in table order (``layers.tiles``): below zoom 13 binned into 16-px
cells with their count, from zoom 13 on the points themselves. Tile sizes and feature
counts are recorded beside the times.

Run: ``python -m bench.bench_tiles`` (``BENCH_TILES_DB`` names another database than the
L city; ``BENCH_TILES_ROUNDS`` sets the number of measured rounds).
"""

from __future__ import annotations

import http.client
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from importlib.util import find_spec

import psycopg

from bench.common import (
    BIN,
    RESULTS,
    ROOT,
    metric,
    print_table,
    server_url,
    with_database,
    write_results,
)
from layers.catalog import default_catalog
from onemap import aggregates as agg

ZOOMS = range(10, 17)
ROUNDS = int(os.environ.get("BENCH_TILES_ROUNDS", "10"))
BUSIEST_GRIDS = 8
TILES_PER_ZOOM = 6
KIOSK = "bench-tiles"
TIPG_COLLECTION = "public.case_event"
TIPG_PROPERTIES = ",".join(default_catalog().get("cases").tile_properties)
READY_SECONDS = 180


# -- the two servers -------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str, headers: dict | None = None,
        timeout: float = 300) -> tuple[int, bytes]:
    """GET ``path`` on a fresh loopback connection: status and the whole body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@contextmanager
def running(name: str, cmd: list[str], env: dict, port: int, ready_path: str):
    """A server process, yielded once ``ready_path`` answers 200; stopped on exit."""
    RESULTS.mkdir(exist_ok=True)
    log_path = RESULTS / f".{name}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}):\n"
                                   f"{log_path.read_text(errors='replace')[-3000:]}")
            try:
                if get(port, ready_path, timeout=30)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready after {READY_SECONDS} s")
            time.sleep(0.5)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_path.unlink(missing_ok=True)


def onemap_server(url: str, port: int):
    env = {**os.environ, "DATABASE_URL": url}
    cmd = [str(BIN / "onemap"), "serve", "--prod", "--workers", "1", "--host", "127.0.0.1",
           "--port", str(port)]
    return running("onemap-serve", cmd, env, port, "/healthz")


def tipg_server(url: str, port: int):
    env = {**os.environ, "DATABASE_URL": url, "TIPG_DB_TABLES": f'["{TIPG_COLLECTION}"]',
           "TIPG_DB_SPATIAL_EXTENT": "false", "TIPG_DB_DATETIME_EXTENT": "false"}
    cmd = [sys.executable, "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning", "--no-access-log"]
    return running("tipg", cmd, env, port, f"/collections/{TIPG_COLLECTION}")


def kiosk_token(url: str) -> str:
    """A token for the kiosk ``bench-tiles`` in the benchmark's database (created the first
    time, renewed after): onemap's API wants a signed-in caller, tipg has no sign-in."""
    env = {**os.environ, "DATABASE_URL": url}
    onemap = str(BIN / "onemap")
    out = subprocess.run([onemap, "user", "add", KIOSK, "--role", "kiosk"], env=env,
                         capture_output=True, text=True)
    if out.returncode and "exists" in out.stdout + out.stderr:
        out = subprocess.run([onemap, "user", "passwd", KIOSK], env=env, capture_output=True,
                             text=True)
    found = re.search(r"token \(shown once\): (\S+)", out.stdout)
    if out.returncode or not found:
        raise RuntimeError(f"no kiosk token from onemap user:\n{out.stdout}{out.stderr}")
    return found[1]


def onemap_path(z: int, x: int, y: int) -> str:
    return f"/tiles/cases/{z}/{x}/{y}.pbf"


def tipg_path(z: int, x: int, y: int) -> str:
    return (f"/collections/{TIPG_COLLECTION}/tiles/WebMercatorQuad/{z}/{x}/{y}"
            f"?properties={TIPG_PROPERTIES}")


# -- which tiles -----------------------------------------------------------------------------
def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ (Web Mercator) tile holding a lon/lat point at zoom ``z``."""
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    rad = math.radians(lat)
    y = int((1 - math.asinh(math.tan(rad)) / math.pi) / 2 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def places(conn) -> list[tuple[float, float]]:
    """The district's centre, then a point inside each of its busiest grids."""
    centre = conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM admin_unit "
        "WHERE level = 1 ORDER BY area_km2 DESC LIMIT 1) s").fetchone()
    busiest = conn.execute(
        "SELECT ST_X(ST_PointOnSurface(a.geom)), ST_Y(ST_PointOnSurface(a.geom)) "
        f"FROM (SELECT r.unit_code, {agg.TOTAL.summed()} AS n FROM {agg.UNIT_DAY.name} r "
        "WHERE r.level = 4 "
        "GROUP BY 1 ORDER BY 2 DESC LIMIT %s) r JOIN admin_unit a ON a.code = r.unit_code "
        "ORDER BY r.n DESC", (BUSIEST_GRIDS,)).fetchall()
    return [centre, *busiest]


def pick_tiles(conn) -> dict[int, list[tuple[int, int]]]:
    """Per zoom, up to ``TILES_PER_ZOOM`` distinct tiles under ``places`` that hold cases."""
    points = places(conn)
    chosen = {}
    for z in ZOOMS:
        found: list[tuple[int, int]] = []
        for lon, lat in points:
            xy = tile_of(lon, lat, z)
            if xy not in found and _holds_cases(conn, z, *xy):
                found.append(xy)
        chosen[z] = found[:TILES_PER_ZOOM]
    return chosen


def _holds_cases(conn, z: int, x: int, y: int) -> bool:
    return conn.execute(
        "SELECT EXISTS (SELECT 1 FROM case_event WHERE geom && "
        "ST_Transform(ST_TileEnvelope(%s, %s, %s), 4326))", (z, x, y)).fetchone()[0]


# -- measuring -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Server:
    """Where a server's tiles are: its port, its tile path and the headers it wants."""

    port: int
    path: Callable[[int, int, int], str]
    headers: dict


def fetch(server: Server, z: int, x: int, y: int) -> tuple[float, bytes]:
    """One tile: milliseconds from the request to the last byte of the body, and the body."""
    path = server.path(z, x, y)
    started = time.perf_counter()
    status, body = get(server.port, path, server.headers)
    elapsed = (time.perf_counter() - started) * 1000
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
    return elapsed, body


def measure(servers: dict[str, Server], tiles: dict[int, list[tuple[int, int]]]):
    """Times (ms) per server and zoom over ``ROUNDS`` interleaved rounds, and each tile's body
    (from the warm-up pass)."""
    bodies = {name: {} for name in servers}
    for z, xys in tiles.items():  # warm-up: every tile once from each server
        for x, y in xys:
            for name, server in servers.items():
                bodies[name][(z, x, y)] = fetch(server, z, x, y)[1]
    times = {name: {z: [] for z in tiles} for name in servers}
    order = list(servers)
    for round_ in range(ROUNDS):
        for z, xys in tiles.items():
            for x, y in xys:
                for name in order if round_ % 2 == 0 else reversed(order):
                    times[name][z].append(fetch(servers[name], z, x, y)[0])
        print(f"round {round_ + 1}/{ROUNDS} done", flush=True)
    return times, bodies


def feature_count(body: bytes) -> int | None:
    """Features in a tile (all layers), when mapbox-vector-tile is installed."""
    try:
        import mapbox_vector_tile
    except ImportError:
        return None
    return sum(len(layer["features"]) for layer in mapbox_vector_tile.decode(body).values())


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(round(0.95 * len(values))) - 1)]


def zoom_metrics(z: int, times: dict, bodies: dict, xys: list) -> list[dict]:
    ours, theirs = times["onemap"][z], times["tipg"][z]
    name = f"z{z} ({len(xys)} tiles x {ROUNDS})"
    p50_o, p50_t, p95_o, p95_t = (statistics.median(ours), statistics.median(theirs),
                                  p95(ours), p95(theirs))
    size = {s: statistics.mean(len(bodies[s][(z, x, y)]) for x, y in xys) / 1024
            for s in bodies}
    count = {s: [feature_count(bodies[s][(z, x, y)]) for x, y in xys] for s in bodies}
    mean_count = {s: statistics.mean(c) if None not in c else None for s, c in count.items()}
    return [
        metric(f"{name}: onemap p50", p50_o, "ms", "tipg p50", p50_t, p50_t / p50_o),
        metric(f"{name}: onemap p95", p95_o, "ms", "tipg p95", p95_t, p95_t / p95_o,
               "ratio >= 1 (no slower than tipg)", p95_t / p95_o >= 1),
        metric(f"{name}: onemap mean tile size", size["onemap"], "KB", "tipg mean tile size",
               size["tipg"], size["tipg"] / size["onemap"] if size["onemap"] else None),
        metric(f"{name}: onemap mean features per tile", mean_count["onemap"], "features",
               "tipg mean features per tile", mean_count["tipg"]),
    ]


def main() -> None:
    if find_spec("tipg") is None or find_spec("uvicorn") is None:
        raise SystemExit("bench_tiles needs tipg and uvicorn: pip install -e '.[bench]'")
    url = with_database(server_url(), os.environ.get("BENCH_TILES_DB", "onemap_bench_city_l"))
    with psycopg.connect(url) as conn:
        cases = conn.execute("SELECT count(*) FROM case_event").fetchone()[0]
        tiles = pick_tiles(conn)
    print("tiles:", {z: len(xys) for z, xys in tiles.items()}, flush=True)
    token = kiosk_token(url)
    servers = {"onemap": Server(free_port(), onemap_path, {"Authorization": f"Bearer {token}"}),
               "tipg": Server(free_port(), tipg_path, {})}
    with onemap_server(url, servers["onemap"].port), tipg_server(url, servers["tipg"].port):
        times, bodies = measure(servers, tiles)
    metrics = [m for z, xys in tiles.items() if xys
               for m in zoom_metrics(z, times, bodies, xys)]
    print_table(metrics)
    extra = {"cases": cases, "rounds": ROUNDS, "tipg": version("tipg"),
             "tiles": {str(z): [f"{z}/{x}/{y}" for x, y in xys] for z, xys in tiles.items()}}
    print(write_results("tiles", metrics, url, extra))


if __name__ == "__main__":
    main()

"""The dashboard in headless Chromium at a loaded city (default: the M city kept by
``BENCH_KEEP=1 BENCH_SIZES=M python -m bench.bench_city``): time to first map paint, and
click-to-updated-map for a drill-down and a filter change, with the bytes each update sent.

Run: ``python -m bench.bench_browser`` (``BENCH_BROWSER_DB`` names another database).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
import urllib.request

import psycopg

from bench.common import metric, print_table, server_url, with_database, write_results
from onemap.cluster import free_port

REPEAT = 3
# The layers switched on while measuring: the page's default (BENCH_LAYERS overrides).
LAYERS = os.environ.get("BENCH_LAYERS", "units,hotspots")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
MAP_READY = """() => { const gd = document.querySelector('#map-box .js-plotly-plot');
    if (!gd || !gd._fullLayout || !gd._fullLayout.map) return null;
    const m = gd._fullLayout.map._subplot.map;
    const view = (gd.closest('[id]') || {}).id || '';
    return m.loaded() && !m.isMoving() ? view : null; }"""


def serve(url: str) -> tuple[subprocess.Popen, str]:
    port = free_port(18700)
    proc = subprocess.Popen([sys.executable, "-m", "onemap.cli", "serve", "--port", str(port),
                             "--no-debug"], env={**os.environ, "DATABASE_URL": url},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=2)
            return proc, base
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("the dashboard did not start")


def street_point(url: str) -> tuple[str, float, float]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) AS p, "
            "area_km2 FROM admin_unit WHERE level = 2) q ORDER BY area_km2 DESC LIMIT 1"
        ).fetchone()


class Session:
    """One browser page that counts the bytes of Dash's update responses."""

    def __init__(self, browser, base: str):
        self.page = browser.new_page(viewport={"width": 1440, "height": 900})
        self.base, self.bytes = base, 0
        self.page.on("response", self._count)

    def _count(self, response) -> None:
        if "_dash-update-component" in response.url:
            with contextlib.suppress(Exception):  # a response gone with its page has no body
                self.bytes += len(response.body())

    def ready(self, previous: str | None = None) -> str:
        handle = self.page.wait_for_function(
            f"prev => {{ const r = ({MAP_READY})(); return r && r !== prev ? r : null; }}",
            arg=previous, timeout=60_000, polling=50)
        return handle.json_value()

    def first_paint(self, query: str) -> float:
        self.page.goto(self.base + "/" + query, wait_until="commit")
        self.ready()
        return self.page.evaluate("() => performance.now()") / 1000

    def update(self, action) -> tuple[float, int]:
        """Seconds from the (last) action to the redrawn map, and the bytes it took."""
        before, self.bytes = self.ready(), 0
        search = self.page.evaluate("() => location.search")
        for _ in range(10):  # the map takes clicks once MapLibre is ready
            started = time.perf_counter()
            action()
            try:
                self.page.wait_for_function("s => location.search !== s", arg=search,
                                            timeout=2_000)
                break
            except Exception:  # noqa: BLE001 - not taken yet: act again
                self.bytes = 0
        self.ready(before)
        return time.perf_counter() - started, self.bytes


def click_map(page, lon: float, lat: float) -> None:
    x, y = page.evaluate("""([lon, lat]) => {
        const gd = document.querySelector('#map-box .js-plotly-plot');
        const m = gd._fullLayout.map._subplot.map; const p = m.project([lon, lat]);
        const r = m.getCanvas().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }""",
                         [lon, lat])
    page.mouse.move(x, y)
    page.wait_for_timeout(200)
    page.mouse.click(x, y)


def main() -> None:
    from playwright.sync_api import sync_playwright

    url = with_database(server_url(), os.environ.get("BENCH_BROWSER_DB", "onemap_bench_city_m"))
    code, lon, lat = street_point(url)
    proc, base = serve(url)
    paints, drills, filters = [], [], []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            for _ in range(REPEAT):
                session = Session(browser, base)
                paints.append(session.first_paint(f"?layers={LAYERS}"))
                session.page.wait_for_timeout(500)
                drills.append(session.update(lambda s=session: click_map(s.page, lon, lat)))
                filters.append(session.update(
                    lambda s=session: s.page.get_by_label("已办结").check()))
                session.page.close()
            browser.close()
    finally:
        proc.terminate()
    metrics = [metric("first map paint (median)", statistics.median(paints), "s",
                      target="< 3 s", met=statistics.median(paints) < 3)]
    for name, runs in (("drill-down", drills), ("filter change", filters)):
        seconds = statistics.median(r[0] for r in runs)
        kilobytes = max(r[1] for r in runs) / 1024
        metrics += [metric(f"{name}: click to updated map (median)", seconds, "s",
                           target="< 1 s", met=seconds < 1),
                    metric(f"{name}: bytes sent (largest)", kilobytes, "KB",
                           target="< 1024 KB", met=kilobytes < 1024)]
    print_table(metrics)
    print(write_results("browser", metrics, url, {"street": code, "repeat": REPEAT,
                                                  "layers": LAYERS}))


if __name__ == "__main__":
    main()

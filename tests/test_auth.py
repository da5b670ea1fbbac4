"""Attacks on signing in and on sessions, each against a real server on real PostGIS:
parallel password guesses, sessions that outlive sign-out, a new password, a new kiosk
token or a disabled account, kiosk tokens in logs, cross-site requests, open redirects,
malformed names, answers while the database is down, security headers, and what a
password costs (argon2id, once per client rather than once per request)."""

from __future__ import annotations

import base64
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib

import psycopg
import pytest
from conftest import (
    PASSWORD,
    DashServer,
    bluish_share,
    ensure_user,
    screenshot,
    sql_rows,
    unused_port,
)
from test_etl_bad_files import CASES_MAPPING, build_hierarchy
from test_etl_kill import cases_frame

from etl.load import load
from onemap.accounts import set_disabled, set_password
from onemap.cluster import LocalCluster
from onemap.database import make_engine
from onemap.errors import OnemapError
from onemap.migrate import migrate
from onemap.settings import PROJECT_ROOT, get_settings

pytestmark = pytest.mark.db

GUESSES = 24
CASES = 300


@pytest.fixture(scope="module")
def district(fresh_db, tmp_path_factory) -> str:
    """A small district (2 streets, 8 grids, 300 cases) loaded through the ETL."""
    url = fresh_db()
    folder = tmp_path_factory.mktemp("district")
    area = build_hierarchy(url, folder / "hierarchy")
    cases_frame(area, CASES).to_csv(folder / "cases.csv", index=False)
    (folder / "cases.yaml").write_text(CASES_MAPPING, encoding="utf-8")
    report = load(url, "cases", [folder / "cases.csv"], folder / "cases.yaml")
    assert report.status == "committed"
    return url


@pytest.fixture(scope="module")
def site(district):
    """The development server on the district, with an analyst, a granted analyst and a
    kiosk."""
    ensure_user(district, "ann", "analyst")
    ensure_user(district, "granted", "analyst", grant=True)
    server = DashServer(district)
    server.kiosk = ensure_user(district, "wall", "kiosk")
    yield server
    server.stop()


def request(url: str, method: str = "GET", data: dict | None = None, headers=None,
            user: str | None = None, password: str = PASSWORD):
    """(status, headers, body) without following redirects; ``user`` signs in by Basic."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    sent = dict(headers or {})
    if user is not None:
        sent["Authorization"] = "Basic " + base64.b64encode(
            f"{user}:{password}".encode()).decode()
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, body, sent, method=method),
                         timeout=60) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def session_cookie(site, name: str, password: str = PASSWORD) -> str:
    """The session cookie of a fresh sign-in through the form."""
    status, headers, _ = request(site.url + "/login", "POST",
                                 {"name": name, "password": password, "next": "/"})
    assert status == 302, f"sign-in as {name}: {status}"
    return cookie_of(headers)


def cookie_of(headers) -> str:
    found = re.search(r"onemap_session=([^;]+)", headers.get("Set-Cookie", ""))
    assert found, headers
    return found[1]


def with_cookie(site, path: str, cookie: str, **headers):
    return request(site.url + path, headers={"Cookie": f"onemap_session={cookie}", **headers})


# -- 16.5: parallel guesses ------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["dev", "prod"])
def test_parallel_guesses_check_at_most_three_passwords(district, serve, mode):
    """24 wrong passwords sent at once: at most 3 are checked (401), the rest are told to
    wait (429), and the failure count holds exactly the checks made. Before, the row that
    throttles did not exist until the first failure was written, so 13 guesses (8 under
    --prod) were checked."""
    server = serve(district, *(["--prod", "--workers", "2"] if mode == "prod" else []))
    ensure_user(district, "victim", "analyst")
    start = threading.Barrier(GUESSES)
    answers: list[tuple[int, float]] = []  # (status, seconds after the burst began)

    def guess(i: int) -> None:
        start.wait()
        status = request(server.url + "/login", "POST",
                         {"name": "victim", "password": f"guess-{i}"})[0]
        answers.append((status, time.monotonic() - began))

    began = time.monotonic()
    threads = [threading.Thread(target=guess, args=(i,)) for i in range(GUESSES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    statuses = [status for status, _ in answers]
    assert len(statuses) == GUESSES and set(statuses) <= {401, 429}, statuses
    checked = sorted(at for status, at in answers if status == 401)
    counted = sql_rows(district, "SELECT failures FROM login_failure WHERE name = 'victim'")[0][0]
    assert counted == len(checked)
    assert len(checked) >= 3
    # After the 3rd failure the name waits 1 s, after the 4th 2 s, …: on a slow machine a
    # burst lasting that long may earn a 4th check, answered 1 s or more after the burst
    # began, a 5th 3 s or more after, and so on; never one sooner.
    for k, at in enumerate(checked[3:], start=4):
        assert at >= 2 ** (k - 3) - 1, f"check {k} of {len(checked)} answered at {at:.2f} s"


# -- 16.21: hashing cost --------------------------------------------------------------------
def test_basic_clients_hash_once_and_write_nothing(district, monkeypatch):
    """Twenty tile requests of a QGIS-like client with HTTP Basic: the password is hashed
    once, not twenty times, and no statement writes to the throttling table (a trigger in
    the test database counts them). The app runs in this process so that the real
    verification can be counted."""
    from dashboard.app import create_app
    from onemap import accounts

    ensure_user(district, "qgis", "analyst")
    with psycopg.connect(district) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS throttle_writes (n integer)")
        conn.execute("DELETE FROM throttle_writes")
        conn.execute("CREATE OR REPLACE FUNCTION count_throttle_write() RETURNS trigger "
                     "LANGUAGE plpgsql AS $$ BEGIN INSERT INTO throttle_writes VALUES (1); "
                     "RETURN NULL; END $$")
        conn.execute("CREATE OR REPLACE TRIGGER throttle_writes AFTER INSERT OR UPDATE OR "
                     "DELETE ON login_failure FOR EACH STATEMENT "
                     "EXECUTE FUNCTION count_throttle_write()")
    checks: list[str] = []
    real = accounts.verify_password

    def counted(password, stored):
        checks.append(stored)
        return real(password, stored)

    monkeypatch.setattr(accounts, "verify_password", counted)
    app = create_app(get_settings(), district)
    client = app.server.test_client()
    token = base64.b64encode(f"qgis:{PASSWORD}".encode()).decode()
    answers = [client.get(f"/collections/cases/items?limit=5&offset={5 * i}",
                          headers={"Authorization": f"Basic {token}"}).status_code
               for i in range(20)]
    assert answers == [200] * 20
    assert len(checks) == 1
    assert sql_rows(district, "SELECT count(*) FROM throttle_writes")[0][0] == 0
    wrong = base64.b64encode(b"qgis:not-the-password").decode()
    assert client.get("/api/kpi", headers={"Authorization": f"Basic {wrong}"}
                      ).status_code == 401
    assert len(checks) == 2  # a wrong password is always checked …
    assert sql_rows(district, "SELECT count(*) FROM throttle_writes")[0][0] > 0  # … and counted
    assert sql_rows(district, "SELECT failures FROM login_failure WHERE name = 'qgis'") == [(1,)]
    set_password(make_engine(district), "qgis", "a brand new password")
    assert client.get("/api/kpi", headers={"Authorization": f"Basic {token}"}
                      ).status_code == 401  # the cached credentials die with the password
    app.server.extensions["onemap"].engine.dispose()


# -- 16.6: sessions end when they should ----------------------------------------------------
def cookie_payload(cookie: str) -> dict:
    """What a Flask session cookie says (signed, not encrypted: anyone can read it)."""
    compressed = cookie.startswith(".")
    data = cookie.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    return json.loads(zlib.decompress(raw) if compressed else raw)


def test_the_cookie_holds_only_a_random_session_id(site, district):
    cookie = session_cookie(site, "ann")
    payload = cookie_payload(cookie)
    assert set(payload) <= {"sid", "_permanent"} and len(payload["sid"]) >= 40
    assert "ann" not in json.dumps(payload) and "analyst" not in json.dumps(payload)
    stored = sql_rows(district, "SELECT id_hash FROM app_session WHERE user_name = 'ann'")
    assert payload["sid"] not in {row[0] for row in stored}  # only its hash is kept


def test_sign_out_ends_the_session(site):
    cookie = session_cookie(site, "ann")
    assert with_cookie(site, "/api/kpi", cookie)[0] == 200
    status, _, _ = with_cookie(site, "/logout", cookie)
    assert status == 302
    assert with_cookie(site, "/api/kpi", cookie)[0] == 401  # the old cookie, replayed


def test_a_new_password_ends_every_session(site, district):
    ensure_user(district, "changer", "analyst")
    cookies = [session_cookie(site, "changer") for _ in range(2)]
    assert [with_cookie(site, "/api/kpi", c)[0] for c in cookies] == [200, 200]
    changed = subprocess.run(
        [sys.executable, "-m", "onemap.cli", "user", "passwd", "changer", "--password-stdin"],
        input="another password\n", capture_output=True, text=True, timeout=120,
        env={**os.environ, "DATABASE_URL": district})
    assert changed.returncode == 0, changed.stderr
    assert [with_cookie(site, "/api/kpi", c)[0] for c in cookies] == [401, 401]
    assert session_cookie(site, "changer", "another password")


def test_a_new_kiosk_token_ends_the_screens_sessions(site, district):
    token = ensure_user(district, "screen", "kiosk")
    status, headers, _ = request(f"{site.url}/bigscreen?kiosk={token}")
    assert status == 302 and "kiosk" not in headers["Location"]
    cookie = cookie_of(headers)
    assert with_cookie(site, "/api/kpi", cookie)[0] == 200
    fresh = set_password(make_engine(district), "screen")
    assert with_cookie(site, "/api/kpi", cookie)[0] == 401
    old = request(site.url + "/api/kpi", headers={"Authorization": f"Bearer {token}"})
    assert old[0] == 401
    assert request(site.url + "/api/kpi", headers={"Authorization": f"Bearer {fresh}"}
                   )[0] == 200


def test_disabling_ends_the_session_and_enabling_does_not_revive_it(site, district):
    ensure_user(district, "leaver2", "analyst")
    cookie = session_cookie(site, "leaver2")
    assert with_cookie(site, "/api/kpi", cookie)[0] == 200
    engine = make_engine(district)
    set_disabled(engine, "leaver2")
    assert with_cookie(site, "/api/kpi", cookie)[0] == 401
    set_disabled(engine, "leaver2", False)
    assert with_cookie(site, "/api/kpi", cookie)[0] == 401  # a new sign-in is needed
    engine.dispose()


# -- 16.7: kiosk tokens in logs --------------------------------------------------------------
@pytest.mark.parametrize("mode", ["dev", "prod"])
def test_kiosk_tokens_never_reach_the_logs(district, serve, mode):
    args = ["--prod", "--workers", "1", "--access-log"] if mode == "prod" else []
    server = serve(district, *args)
    token = ensure_user(district, "logged-wall", "kiosk")
    status, headers, _ = request(f"{server.url}/bigscreen?kiosk={token}&refresh=30")
    assert status == 302 and headers["Location"] == "/bigscreen?refresh=30"
    assert request(f"{server.url}/bigscreen?kiosk=not-{token}")[0] == 401
    deadline = time.monotonic() + 10
    while "/bigscreen?kiosk=" not in server.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)  # the access log is written after the answer
    log = server.log.read_text()
    assert "GET /bigscreen?kiosk=[redacted]&refresh=30" in log  # the request is logged …
    assert token not in log  # … its token is not
    assert "kiosk=[redacted]" in log


# -- 16.8: requests from another site -------------------------------------------------------
class EvilSite:
    """Pages of another site (http://localhost:PORT, cross-site to 127.0.0.1)."""

    def __init__(self, pages: dict[str, str]):
        served = pages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the standard library's name)
                body = served.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", unused_port()), Handler)
        self.url = f"http://localhost:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_login_csrf_from_another_site_is_refused(site, district, browser):
    """A page of another site posts the attacker's credentials to the sign-in form: the
    victim's browser must not end up signed in as the attacker."""
    ensure_user(district, "attacker", "analyst")
    evil = EvilSite({"/": f"""<form id="f" method="post" action="{site.url}/login">
        <input name="name" value="attacker"><input name="password" value="{PASSWORD}">
        <input name="next" value="/"></form><script>document.forms.f.submit()</script>"""})
    context = browser.new_context()
    page = context.new_page()
    try:
        with page.expect_response(lambda r: r.url.startswith(site.url + "/login")) as posted:
            page.goto(evil.url + "/")
        assert posted.value.status == 403
        assert page.request.get(site.url + "/api/kpi").status == 401  # not signed in
        assert not [c for c in context.cookies() if c["name"] == "onemap_session"
                    and cookie_payload(c["value"]).get("sid")]
        screenshot(page, "csrf-login-refused")
    finally:
        context.close()
        evil.close()


def test_cross_site_navigation_to_a_personal_export_is_refused(site, district, browser):
    """A signed-in analyst with the personal grant follows a link on another site to an
    export with personal fields: refused, and nothing is exported or audited."""
    link = f"{site.url}/export/cases.csv?range=all&personal=1"
    evil = EvilSite({"/": f'<a id="go" href="{link}">cute cats</a>'})
    context = browser.new_context()
    page = context.new_page()
    audited = "SELECT count(*) FROM audit_log WHERE user_name = 'granted' AND action = 'export'"
    before = sql_rows(district, audited)[0][0]
    try:
        site.login(page, "granted")
        page.goto(evil.url + "/")
        with page.expect_response(lambda r: r.url.startswith(site.url + "/export/")) as got:
            page.click("#go")
        assert got.value.status == 403
        assert sql_rows(district, audited)[0][0] == before
        # The same export asked for from the dashboard itself is served.
        answer = page.request.get(link, headers={"Sec-Fetch-Site": "same-origin"})
        assert answer.status == 200 and answer.headers["cache-control"] == "no-store"
        assert sql_rows(district, audited)[0][0] == before + 1
    finally:
        context.close()
        evil.close()


@pytest.mark.parametrize("method, path, headers", [
    ("POST", "/login", {"Sec-Fetch-Site": "cross-site"}),
    ("POST", "/login", {"Origin": "http://evil.example"}),
    ("POST", "/login", {"Origin": "null"}),
    ("GET", "/export/cases.csv?personal=1", {"Sec-Fetch-Site": "cross-site"}),
    ("GET", "/export/cases.csv", {"Sec-Fetch-Site": "same-site"}),
    ("GET", "/logout", {"Sec-Fetch-Site": "cross-site"}),
    ("POST", "/_dash-update-component", {"Origin": "http://evil.example"}),
])
def test_cross_site_writes_are_refused(site, method, path, headers):
    cookie = session_cookie(site, "granted")
    data = {"name": "granted", "password": PASSWORD} if path == "/login" else {}
    status, _, body = request(site.url + path, method, data if method == "POST" else None,
                              {"Cookie": f"onemap_session={cookie}", **headers})
    assert status == 403 and b"another site" in body
    assert with_cookie(site, "/api/kpi", cookie)[0] == 200  # still signed in


def test_same_site_requests_still_work(site):
    same = {"Sec-Fetch-Site": "same-origin", "Origin": site.url}
    status, headers, _ = request(site.url + "/login", "POST",
                                 {"name": "ann", "password": PASSWORD, "next": "/"}, same)
    assert status == 302
    assert with_cookie(site, "/export/cases.csv?range=all", cookie_of(headers),
                       **{"Sec-Fetch-Site": "same-origin"})[0] == 200


# -- 16.9: where sign-in sends the browser ---------------------------------------------------
@pytest.mark.parametrize("target", [
    "/\t/evil.example", "/\n/x", "/\r\n/x", "//evil.example", "/\\evil.example",
    "/\\/evil.example", "http://evil.example/", "https:evil.example", "javascript:alert(1)",
    " //evil.example", "/ /evil.example", "", "evil.example",
])
def test_next_is_only_a_local_path(site, target):
    status, headers, _ = request(site.url + "/login", "POST",
                                 {"name": "ann", "password": PASSWORD, "next": target})
    assert status == 302 and headers["Location"] == "/"


def test_a_local_next_is_kept(site):
    status, headers, _ = request(site.url + "/login", "POST", {
        "name": "ann", "password": PASSWORD, "next": "/bigscreen?lang=en&tour=30"})
    assert status == 302 and headers["Location"] == "/bigscreen?lang=en&tour=30"


# -- 16.10: malformed names ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ann\x00", "\x00", "a" * 3000, "a" * 1000, "nobody\n"])
def test_malformed_names_are_refused_not_stored(site, district, name):
    status, headers, body = request(site.url + "/api/kpi", user=name)
    assert status == 401 and headers["WWW-Authenticate"]
    status, _, body = request(site.url + "/login?lang=en", "POST",
                              {"name": name, "password": "whatever-it-is"})
    assert status == 401 and b"Wrong user name or password" in body
    longest = sql_rows(district, "SELECT coalesce(max(length(name)), 0) FROM login_failure")[0][0]
    assert longest <= 64


def test_failure_rows_are_bounded_by_the_schema(district):
    with pytest.raises(psycopg.errors.CheckViolation):
        sql_rows(district, "INSERT INTO login_failure VALUES (%s, 1, now()) RETURNING 1", "a" * 65)


# -- 16.14 and 16.6: when the database cannot say who is asking -----------------------------
@pytest.fixture
def stoppable(serve, tmp_path):
    """A server on a private cluster of our own, which the test may stop and start."""
    home = PROJECT_ROOT / ".onemap" / "test-clusters" / f"auth-{uuid.uuid4().hex[:8]}"
    cluster = LocalCluster(get_settings(home=home, pg_port=55600, database_url=None))
    try:
        cluster.up()
        migrate(cluster.url())
        build_hierarchy(cluster.url(), tmp_path / "hierarchy")
    except (OnemapError, psycopg.Error) as exc:
        cluster.down()
        shutil.rmtree(home, ignore_errors=True)
        pytest.fail(f"a private cluster ({exc})")
    ensure_user(cluster.url(), "ann", "analyst")
    server = serve(cluster.url(), ONEMAP_REFRESH_SECONDS="2")
    server.kiosk = ensure_user(cluster.url(), "wall", "kiosk")
    yield cluster, server
    cluster.down()
    shutil.rmtree(home, ignore_errors=True)


def test_every_way_in_answers_503_while_the_database_is_down(stoppable, page):
    cluster, server = stoppable
    cookie = session_cookie(server, "ann")
    kiosk_cookie = cookie_of(request(f"{server.url}/bigscreen?kiosk={server.kiosk}")[1])
    server.login(page, "ann")
    page.goto(server.url + "/")
    page.wait_for_selector("#kpi-total", timeout=30_000)
    cluster.down()
    html = {"Accept": "text/html"}
    answers = {
        "basic": request(server.url + "/api/kpi", user="ann"),
        "bearer": request(server.url + "/api/kpi",
                          headers={"Authorization": f"Bearer {server.kiosk}"}),
        "kiosk url": request(f"{server.url}/bigscreen?kiosk={server.kiosk}", headers=html),
        "kiosk cookie": with_cookie(server, "/bigscreen", kiosk_cookie, **html),
        "cookie api": with_cookie(server, "/api/kpi", cookie),
        "cookie page": with_cookie(server, "/", cookie, **html),
        "sign-in form": request(server.url + "/login", "POST",
                                {"name": "ann", "password": PASSWORD}),
    }
    for way, (status, headers, body) in answers.items():
        assert status == 503 and int(headers["Retry-After"]) > 0, (way, status, body[:200])
        assert b"Traceback" not in body
    assert "数据库不可用" in answers["cookie page"][2].decode()
    # The open page's callbacks get only the banner: it says why nothing updates.
    page.wait_for_selector("#db-down", timeout=30_000)
    assert "数据库不可用" in page.inner_text("#banner")
    screenshot(page, "auth-db-down-banner")
    cluster.up()
    page.wait_for_selector("#db-down", state="detached", timeout=60_000)
    assert with_cookie(server, "/api/kpi", cookie)[0] == 200
    assert request(server.url + "/api/kpi", user="ann")[0] == 200


# -- 16.20: headers ---------------------------------------------------------------------------
def test_security_headers(site):
    cookie = session_cookie(site, "granted")
    status, headers, _ = with_cookie(site, "/", cookie, Accept="text/html")
    assert status == 200
    policy = dict(part.strip().split(" ", 1) for part in
                  headers["Content-Security-Policy"].split(";"))
    scripts = policy["script-src"].split()
    assert scripts[0] == "'self'" and all(s.startswith("'sha256-") for s in scripts[1:])
    assert len(scripts) > 1  # Dash's inline scripts are allowed by hash, no others
    assert policy["frame-ancestors"] == "'none'" and headers["X-Frame-Options"] == "DENY"
    assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/api/kpi", "/collections/cases/items?limit=2",
                 "/export/cases.csv?range=all&personal=1"):
        status, headers, _ = with_cookie(site, path, cookie)
        assert status == 200 and headers["Cache-Control"] == "no-store", path
        assert headers["X-Content-Type-Options"] == "nosniff"


def test_the_kiosk_is_framed_only_where_configured(district, serve):
    portal = "https://portal.example.gov.cn"
    server = serve(district, ONEMAP_FRAME_ANCESTORS=portal)
    token = ensure_user(district, "framed-wall", "kiosk")
    cookie = cookie_of(request(f"{server.url}/bigscreen?kiosk={token}")[1])
    _, headers, _ = with_cookie(server, "/bigscreen", cookie, Accept="text/html")
    assert f"frame-ancestors {portal}" in headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in headers
    _, headers, _ = with_cookie(server, "/", cookie, Accept="text/html")
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_links_come_from_the_public_url_not_the_host_header(site, district, serve):
    status, _, body = request(site.url + "/collections", user="ann",
                              headers={"Host": "evil.example"})
    assert status == 200 and b"evil.example" not in body
    hrefs = [link["href"] for link in json.loads(body)["links"]]
    assert hrefs and all(h.startswith(site.url + "/") for h in hrefs)
    public = "https://onemap.example.gov.cn/map"
    server = serve(district, ONEMAP_PUBLIC_URL=public)
    status, _, body = request(server.url + "/collections/cases/items?limit=1", user="ann",
                              headers={"Host": "evil.example"})
    hrefs = [link["href"] for link in json.loads(body)["links"]]
    assert status == 200 and hrefs and all(h.startswith(public + "/") for h in hrefs)


def test_the_dashboard_runs_under_its_policy(site, page):
    """The main page and the big screen draw their maps with no CSP violation (each one
    is recorded by the page itself)."""
    page.add_init_script("window.__violations = []; document.addEventListener("
                         "'securitypolicyviolation', e => window.__violations.push("
                         "e.violatedDirective + ' ' + e.blockedURI))")
    site.login(page, "granted")
    page.goto(site.url + "/?range=all")
    page.wait_for_function("() => document.querySelector('#map-box .js-plotly-plot')"
                           "?._fullData?.[0]?.locations?.length > 0", timeout=30_000)
    assert map_painted(page, "#map-box") > 0.2, screenshot(page, "auth-csp-main")
    screenshot(page, "auth-csp-main")
    assert page.evaluate("window.__violations") == []
    page.goto(site.url + "/bigscreen?tour=off")
    page.wait_for_selector("#bs-kpi-cards .card", timeout=30_000)
    page.wait_for_function("() => document.querySelector('#bs-map .js-plotly-plot')"
                           "?._fullData?.[0]?.locations?.length > 0", timeout=30_000)
    page.wait_for_timeout(2000)  # MapLibre paints a moment after plotly has the units
    screenshot(page, "auth-csp-bigscreen")
    assert page.evaluate("window.__violations") == [] and page.errors == []


def map_painted(page, selector: str, seconds: float = 20) -> float:
    """The share of bluish pixels of the map once MapLibre has painted the units (the
    colour bar alone is far less than a fifth of the box)."""
    deadline = time.monotonic() + seconds
    share = 0.0
    while time.monotonic() < deadline and share <= 0.2:
        page.wait_for_timeout(500)
        share = bluish_share(page.locator(selector).screenshot())
    return share

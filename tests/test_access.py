"""Access control on real PostGIS and a real server: users and sign-in, a street official's
scope on every path (API, items, single features, tiles, exports, hot spots, the
dashboard's callbacks), personal fields masked in every output format, kiosks read-only."""

from __future__ import annotations

import io
import json
import math
import re
import urllib.error
import zipfile

import geopandas as gpd
import mapbox_vector_tile
import pandas as pd
import psycopg
import pytest
from conftest import PASSWORD, DashServer, bluish_share, ensure_user, screenshot
from openpyxl import load_workbook

from layers.access import scope_for
from layers.errors import Forbidden, NotFound
from layers.view import case_detail
from onemap.accounts import (
    AccountError,
    LoginRefused,
    add_user,
    authenticate,
    hash_password,
    list_users,
    set_disabled,
    set_password,
    verify_password,
)
from onemap.database import make_engine
from onemap.principal import Principal

DISTRICT = "440310"
MASKED_NAME = re.compile(r"^.\*+$")
MASKED_PHONE = re.compile(r"^\d{3}\*{4}\d{4}$")
FORMATS = ("geojson", "gpkg", "shp", "csv", "xlsx", "html")
ZONE = "Asia/Shanghai"


def sql(url: str, query: str, *args):
    with psycopg.connect(url) as conn:
        return conn.execute(query, args).fetchall()


def streets(url: str) -> list[str]:
    return [r[0] for r in sql(url, "SELECT code FROM admin_unit WHERE level = 2 ORDER BY "
                                   "area_km2 DESC")]


@pytest.fixture(scope="module")
def area(city_db):
    """The street an official is limited to, another street, and a grid of the other."""
    own, other = streets(city_db)[:2]
    grid = sql(city_db, "SELECT grid_code FROM case_event WHERE street_code = %s "
                        "AND grid_code IS NOT NULL LIMIT 1", other)[0][0]
    return {"own": own, "other": other, "other_grid": grid}


@pytest.fixture(scope="module")
def site(city_db, area):
    """One server on the demo city with a user of every kind."""
    ensure_user(city_db, "official", "street_official", area["own"])
    ensure_user(city_db, "analyst", "analyst")
    ensure_user(city_db, "granted", "analyst", grant=True)
    ensure_user(city_db, "centre", "command_center")
    server = DashServer(city_db)
    server.kiosk = ensure_user(city_db, "kiosk1", "kiosk")
    yield server
    server.stop()


def get(site, path: str, user: str = "official", **headers):
    """(status, body bytes) of a GET as ``user`` over HTTP Basic."""
    try:
        answer = site.open(path, user, PASSWORD, headers)
        return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def count(url: str, where: str, *args) -> int:
    return sql(url, f"SELECT count(*) FROM case_event WHERE {where}", *args)[0][0]


# -- accounts -----------------------------------------------------------------------------
def test_password_hashes_are_salted_argon2id_at_owasp_parameters():
    one, two = hash_password("s3cret-pass"), hash_password("s3cret-pass")
    # OWASP's Password Storage Cheat Sheet: argon2id, 19 MiB, 2 iterations, 1 lane.
    assert one != two and one.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password("s3cret-pass", one) and not verify_password("s3cret-pasS", one)
    assert not verify_password("anything", None) and not verify_password("x", "garbage")


def legacy_scrypt(password: str) -> str:
    """A hash as stored before argon2id: scrypt at N=2^14, r=8, p=1."""
    import base64
    import hashlib
    import os

    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return "scrypt$16384$8$1$" + "$".join(base64.b64encode(x).decode() for x in (salt, digest))


def test_old_hashes_are_replaced_at_sign_in(pg_url):
    """A user whose password was stored as scrypt signs in; the stored hash becomes
    argon2id and the same password still works (a wrong one does not)."""
    engine = make_engine(pg_url)
    add_user(engine, "old-timer", "analyst", password="an old password")
    sql(pg_url, "UPDATE app_user SET password_hash = %s WHERE name = 'old-timer' RETURNING 1",
        legacy_scrypt("an old password"))
    assert authenticate(engine, "old-timer", "an old password").name == "old-timer"
    stored = sql(pg_url, "SELECT password_hash FROM app_user WHERE name = 'old-timer'")[0][0]
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert authenticate(engine, "old-timer", "an old password").name == "old-timer"
    with pytest.raises(LoginRefused):
        authenticate(engine, "old-timer", "not the password")
    engine.dispose()


def test_users_are_managed_and_failures_slow_sign_in_down(pg_url):
    engine = make_engine(pg_url)
    add_user(engine, "ann", "analyst", password="long enough")
    with pytest.raises(AccountError, match="exists already"):
        add_user(engine, "ann", "analyst", password="long enough")
    with pytest.raises(AccountError, match="at least 8"):
        add_user(engine, "bob", "analyst", password="short")
    with pytest.raises(AccountError, match="needs --scope"):
        add_user(engine, "bob", "street_official", password="long enough")
    with pytest.raises(AccountError, match="not a loaded admin unit"):
        add_user(engine, "bob", "street_official", "nowhere", password="long enough")
    assert authenticate(engine, "ann", "long enough") == Principal("ann", "analyst")
    for _ in range(3):
        with pytest.raises(LoginRefused, match="wrong user name or password"):
            authenticate(engine, "ann", "wrong password")
    with pytest.raises(LoginRefused, match="try again in 1 s") as locked:
        authenticate(engine, "ann", "long enough")  # even the right password waits
    assert locked.value.retry_after == 1
    with pytest.raises(LoginRefused):
        authenticate(engine, "nobody", "whatever1")  # unknown names are counted the same
    set_disabled(engine, "ann")
    with psycopg.connect(pg_url) as conn:
        conn.execute("DELETE FROM login_failure")
    with pytest.raises(LoginRefused, match="disabled"):
        authenticate(engine, "ann", "long enough")
    set_disabled(engine, "ann", False)
    set_password(engine, "ann", "a new password")
    assert authenticate(engine, "ann", "a new password").name == "ann"
    token = add_user(engine, "wall", "kiosk")
    assert token and len(token) > 30
    rows = {u.name: u for u in list_users(engine)}
    assert rows["wall"].role == "kiosk" and not rows["ann"].disabled
    stored = sql(pg_url, "SELECT password_hash, token_hash FROM app_user WHERE name = 'wall'")
    assert stored[0][0] is None and token not in stored[0][1]
    engine.dispose()


def test_nobody_gets_nothing(site):
    status, body = get(site, "/api/kpi", user="official", Authorization="")
    assert status == 401 and b"sign in" in body
    for path in ("/api/kpi", "/collections/cases/items", "/tiles/cases/10/843/447.pbf",
                 "/export/cases.csv", "/_dash-layout"):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib_get(site.url + path)
        assert info.value.code == 401, path
    status, _ = get(site, "/api/kpi", user="official", Authorization="Bearer not-a-token")
    assert status == 401


def urllib_get(url: str):
    import urllib.request

    return urllib.request.urlopen(url, timeout=30)


# -- a street official on every path ---------------------------------------------------------
def test_official_api_sees_only_their_street(site, city_db, area):
    own, other = area["own"], area["other"]
    status, body = get(site, "/api/kpi?range=all")
    assert status == 200, body
    data = json.loads(body)
    assert data["cases"]["total"] == count(city_db, "street_code = %s", own)
    assert [c["code"] for c in data["breadcrumb"]] == [own]  # nothing above their street
    for path in (f"/api/kpi?scope={other}", f"/api/kpi?scope={area['other_grid']}",
                 f"/api/kpi?scope={DISTRICT}", "/api/kpi?scope=NOT-A-UNIT",
                 f"/api/hotspots?scope={other}", f"/api/hexbins?scope={other}",
                 f"/collections/cases/items?scope={other}",
                 f"/export/cases.csv?scope={other}", f"/tiles/cases/14/0/0.pbf?scope={other}"):
        status, body = get(site, path)
        assert status == 403, path
        assert b"outside your area" in body and b"features" not in body
    denied = sql(city_db, "SELECT count(*) FROM audit_log WHERE user_name = 'official' AND "
                          "action = 'denied' AND NOT allowed")[0][0]
    assert denied >= 9


def test_official_items_bbox_and_single_features(site, city_db, area):
    own, other = area["own"], area["other"]
    box = sql(city_db, "SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) "
                       "FROM admin_unit WHERE code = %s", other)[0]
    bbox = ",".join(f"{v:.6f}" for v in box)
    status, body = get(site, f"/collections/cases/items?range=all&bbox={bbox}&limit=1000")
    page = json.loads(body)
    assert status == 200
    assert {f["properties"]["street_code"] for f in page["features"]} <= {own}
    in_own_part = count(city_db, "street_code = %s AND geom && ST_MakeEnvelope(%s, %s, %s, %s, "
                                 "4326)", own, *box)
    assert page["numberMatched"] == in_own_part
    foreign = sql(city_db, "SELECT id FROM case_event WHERE street_code = %s LIMIT 1", other)[0][0]
    assert get(site, f"/collections/cases/items/{foreign}")[0] == 404
    assert get(site, f"/collections/cases/items/{foreign}", user="centre")[0] == 200
    mine = sql(city_db, "SELECT id FROM case_event WHERE street_code = %s LIMIT 1", own)[0][0]
    assert get(site, f"/collections/cases/items/{mine}")[0] == 200
    status, body = get(site, "/collections/admin-2/items")
    assert [f["id"] for f in json.loads(body)["features"]] == [own]


def test_official_tiles_outside_the_street_are_empty(site, city_db, area):
    z, x, y = foreign_tile(city_db, area["own"], area["other"], 15)
    path = f"/tiles/cases/{z}/{x}/{y}.pbf?range=all"
    status, body = get(site, path, user="centre")
    assert status == 200 and features_in(body) > 0  # the tile does hold cases …
    status, body = get(site, path)
    assert status == 200 and features_in(body) == 0  # … none of them the official's
    own_tile = foreign_tile(city_db, area["other"], area["own"], 15)
    status, body = get(site, "/tiles/cases/{}/{}/{}.pbf?range=all".format(*own_tile))
    assert features_in(body) > 0


def foreign_tile(url: str, own: str, other: str, z: int) -> tuple[int, int, int]:
    """A tile holding cases of ``other`` that does not touch ``own``."""
    for lon, lat in sql(url, "SELECT ST_X(geom), ST_Y(geom) FROM case_event WHERE "
                             "street_code = %s AND geom IS NOT NULL LIMIT 200", other):
        x, y = tile_of(lon, lat, z)
        apart = sql(url, "SELECT NOT ST_Intersects(geom, ST_Transform(ST_TileEnvelope(%s, %s, "
                         "%s), 4326)) FROM admin_unit WHERE code = %s", z, x, y, own)[0][0]
        if apart:
            return z, x, y
    raise AssertionError("no tile apart from the official's street")


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def features_in(tile: bytes) -> int:
    return sum(len(layer["features"]) for layer in mapbox_vector_tile.decode(tile).values())


def test_official_exports_only_their_street(site, city_db, area):
    status, body = get(site, "/export/cases.csv?range=all")
    frame = pd.read_csv(io.BytesIO(body), encoding="utf-8-sig", dtype=str)
    assert status == 200 and set(frame["street_code"]) == {area["own"]}
    assert len(frame) == count(city_db, "street_code = %s", area["own"])
    logged = sql(city_db, "SELECT target, detail->>'scope', (detail->>'rows')::int FROM "
                          "audit_log WHERE user_name = 'official' AND action = 'export' "
                          "ORDER BY id DESC LIMIT 1")[0]
    assert logged == ("cases", area["own"], len(frame))


def test_official_case_detail_of_another_street_is_not_found(city_db, area):
    engine = make_engine(city_db)
    official = Principal("official", "street_official", area["own"])
    foreign = sql(city_db, "SELECT id FROM case_event WHERE street_code = %s LIMIT 1",
                  area["other"])[0][0]
    with pytest.raises(NotFound):
        case_detail(engine, foreign, official, ZONE)
    with engine.connect() as conn, pytest.raises(Forbidden):
        scope_for(conn, official, area["other_grid"])
    engine.dispose()


def test_official_in_the_browser_and_a_crafted_callback(site, city_db, area, page):
    page.goto(site.url + "/?range=all")
    assert "/login" in page.url  # nobody yet: the sign-in page
    page.fill("#password", "wrong-password")
    page.fill("#name", "official")
    page.click("button[type=submit]")
    page.wait_for_selector("#login-error")
    screenshot(page, "login-error-zh")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_function("n => document.querySelector('#kpi-total') && document"
                           ".querySelector('#kpi-total').innerText.replace(/,/g, '')"
                           " == String(n)", arg=count(city_db, "street_code = %s", area["own"]),
                           timeout=30_000)
    assert page.locator("#breadcrumb .here, #breadcrumb a").count() == 1
    page.wait_for_function("() => document.querySelector('#map-box .js-plotly-plot')"
                           "?._fullData?.[0]?.locations?.length > 0", timeout=30_000)
    page.wait_for_timeout(1500)  # MapLibre paints a moment after plotly has the units
    shot = screenshot(page, "official-own-street")
    assert bluish_share(page.locator("#map-box").screenshot()) > 0.1, f"map not drawn: {shot}"
    with page.expect_request(lambda r: "_dash-update-component" in r.url
                             and '"map-box' in (r.post_data or "")) as caught:
        page.goto(f"{site.url}/?range=all&scope={area['other']}")  # a crafted URL
    page.wait_for_selector("#banner .banner", timeout=30_000)
    assert "无权" in page.inner_text("#banner")
    total = page.inner_text("#kpi-total") if page.locator("#kpi-total").count() else ""
    assert total.replace(",", "") != str(count(city_db, "street_code = %s", area["other"]))
    # The same callback replayed by hand with another street in its payload.
    payload = json.loads(caught.value.post_data)
    for item in payload["inputs"]:
        if item.get("property") == "search":
            item["value"] = f"?range=all&scope={area['other_grid']}"
    answer = page.request.post(site.url + "/_dash-update-component", data=payload)
    shown = answer.json()["response"]
    assert set(shown) <= {"banner", "refresh"} and "无权" in json.dumps(shown, ensure_ascii=False)


# -- personal data --------------------------------------------------------------------------
def reporters(url: str, where: str, *args) -> dict[str, tuple]:
    return {r[0]: (r[1], r[2]) for r in sql(
        url, f"SELECT id, reporter_name, reporter_phone FROM case_event WHERE {where}", *args)}


@pytest.mark.parametrize("fmt", FORMATS)
def test_personal_fields_masked_in_every_format(site, city_db, fmt, tmp_path):
    grid = sql(city_db, "SELECT grid_code FROM case_event WHERE reporter_phone IS NOT NULL "
                        "AND grid_code IS NOT NULL "
                        "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")[0][0]
    truth = reporters(city_db, "grid_code = %s", grid)
    path = f"/export/cases.{fmt}?range=all&scope={grid}&personal=1"
    masked = read_export(fmt, download(site, path, "analyst"), tmp_path / "a")
    clear = read_export(fmt, download(site, path, "granted"), tmp_path / "b")
    assert set(masked) == set(truth) == set(clear)
    for case_id, (name, phone) in truth.items():
        assert clear[case_id] == (name, phone)
        got_name, got_phone = masked[case_id]
        assert MASKED_NAME.match(got_name) and got_name[0] == name[0]
        assert phone is None or (MASKED_PHONE.match(got_phone) and got_phone[-4:] == phone[-4:])
    plain = read_export(fmt, download(site, path.replace("&personal=1", ""), "granted"),
                        tmp_path / "c", personal=False)
    assert set(plain) == set(truth)  # without asking: no personal columns at all


def download(site, path: str, user: str) -> bytes:
    status, body = get(site, path, user=user)
    assert status == 200, body[:300]
    return body


def read_export(fmt: str, body: bytes, folder, personal: bool = True) -> dict:
    """{id: (name, phone)} from an export's bytes (or {id: None} when ``personal`` is off,
    after checking the personal columns are absent)."""
    folder.mkdir()
    frame = _frame(fmt, body, folder)
    names = ("rep_name", "rep_phone") if fmt == "shp" else ("reporter_name", "reporter_phone")
    if not personal:
        assert not set(names) & set(frame.columns)
        return dict.fromkeys(frame["id"])
    return {row["id"]: tuple(_text(row[c]) for c in names) for _, row in frame.iterrows()}


def _frame(fmt: str, body: bytes, folder) -> pd.DataFrame:
    if fmt == "csv":
        return pd.read_csv(io.BytesIO(body), encoding="utf-8-sig", dtype=str)
    if fmt == "xlsx":
        sheet = load_workbook(io.BytesIO(body), read_only=True).active
        rows = list(sheet.values)
        return pd.DataFrame(rows[1:], columns=rows[0])
    if fmt == "html":
        text = body.decode()
        return _html_features(text)
    path = folder / ("export.zip" if fmt == "shp" else f"export.{fmt}")
    path.write_bytes(body)
    if fmt == "shp":
        zipfile.ZipFile(path).extractall(folder)
        path = next(folder.glob("*.shp"))
    return pd.DataFrame(gpd.read_file(path).drop(columns="geometry"))


def _html_features(text: str) -> pd.DataFrame:
    """The GeoJSON folium embeds in the page, as a table of properties."""
    start = text.index('{"type": "FeatureCollection"') if '{"type": "FeatureCollection"' in \
        text else text.index('{"features"')
    data, _ = json.JSONDecoder().raw_decode(text[start:])
    return pd.DataFrame([f["properties"] for f in data["features"]])


def _text(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) \
        else str(value)


def test_items_and_detail_mask_for_the_command_centre(site, city_db, area):
    grid = area["other_grid"]
    status, body = get(site, f"/collections/cases/items?range=all&scope={grid}&personal=1",
                       user="centre")
    props = [f["properties"] for f in json.loads(body)["features"]]
    assert status == 200 and props
    assert all(MASKED_NAME.match(p["reporter_name"]) for p in props)
    engine = make_engine(city_db)
    case_id = props[0]["id"]
    detail = case_detail(engine, case_id, Principal("centre", "command_center"), ZONE)
    assert MASKED_NAME.match(detail["reporter_name"])
    clear = case_detail(engine, case_id, Principal("boss", "admin"), ZONE)
    assert clear["reporter_name"] == reporters(city_db, "id = %s", case_id)[case_id][0]
    assert "reporter_name" not in case_detail(engine, case_id, Principal("wall", "kiosk"),
                                              ZONE)
    engine.dispose()


def test_kiosk_reads_but_cannot_export_or_see_people(site, city_db):
    bearer = {"Authorization": f"Bearer {site.kiosk}"}
    status, body = get(site, "/api/kpi?range=all", **bearer)
    assert status == 200 and json.loads(body)["cases"]["total"] == count(city_db, "true")
    for fmt in FORMATS:
        status, body = get(site, f"/export/cases.{fmt}", **bearer)
        assert status == 403 and b"may not export" in body
    status, body = get(site, "/collections/cases/items?personal=1&limit=5", **bearer)
    assert "reporter_name" not in json.loads(body)["features"][0]["properties"]
    refused = sql(city_db, "SELECT count(*) FROM audit_log WHERE user_name = 'kiosk1' "
                           "AND action = 'denied'")[0][0]
    assert refused >= len(FORMATS)


def test_disabling_a_user_ends_their_session(site, city_db, browser):
    ensure_user(city_db, "leaver", "analyst")
    context = browser.new_context()
    page = context.new_page()
    site.login(page, "leaver")
    assert page.request.get(site.url + "/api/kpi").status == 200
    set_disabled(make_engine(city_db), "leaver")
    assert page.request.get(site.url + "/api/kpi").status == 401
    context.close()


def test_repeated_failures_lock_the_form(site, city_db, page):
    ensure_user(city_db, "target", "analyst")
    answers = [page.request.post(site.url + "/login", form={"name": "target",
               "password": f"guess-{i}"}, max_redirects=0).status for i in range(4)]
    assert answers == [401, 401, 401, 429]
    sql(city_db, "UPDATE login_failure SET failures = 8 WHERE name = 'target' RETURNING 1")
    page.goto(site.url + "/login?lang=en")
    page.fill("#name", "target")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#login-error")
    assert "try again in" in page.inner_text("#login-error")
    screenshot(page, "login-locked-en")


def test_user_commands(pg_url):
    import os
    import subprocess
    import sys

    def onemap(*args, stdin: str = ""):
        return subprocess.run([sys.executable, "-m", "onemap.cli", "user", *args],
                              input=stdin, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "DATABASE_URL": pg_url})

    added = onemap("add", "cli-analyst", "--role", "analyst", "--password-stdin",
                   stdin="a fine password\n")
    assert added.returncode == 0 and "added as analyst" in added.stdout
    kiosk = onemap("add", "cli-wall", "--role", "kiosk")
    assert "/bigscreen?kiosk=" in kiosk.stdout
    bad = onemap("add", "cli-street", "--role", "street_official", "--password-stdin",
                 stdin="a fine password\n")
    assert bad.returncode == 1 and "needs --scope" in bad.stderr and "Traceback" not in bad.stderr
    assert onemap("disable", "cli-analyst").returncode == 0
    listed = onemap("list").stdout
    assert re.search(r"cli-analyst\s+analyst\s+\*\s+-\s+disabled", listed)
    assert re.search(r"cli-wall\s+kiosk", listed)
    changed = onemap("passwd", "cli-analyst", "--password-stdin", stdin="another password\n")
    assert changed.returncode == 0
    engine = make_engine(pg_url)
    set_disabled(engine, "cli-analyst", False)
    assert authenticate(engine, "cli-analyst", "another password").role == "analyst"
    engine.dispose()
    missing = onemap("disable", "nobody-here")
    assert missing.returncode == 1 and "no user 'nobody-here'" in missing.stderr

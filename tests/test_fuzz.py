"""Fuzzing the read side: hypothesis on every parser of request parameters, and
schemathesis against the served OpenAPI document as every role — a street official most
thoroughly, then an admin, the command centre, an analyst and a kiosk limited to the same
street — checking that no answer is a server error, none holds data outside the caller's
street, and personal fields reach only those entitled to them."""

from __future__ import annotations

import base64
import io
import json
import math
import re
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

import mapbox_vector_tile
import numpy as np
import pandas as pd
import psycopg
import pyogrio
import pytest
import schemathesis
from conftest import PASSWORD, DashServer, ensure_user
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dashboard import state
from layers.cases import raw_where, rollup_rows, rollup_where
from layers.catalog import default_catalog
from layers.errors import BadParameter
from layers.features import MAX_LIMIT
from layers.filters import (
    DEVICE_STATUSES,
    RANGES,
    STATUS_FILTERS,
    Filters,
    parse_filters,
)
from layers.scope import Scope
from web import api
from web.openapi import openapi_document

PARSER = settings(max_examples=300, derandomize=True, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2025, 6, 15, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
NAMES = ("scope", "range", "start", "end", "datetime", "category", "channel", "status", "kind",
         "device_status", "bbox", "limit", "offset", "zoom", "personal", "unit", "crs")
# Text a URL can carry, plus the shapes each parameter expects and their edges.
SHAPES = st.sampled_from([
    "", " ", ",", ",,", "\x00", "nan", "inf", "-inf", "1e400", "-0", "0", "１２", "٣",
    "9999-12-31", "0001-01-01", "2025-02-30", "2025-01-01", "2025-01-01T00:00:00Z",
    "2025-01-01T08:00:00+08:00", "2025-01-01t00:00:00z", "2025-01-01/2024-01-01",
    "../2025-01-01", "2025-01-01/..", "../..", "/", "2025-01-01/2025-01-01",
    "-180,-90,180,90", "114,22,115,23", "115,22,114,23", "1,2,3", "1,2,3,4,5", "nan,0,1,1",
    "open", "open,closed", "closed, overdue ", "alarm", "today", "7d", "year", "all",
    "440310001", " 440310001 ", "4403-10 001", "' OR 1=1 --", "x" * 41, "y" * 101,
    "true", "FALSE", "yes", "2", "grid", "hex", "wgs84",
])
TEXT = st.one_of(SHAPES, st.text(max_size=30),
                 st.lists(SHAPES, min_size=1, max_size=3).map(",".join))
VALUE = st.one_of(TEXT, st.lists(TEXT, max_size=3))
PARAMS = st.dictionaries(st.one_of(st.sampled_from(NAMES), st.text(max_size=8)), VALUE,
                         max_size=8)
CODE = re.compile(r"^[\w\- ]{1,40}$")


@PARSER
@given(PARAMS)
@example({"start": "9999-12-31"})  # was a year out of range, accepted
@example({"end": "9999-12-31"})  # was an OverflowError (500) on the day after
@example({"category": "a\x00b"})  # was a database error (503): text cannot hold NUL
@example({"bbox": "-inf,0,1,1"})
def test_parse_filters_accepts_or_names_the_bad_parameter(params):
    try:
        filters = parse_filters(params, "Asia/Shanghai", NOW)
    except BadParameter as exc:
        assert exc.status == 400 and exc.name in str(exc)
        return
    if filters.scope is not None:
        assert CODE.match(filters.scope) and filters.scope == filters.scope.strip()
    for moment in (filters.start, filters.end):
        assert moment is None or (moment.tzinfo is not None and 1900 <= moment.year <= 2201)
    if filters.start and filters.end:
        assert filters.start < filters.end
    if filters.bbox is not None:
        minx, miny, maxx, maxy = filters.bbox
        assert all(math.isfinite(v) for v in filters.bbox)
        assert -180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90
    assert set(filters.statuses) <= set(STATUS_FILTERS)
    assert set(filters.device_statuses) <= set(DEVICE_STATUSES)
    for values in (filters.categories, filters.channels, filters.kinds):
        assert len(set(values)) == len(values)
        assert all(v and v == v.strip() and "," not in v and len(v) <= 100 for v in values)
    for value in (filters.scope, *filters.categories, *filters.channels, *filters.kinds):
        assert value is None or "\x00" not in value  # PostgreSQL text cannot hold NUL


@PARSER
@given(st.sampled_from(RANGES))
def test_every_range_preset_is_a_local_midnight_interval(preset):
    filters = parse_filters({"range": preset}, "Asia/Shanghai", NOW)
    if preset == "all":
        assert filters.start is None and filters.end is None
        return
    assert filters.start < filters.end and filters.start <= NOW < filters.end
    assert filters.start.time() == filters.end.time() == datetime.min.time()


@PARSER
@given(st.dates(), st.dates())
def test_start_and_end_dates_round_trip(first, second):
    params = {"start": first.isoformat(), "end": second.isoformat()}
    try:
        filters = parse_filters(params, "Asia/Shanghai", NOW)
    except BadParameter:
        assert first > second or not (1900 <= first.year <= 2200 and 1900 <= second.year <= 2200)
        return
    assert filters.start.date() == first and filters.end.date() > second  # end includes its day


@PARSER
@given(st.lists(st.one_of(st.floats(-200, 200), st.just(math.nan)), min_size=4, max_size=4))
def test_bbox_of_numbers(numbers):
    text = ",".join(repr(n) for n in numbers)
    try:
        bbox = parse_filters({"bbox": text}).bbox
    except BadParameter:
        minx, miny, maxx, maxy = numbers
        assert not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90)
        return
    assert list(bbox) == numbers


@PARSER
@given(VALUE, st.floats(-10, 10), st.floats(0, 100))
def test_numbers_flags_and_paging(value, low, span):
    params = {"n": value, "limit": value, "offset": value, "personal": value}
    for parse, check in (
        (lambda: api._number(params, "n", low, low, low + span),
         lambda n: math.isfinite(n) and low <= n <= low + span),
        (lambda: api._paging(params),
         lambda paging: 1 <= paging[0] <= MAX_LIMIT and 0 <= paging[1] <= 10**9),
        (lambda: api._flag(params, "personal"), lambda flag: isinstance(flag, bool)),
    ):
        try:
            result = parse()
        except BadParameter:
            continue
        assert check(result), result


@PARSER
@given(st.one_of(st.none(), st.text(max_size=60), st.lists(
    st.tuples(st.sampled_from(["scope", "range", "start", "end", "category", "channel",
                               "status", "layers", "metric", "lang", "x"]), TEXT),
    max_size=8).map(lambda pairs: "?" + "&".join(f"{k}={v}" for k, v in pairs))))
@example("?layers=0")  # was: every layer off came back as the default layers
def test_view_state_from_any_url_round_trips(search):
    """Any address gives a state the page can draw (filters it cannot read are its
    ``problem``, shown as a banner), and the address the state writes gives it back."""
    view = state.parse(search)
    assert view.range in (*RANGES, None) and view.metric in state.METRICS
    assert view.lang in ("zh", "en") and set(view.layers) <= set(state.MAP_LAYERS)
    assert set(view.filters.statuses) <= set(STATUS_FILTERS)
    again = state.parse(view.query())
    assert again == view and again.problem is None
    # The page's filters are read like any request's: the same filters from its parameters.
    assert parse_filters(view.params(), "Asia/Shanghai", NOW) == view.filters.resolved(
        "Asia/Shanghai", NOW)


HOSTILE = st.sampled_from([
    "'", "''", "' OR '1'='1", "x'); DROP TABLE case_event; --", "\\", '"', ":scope", "%s",
    "%(scope)s", "$1", "/* */", "\x00", "\u2019", ":level", "TRUE",
]).flatmap(lambda bad: st.text(max_size=6).map(lambda s: f"{s}{bad}{s}"))


def _wheres(code: str, category: str, channel: str, level: int) -> list:
    """Every WHERE builder of the read side, on filters holding the given values."""
    filters = Filters(scope=code, categories=(category,), channels=(channel,), kinds=(code,),
                      statuses=STATUS_FILTERS, device_statuses=DEVICE_STATUSES,
                      bbox=(1.0, 2.0, 3.0, 4.0), start=NOW, end=NOW.replace(year=2026))
    scope = Scope(code if level else None, "x", level, None, 1.0, ())
    levels = [lv for lv in (1, 4) for _ in (False, True)]
    rollups = [rollup_where(filters, lv, code, parent) for lv in (1, 4) for parent in (False, True)]
    rows = [rollup_rows(where, filters, "Asia/Shanghai", "case_rollup", lv, cut=NOW.date())
            for where, lv in zip(rollups, levels, strict=True)]
    return [raw_where(filters, scope), *rollups, *rows,
            *(layer.where(scope, filters) for layer in default_catalog())]


@PARSER
@given(HOSTILE, HOSTILE, HOSTILE, st.integers(0, 4))
@example("' OR '1'='1", "'; DROP TABLE x; --", ":level", 2)
def test_where_binds_every_value(category, channel, code, level):
    """The SQL text is the same whatever the values: they travel only as parameters."""
    hostile = _wheres(code, category, channel, level)
    plain = _wheres("c", "a", "b", level)
    for bad, good in zip(hostile, plain, strict=True):
        assert bad.sql == good.sql
        bound = [v for p in bad.params.values() for v in (p if isinstance(p, list) else [p])]
        assert {v for v in (category, channel, code) if v in bound} == {
            {"a": category, "b": channel, "c": code}[v] for p in good.params.values()
            for v in (p if isinstance(p, list) else [p]) if v in ("a", "b", "c")}


# -- schemathesis against the served OpenAPI document, as a street official -------------
OFFICIAL = "fuzzer"
# Cross-parameter rules (start < end, min < max in a bbox, x and y below 2^z) answer 400 to
# requests the schema cannot tell from good ones, and the server reads leniently what the
# schema states strictly (blank = absent, spaces around list items): schema-valid data may
# be refused and schema-violating data accepted, so those two checks stay off. A wrong
# password would lock the official out for a second (the sign-in slowdown): no auth fuzzing
# here; test_every_operation_needs_a_signed_in_caller covers it.
CHECKS_OFF = ("positive_data_acceptance", "negative_data_rejection", "ignored_auth")
MAX_EXAMPLES = 15
ROLE_EXAMPLES = 5   # per operation for each of the other roles


@dataclass
class Area:
    """The official's street, what lies in it, and codes, ids and tiles inside and out."""

    own: str
    subtree: set[str]
    bbox: tuple[float, float, float, float]
    ids: dict[str, set[str]]           # table → ids of the rows in the street
    codes: list[str]                   # scopes to ask for: in the street and out of it
    features: dict[str, list[str]]     # layer id → feature ids in the street and out of it
    tiles: list[tuple[int, int, int]]  # z/x/y over the street and elsewhere
    week: tuple[str, str]              # the data's last week: exports of it stay small


def _sql(url: str, query: str, *args) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, args).fetchall()


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2 ** z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return z, int((lon + 180) / 360 * n), int(y)


def _tile_box(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    n = 2 ** z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


def _area_of(url: str) -> Area:
    own, other = [r[0] for r in _sql(url, "SELECT code FROM admin_unit WHERE level = 2 "
                                          "ORDER BY area_km2 DESC LIMIT 2")]
    subtree = {r[0] for r in _sql(url, "SELECT code FROM admin_unit WHERE street_code = %s",
                                  own)}
    bbox = _sql(url, "SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) "
                     "FROM admin_unit WHERE code = %s", own)[0]
    ids = {table: {r[0] for r in _sql(url, f"SELECT id FROM {table} WHERE street_code = %s",
                                      own)}
           for table in ("facility", "iot_device", "case_event")}

    def one_of(query: str, street: str) -> str:
        return _sql(url, query + " LIMIT 1", street)[0][0]

    def sample(table: str) -> list[str]:
        q = f"SELECT id FROM {table} WHERE street_code = %s ORDER BY id"
        return [one_of(q, own), one_of(q, other)]

    grids = [one_of("SELECT code FROM admin_unit WHERE level = 4 AND street_code = %s "
                    "ORDER BY code", s) for s in (own, other)]
    communities = [one_of("SELECT code FROM admin_unit WHERE level = 3 AND street_code = %s "
                          "ORDER BY code", s) for s in (own, other)]
    district = _sql(url, "SELECT code FROM admin_unit WHERE level = 1")[0][0]
    centres = [_sql(url, "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) c "
                         "FROM admin_unit WHERE code = %s) p", s)[0] for s in (own, other)]
    last = _sql(url, "SELECT max(reported_at) FROM case_event")[0][0]
    return Area(
        own, subtree, tuple(bbox), ids,
        codes=[own, *grids, *communities, other, district, "440310999", f" {other} "],
        features={"cases": sample("case_event"), "facilities": sample("facility"),
                  "iot-devices": sample("iot_device"), "admin-4": grids,
                  "admin-3": communities, "admin-2": [own, other], "admin-1": [district]},
        tiles=[_tile_of(lon, lat, z) for lon, lat in centres for z in (10, 12, 14)],
        week=((last - timedelta(days=7)).isoformat(), last.isoformat()))


# The areas of the running servers, by base URL: the hooks below draw from it.
AREAS: dict[str, Area] = {}


def _schema(examples: int, seed: int):
    """The served document as schemathesis reads it, drawing scopes, feature ids and tiles
    from the running server's area (in the caller's street and out of it)."""
    schema = schemathesis.openapi.from_dict(
        openapi_document("http://127.0.0.1", default_catalog()),
        config=schemathesis.Config.from_dict({
            "seed": seed,  # with deterministic generation: the same cases on every run
            "generation": {"max-examples": examples, "deterministic": True, "mode": "all",
                           "database": "none"},
            "checks": {name: {"enabled": False} for name in CHECKS_OFF},
        }))
    schema.hook(flatmap_query)
    schema.hook(flatmap_path_parameters)
    return schema


def flatmap_query(context, query):
    """Codes in the caller's street and out of it, besides the generated ones."""
    if not isinstance(query, dict) or not any(p.name == "scope" for p in context.operation.query):
        return st.just(query)
    # The codes come first: deterministic generation favours the first branch.
    return st.one_of(st.deferred(lambda: st.sampled_from(_area().codes)).map(
        lambda code: {**query, "scope": code}), st.just(query))


def flatmap_path_parameters(context, path):
    """Feature ids and tiles in the caller's street and out of it."""
    if not isinstance(path, dict):
        return st.just(path)
    if "feature_id" in path and path.get("layer_id") in {spec.id for spec in default_catalog()}:
        return st.one_of(st.deferred(lambda: st.sampled_from(
            _area().features[path["layer_id"]])).map(lambda fid: {**path, "feature_id": fid}),
            st.just(path))
    if "z" in path:
        return st.one_of(st.deferred(lambda: st.sampled_from(_area().tiles)).map(
            lambda zxy: {**path, **dict(zip("zxy", zxy, strict=True))}), st.just(path))
    return st.just(path)


fuzzed = _schema(MAX_EXAMPLES, 20250615)
fuzzed.config.update(basic_auth=(OFFICIAL, PASSWORD))
every_role = _schema(ROLE_EXAMPLES, 20261203)


def _area() -> Area:
    (area,) = AREAS.values()
    return area


@pytest.fixture(scope="module")
def fuzz_site(city_db):
    """A server on the demo city and a street official limited to its largest street; it
    serves the document the fuzzing reads."""
    area = _area_of(city_db)
    ensure_user(city_db, OFFICIAL, "street_official", area.own)
    server = DashServer(city_db)
    served = json.loads(server.open("/openapi.json", OFFICIAL).read())
    assert served == openapi_document(server.url, default_catalog())
    AREAS[server.url] = server.area = area
    yield server
    del AREAS[server.url]
    server.stop()


@fuzzed.parametrize()
def test_fuzz_as_street_official(case, fuzz_site):
    """No server error, answers as documented, and nothing outside the official's street."""
    _one_week_exports(case, fuzz_site.area)
    case.call_and_validate(base_url=fuzz_site.url, timeout=60,
                           additional_checks=[_in_area(fuzz_site.area)])


def _one_week_exports(case, area: Area) -> None:
    if case.path.startswith("/export/") and isinstance(case.query, dict) and not any(
            k in case.query for k in ("range", "start", "end", "datetime")):
        case.query["start"], case.query["end"] = area.week  # a whole street: ~10 s


# Every other role: (name, scope in the official's street?, personal grant). The analyst
# and the kiosk are limited to the street, so the same out-of-area check holds for them.
ROLES = {"admin": (False, False), "command_center": (False, False),
         "analyst": (True, False), "kiosk": (True, False)}


@pytest.fixture(scope="module", params=list(ROLES))
def fuzz_role(request, fuzz_site, city_db):
    """(role, Authorization header, the street it is limited to or None)."""
    role = request.param
    limited, grant = ROLES[role]
    area = fuzz_site.area
    name = f"fuzz-{role.replace('_', '-')}"
    token = ensure_user(city_db, name, role, area.own if limited else None, grant)
    if role == "kiosk":
        header = f"Bearer {token}"
    else:
        header = "Basic " + base64.b64encode(f"{name}:{PASSWORD}".encode()).decode()
    return role, header, area if limited else None


@every_role.parametrize()
def test_fuzz_as_every_role(case, fuzz_site, fuzz_role):
    """No server error for any role; nothing outside the street of those limited to it;
    personal fields in clear for the admin only, masked for the command centre, absent
    for kiosks; exports refused to kiosks."""
    role, header, area = fuzz_role
    _one_week_exports(case, fuzz_site.area)
    checks = [_personal_as(role)] + ([_in_area(area)] if area else [])
    response = case.call_and_validate(base_url=fuzz_site.url, timeout=60,
                                      headers={"Authorization": header}, additional_checks=checks)
    assert response.status_code != 401, (role, response.text[:200])  # it was signed in


MASKED_PHONE = re.compile(r"^.{3}\*{4}.{4}$|^\*+$")  # as layers/masking.py masks


def _personal_as(role: str):
    """A check: what a 200 answer shows of reporters, as ``role`` may see it."""

    def personal_as(ctx, response, case) -> None:
        if response.status_code != 200 or response.request.method != "GET":
            return
        path = urlsplit(response.request.url).path
        if path.startswith("/export/"):
            assert role != "kiosk", f"a kiosk exported {path}"
            return
        if "application/json" not in response.headers.get("content-type", [""])[0]:
            return
        data = response.json()
        features = data.get("features", [data]) if isinstance(data, dict) else []
        for feature in features:
            props = (feature.get("properties") if isinstance(feature, dict) else None) or {}
            phone = props.get("reporter_phone")
            if role == "kiosk":
                assert "reporter_phone" not in props and "reporter_name" not in props, props
            elif phone and role != "admin":
                assert MASKED_PHONE.match(phone), (role, phone)

    return personal_as


@pytest.mark.parametrize(("path", "status"), [
    ("/api/kpi?end=9999-12-31", 400),            # was 500: the day after overflowed
    ("/api/kpi?start=9999-12-31", 400),          # was accepted: a year past 2200
    ("/api/kpi?category=a%00b", 400),            # was 503: NUL reached PostgreSQL
    ("/collections/cases/items?channel=%00", 400),
    ("/collections/cases/items/a%00b", 404),     # was 503
    ("/tiles/cases/1/0/-1.pbf", 400),            # was 200: the dashboard's page
    ("/api/nothing", 404), ("/export/cases", 404), ("/collections/cases/items/", 404),
])
def test_what_fuzzing_found_answers_4xx_in_json(fuzz_site, path, status):
    code, body, kind = _get(fuzz_site, path)
    assert (code, kind) == (status, "application/json") and "error" in json.loads(body)


def test_every_operation_needs_a_signed_in_caller(fuzz_site):
    """Without credentials, or with a wrong password, no operation answers with data."""
    for path in ("/ogc/", "/conformance", "/collections", "/collections/cases",
                 "/collections/cases/items", "/api/kpi", "/api/hotspots", "/api/hexbins",
                 "/api/merges",
                 "/tiles/cases/12/3418/1779.pbf", "/export/cases.csv", "/api/nothing"):
        code, body, _ = _get(fuzz_site, path, None)
        assert code == 401 and "error" in json.loads(body), (path, code)
    assert _get(fuzz_site, "/api/kpi", "nobody")[0] == 401


def _get(site, path: str, user: str | None = OFFICIAL) -> tuple[int, bytes, str]:
    headers = {"Accept": "application/json"}
    if user:
        token = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    request = urllib.request.Request(site.url + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read(), answer.headers.get_content_type()
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get_content_type()


def _in_area(area: Area):
    """A check: a 200 answer holds only what lies in the official's street."""

    def in_area(ctx, response, case) -> None:
        if response.status_code != 200 or response.request.method != "GET":
            return  # (the coverage phase also asks with other methods, e.g. OPTIONS)
        sent = parse_qs(urlsplit(response.request.url).query, keep_blank_values=True)
        asked = (sent.get("scope") or [""])[0].strip()
        assert not asked or asked in area.subtree, f"200 for scope {asked!r} outside {area.own}"
        path = urlsplit(response.request.url).path
        kind = path.split("/")[1]
        if kind == "tiles":
            _tile_in_area(area, path, response.content)
        elif kind == "export":
            _export_in_area(area, path, response)
        else:
            _json_in_area(area, path, response.json())

    return in_area


def _json_in_area(area: Area, path: str, data: dict) -> None:
    if path.endswith("/items") or "/items/" in path or path == "/api/search":
        for feature in data.get("features", [data]):
            assert feature["properties"]["street_code"] == area.own, feature["properties"]
    elif path.startswith("/collections"):
        for doc in data.get("collections", [data]):
            (minx, miny, maxx, maxy), = doc["extent"]["spatial"]["bbox"]
            assert _inside((minx, miny, maxx, maxy), area.bbox), (doc["id"], doc["extent"])
    elif path == "/api/kpi":
        assert data["breadcrumb"][0]["code"] == area.own, data["breadcrumb"]
        codes = [data["scope"]["code"], *(c.get("code") for c in data["children"])]
        assert set(codes) <= area.subtree, codes
    elif path == "/api/merges":
        streets = {c["street_code"] for cl in data["clusters"] for c in cl["cases"]}
        assert streets <= {area.own}, streets
    elif path in ("/api/hotspots", "/api/hexbins"):
        for feature in data["features"]:
            if data.get("unit", "hex") == "grid":
                assert feature["id"] in area.subtree, feature["id"]
            else:
                assert _meets(_bounds(feature["geometry"]), area.bbox), feature["id"]


def _tile_in_area(area: Area, path: str, content: bytes) -> None:
    layer, z, x, y = re.fullmatch(r"/tiles/([\w-]+)/(\d+)/(\d+)/(\d+)\.pbf", path).groups()
    z, x, y = int(z), int(x), int(y)
    table = {"cases": "case_event", "facilities": "facility", "iot-devices": "iot_device"}
    for name, found in mapbox_vector_tile.decode(content).items():
        assert name == layer
        assert _meets(_tile_box(z, x, y), area.bbox), f"a tile away from {area.own}: {path}"
        for feature in found["features"]:
            props = feature["properties"]
            if "code" in props:
                assert props["code"] in area.subtree, props
            elif "id" in props:
                assert props["id"] in area.ids[table[layer]], props


def _export_in_area(area: Area, path: str, response) -> None:
    """The file name names the scope the rows were cut to; the rows say their street."""
    layer, fmt = re.fullmatch(r"/export/([\w-]+)\.(\w+)", path).groups()
    disposition = response.headers["content-disposition"][0]
    name = unquote(disposition.split("''", 1)[1])
    assert name.startswith(layer + "-") and name[len(layer) + 1:].split(".")[0] in area.subtree
    content = response.content
    if fmt == "geojson":
        rows = pd.DataFrame([f["properties"] for f in json.loads(content)["features"]])
    elif fmt == "csv":
        rows = pd.read_csv(io.BytesIO(content), dtype=str)
    elif fmt == "xlsx":
        rows = pd.read_excel(io.BytesIO(content), dtype=str)
    elif fmt in ("gpkg", "shp"):
        with warnings.catch_warnings():  # read from memory: "non conformant file extension"
            warnings.simplefilter("ignore", RuntimeWarning)
            rows = pyogrio.read_dataframe(io.BytesIO(content), read_geometry=False)
    else:  # the HTML map carries its rows as GeoJSON
        rows = pd.DataFrame({"street_code": re.findall(r'"street_code": ?"([^"]*)"',
                                                       content.decode())})
    column = next((c for c in rows.columns if c.startswith("street_co")), None)  # .shp: 10
    assert column or rows.empty, rows.columns
    assert column is None or set(rows[column]) <= {area.own}, set(rows[column])


def _bounds(geometry: dict) -> tuple[float, float, float, float]:
    points = np.array(list(_coordinates(geometry["coordinates"])))
    return (*points.min(axis=0), *points.max(axis=0))


def _coordinates(nested):
    if isinstance(nested[0], int | float):
        yield nested[:2]
        return
    for part in nested:
        yield from _coordinates(part)


def _inside(box, outer, slack: float = 1e-6) -> bool:
    return (box[0] >= outer[0] - slack and box[1] >= outer[1] - slack
            and box[2] <= outer[2] + slack and box[3] <= outer[3] + slack)


def _meets(box, other) -> bool:
    return box[0] <= other[2] and other[0] <= box[2] and box[1] <= other[3] and other[1] <= box[3]

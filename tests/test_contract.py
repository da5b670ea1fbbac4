"""The contracts between the read side and the dashboard: the typed view ``layers.view``
hands over, filters read once (by ``layers.filters``) with each vocabulary declared once,
and callbacks whose outputs are named, on the demo city in real PostGIS."""

from __future__ import annotations

import ast
import base64
import types
import typing
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import PASSWORD, ensure_user, sql_rows

from dashboard import state
from dashboard.figures import DEVICE_COLOURS
from dashboard.messages import LANGUAGES, MESSAGES
from layers.filters import (
    RANGES,
    STATUS_FILTERS,
    Filters,
    Period,
    filter_params,
    parse_filters,
    read_filters,
)
from layers.view import CASE_ORDERS, View, view
from onemap.database import make_engine
from onemap.principal import Principal
from onemap.settings import get_settings
from onemap.vocabulary import CASE_STATUSES, DEVICE_STATUSES

ROOT = Path(__file__).resolve().parents[1]
ZONE = "Asia/Shanghai"
NOW = datetime(2026, 11, 20, 10, 30, tzinfo=ZoneInfo(ZONE))
CENTRE = Principal("centre", "command_center")
EVERY_LAYER = set(state.MAP_LAYERS)


# -- the view contract -------------------------------------------------------------------------
def conforms(value, hint, where: str = "view") -> list[str]:
    """Where ``value`` breaks the type ``hint`` (TypedDicts: every required key, no other
    key, each of its type; lists, tuples and dicts item by item; unions: any member)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is typing.Any:
        return []
    if origin in (typing.Union, types.UnionType):
        found = [conforms(value, member, where) for member in args]
        return [] if any(not f for f in found) else min(found, key=len)
    if typing.is_typeddict(hint):
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not {hint.__name__}"]
        hints = typing.get_type_hints(hint)
        problems = [f"{where}.{k}: missing" for k in hint.__required_keys__ - value.keys()]
        problems += [f"{where}.{k}: not in {hint.__name__}" for k in value.keys() - hints.keys()]
        return problems + [p for k in value.keys() & hints.keys()
                           for p in conforms(value[k], hints[k], f"{where}.{k}")]
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            return [f"{where}: {type(value).__name__}, not a {origin.__name__}"]
        item = args[0] if args else typing.Any
        return [p for i, v in enumerate(value) for p in conforms(v, item, f"{where}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not a dict"]
        return [p for k, v in value.items() for p in conforms(v, args[1], f"{where}[{k!r}]")]
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, hint)
    return [] if ok else [f"{where}: {value!r} is not {getattr(hint, '__name__', hint)}"]


def view_problems(data) -> list[str]:
    assert isinstance(data, View), type(data)
    hints = typing.get_type_hints(View)
    return [p for name, hint in hints.items()
            for p in conforms(getattr(data, name), hint, f"view.{name}")]


@pytest.fixture(scope="module")
def city_engine(city_db):
    engine = make_engine(city_db)
    yield engine
    engine.dispose()


def test_every_view_holds_what_the_contract_says(city_db, city_engine):
    """The district with every layer (binned case points), a community (case points with
    their due marks), a device in focus, the backlog order and an empty period: each part
    of each view has the keys and types ``View`` declares, no more, no fewer."""
    alarm = sql_rows(city_db, "SELECT id FROM iot_device WHERE status = 'alarm' "
                              "ORDER BY id LIMIT 1")[0][0]
    late = sql_rows(city_db, "SELECT community_code FROM case_event WHERE status = 'open' "
                             "AND deadline < now() GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")[0][0]
    views = {
        "district": view(city_engine, read_filters({"range": "all"}), ZONE, EVERY_LAYER,
                         CENTRE, device=alarm),
        "community": view(city_engine, read_filters({"range": "all", "scope": late}), ZONE,
                          EVERY_LAYER, CENTRE, order="overdue"),
        "empty period": view(city_engine, read_filters({"start": "2001-01-01",
                                                        "end": "2001-01-02"}),
                             ZONE, {"units"}, CENTRE),
        "october": view(city_engine, read_filters({"start": "2026-10-01", "end": "2026-10-31"}),
                        ZONE, {"units"}, CENTRE),
    }
    for name, data in views.items():
        assert view_problems(data) == [], name
    district, community = views["district"], views["community"]
    assert district.focus["id"] == alarm and district.layers["cases"]["binned"]
    assert district.children and district.alarms_total == sql_rows(
        city_db, "SELECT count(*) FROM iot_device WHERE status = 'alarm'")[0][0]
    assert any(f["properties"]["due"] for f in community.layers["cases"]["features"])
    assert community.latest and all(row["status"] == "open" for row in community.latest)
    assert views["empty period"].elsewhere["range"] in RANGES  # the city has cases
    # 环比 and 同比: none for an open range, a compared month the data holds (September,
    # 31 days before October), and "before the data" for October 2025.
    assert {c["reason"] for c in district.compare.values()} == {"open"}
    october = views["october"]
    assert october.compare["previous"]["period"]["last"] == "2026-09-30"
    assert october.compare["previous"]["figures"]["total"] > 0
    assert october.compare["year_before"]["reason"] == "before_data"
    for data in views.values():
        assert len(data.weekday_hours) == 7 and {len(r) for r in data.weekday_hours} == {24}
        assert sum(map(sum, data.weekday_hours)) == data.cases["total"]


def test_the_checker_names_what_breaks_the_contract():
    """A missing key, a stray key, a wrong type; optional keys may be absent."""
    from layers.view import Figures, Trend, Unit

    good = {"code": "1", "name": "x", "level": 1}
    assert conforms(good, Unit) == [] and conforms({**good, "code": None}, Unit) == []
    assert conforms({"code": "1", "name": "x"}, Unit) == ["view.level: missing"]
    assert conforms({**good, "extra": 1}, Unit) == ["view.extra: not in Unit"]
    assert conforms({**good, "level": "1"}, Unit) == ["view.level: '1' is not int"]
    assert "cases.closed: missing" in conforms({"total": 1}, Figures, "cases")
    week = {"period": "2026-11-16", "n": 3}
    assert conforms({"unit": "week", "points": [week, {**week, "partial": True, "days": 2}]},
                    Trend) == []


# -- filters read once, one vocabulary ---------------------------------------------------------
LINK = "?scope=440310001&range=7d&category=市容环境,道路交通&channel=12345&status=open,overdue"


def test_the_page_reads_filters_as_the_api_does():
    """The address's filters become a ``Filters`` through the read side's own parser: the
    view the page asks for is the one the API reads from the same parameters."""
    page = state.parse(LINK)
    assert page.problem is None
    api = parse_filters({"scope": "440310001", "range": "7d", "category": "市容环境,道路交通",
                         "channel": "12345", "status": "open,overdue"}, ZONE, NOW)
    assert page.filters.resolved(ZONE, NOW) == api
    assert read_filters(filter_params(page.filters)) == page.filters
    assert state.parse(page.query()) == page


def test_an_unreadable_filter_is_the_views_problem_and_a_stale_choice_is_dropped():
    """A link with a scope no unit can have is not drawn (the page says why); a range or
    status the page no longer offers falls back, as it always did."""
    bad = state.parse("?scope=drop%20table;--&range=7d")
    assert bad.problem is not None and bad.problem.name == "scope"
    assert bad.filters == state.ViewState().filters
    stale = state.parse("?range=fortnight&status=open,pending")
    assert stale.problem is None and stale.range == state.DEFAULT_RANGE
    assert stale.filters.statuses == ("open",)
    dates = state.parse("?start=2026-11-01&end=2026-11-07")
    assert dates.range is None and dates.filters.period == Period(start="2026-11-01",
                                                                   end="2026-11-07")
    with pytest.raises(Exception, match="must be one of"):
        read_filters({"range": "fortnight"})  # the API refuses what the page drops


def collections_of_strings(path: Path):
    """Every tuple, list or set literal of string constants in a module, with its line."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Tuple | ast.List | ast.Set) and node.elts and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            yield {e.value for e in node.elts}, f"{path.relative_to(ROOT)}:{node.lineno}"


def test_each_vocabulary_is_declared_once():
    """No module spells out the ranges, the case statuses or the device statuses but the
    one that declares them; mappings keyed by one cover it exactly."""
    sources = [p for package in ("dashboard", "web", "layers", "etl", "democity", "onemap")
               for p in (ROOT / package).rglob("*.py")]
    found: dict[str, list[str]] = {"ranges": [], "case statuses": [], "device statuses": []}
    for path in sources:
        for values, where in collections_of_strings(path):
            for name, vocabulary in (("ranges", RANGES), ("case statuses", CASE_STATUSES),
                                     ("device statuses", DEVICE_STATUSES)):
                if set(vocabulary) <= values:
                    found[name].append(where)
    assert found == {"ranges": [],  # declared as layers.filters.RANGE_DAYS, a mapping
                     "case statuses": ["onemap/vocabulary.py:6"],
                     "device statuses": ["onemap/vocabulary.py:8"]}
    assert set(STATUS_FILTERS) == {*CASE_STATUSES, "overdue"}
    assert set(DEVICE_COLOURS) == set(DEVICE_STATUSES)
    assert list(DEVICE_COLOURS)[-1] == "alarm"  # drawn last: on top


@pytest.mark.parametrize("family, vocabulary", [
    ("range", RANGES), ("status", STATUS_FILTERS), ("device", DEVICE_STATUSES),
    ("layer", state.MAP_LAYERS), ("metric", state.METRICS), ("cases.order", CASE_ORDERS)])
def test_every_word_of_a_vocabulary_has_its_labels(family, vocabulary):
    for word in vocabulary:
        entry = MESSAGES.get(f"{family}.{word}")
        assert entry and all(entry.get(lang) for lang in LANGUAGES), f"{family}.{word}"


# -- named outputs ------------------------------------------------------------------------------
def returned_tuples(path: Path) -> list[str]:
    """``return a, b`` statements: a callback's outputs by position."""
    return [f"{path.name}:{node.lineno}" for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple)]


def test_no_callback_returns_outputs_by_position():
    pages = sorted((ROOT / "dashboard" / "pages").glob("*.py"))
    assert pages and [t for page in pages for t in returned_tuples(page)] == []


@pytest.fixture(scope="module")
def client(city_db):
    from dashboard.app import create_app

    ensure_user(city_db, "tester", "admin")
    app = create_app(get_settings(), city_db)
    token = base64.b64encode(f"tester:{PASSWORD}".encode()).decode()
    client = app.server.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Basic {token}"
    yield app, client
    app.server.extensions["onemap"].engine.dispose()


def call(client, outputs: dict, inputs: list, state_: list | None = None) -> dict:
    """A callback request as the page sends it; the answer's outputs by component id."""
    listed = [{"id": o.component_id, "property": o.component_property}
              for o in outputs.values()]
    name = ".." + "...".join(f"{o['id']}.{o['property']}" for o in listed) + ".."
    answer = client.post("/_dash-update-component", json={
        "output": name, "outputs": listed, "inputs": inputs, "state": state_ or [],
        "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"]})
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    return answer.get_json()["response"]


def test_callbacks_with_several_outputs_name_them(client):
    """Dash knows every multi-output callback's outputs by name, and a view or a failure
    answers exactly the outputs it names: all of them, or the banner and the refresh."""
    from dashboard import ids, push
    from dashboard.pages import bigscreen, home

    app, http = client
    http.get("/healthz")  # the first request sets the callbacks up
    ours = {k: v for k, v in app.callback_map.items()
            if getattr(v.get("callback"), "__module__", "").startswith("dashboard.")}
    several = {k: v for k, v in ours.items() if k.startswith("..")}  # multi-output ids
    # Which callbacks a Dash app of this test session holds depends on the modules the
    # session imported before it (the workbench's are registered on their page's import):
    # the desk's view and the wall's are there whatever the order, and every multi-output
    # callback there is names its outputs.
    def outputs(key: str) -> set[str]:
        return {part.rsplit(".", 1)[0] for part in key.strip(".").split("...")}

    for drawn in (home.VIEW, bigscreen.WALL):
        assert any({o.component_id for o in drawn.values()} <= outputs(k) for k in several)
    assert all(isinstance(v["outputs_indices"], dict) for v in several.values())
    url = {"id": ids.URL, "property": "search"}
    tick = {"id": ids.REFRESH, "property": "n_intervals", "value": 0}
    changed = {"id": push.changed(home.PUSH), "property": "data", "value": None}
    at = [{"id": push.drawn(home.PUSH), "property": "data", "value": None}]
    drawn = call(http, home.VIEW, [{**url, "value": "?range=all"}, tick, changed], at)
    assert set(drawn) == {o.component_id for o in home.VIEW.values()}
    refused = call(http, home.VIEW, [{**url, "value": "?scope=not%20a%20code!"}, tick,
                                     changed], at)
    assert set(refused) == {ids.BANNER, ids.REFRESH}
    assert "banner" in str(refused[ids.BANNER]["children"])
    wall = [{"id": "bs-refresh", "property": "n_intervals", "value": 1},
            {"id": "bs-tour-state", "property": "data", "value": {"index": -1, "on": True}},
            {"id": "bs-screen", "property": "data", "value": {"w": 1920, "h": 1080}},
            {"id": push.changed(bigscreen.PUSH), "property": "data", "value": None}]
    lang = {"id": "bs-lang", "property": "data", "value": "zh"}
    wall_at = {"id": push.drawn(bigscreen.PUSH), "property": "data", "value": None}
    shown = call(http, bigscreen.WALL, wall, [lang, {"id": "bs-range", "property": "data",
                                                     "value": "30d"}, wall_at])
    assert set(shown) == {o.component_id for o in bigscreen.WALL.values()}
    stopped = call(http, bigscreen.WALL, wall, [lang, {"id": "bs-range", "property": "data",
                                                       "value": "fortnight"}, wall_at])
    assert set(stopped) == {"bs-banner"}


def test_filters_are_hashable_and_read_once_per_view(monkeypatch, city_engine):
    """The view cache is keyed by the filters themselves (no second parse of strings)."""
    from layers import view as views

    seen: list[Filters] = []
    real = views.view

    def spy(engine, filters, *args, **kwargs):
        seen.append(filters)
        return real(engine, filters, *args, **kwargs)

    monkeypatch.setattr(views, "view", spy)
    cache = views.ViewCache(seconds=30)
    asked = state.parse(LINK).filters
    first = cache.view(city_engine, asked, ZONE, {"units"}, CENTRE, None)
    again = cache.view(city_engine, state.parse(LINK).filters, ZONE, {"units"}, CENTRE, None)
    assert again is first and seen == [asked] and hash(asked) == hash(seen[0])

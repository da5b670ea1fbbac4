"""Fuzzing the read side: hypothesis on every parser of request parameters, and
schemathesis against the served OpenAPI document as a street official, checking that no
answer is a server error and none holds data outside the official's street."""

from __future__ import annotations

import contextlib
import math
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dashboard import state
from layers import api
from layers.cases import raw_where, rollup_where
from layers.catalog import default_catalog
from layers.errors import BadParameter
from layers.features import MAX_LIMIT, where_for
from layers.filters import (
    CASE_STATUSES,
    DEVICE_STATUSES,
    RANGES,
    Filters,
    Where,
    parse_filters,
)
from layers.scope import Scope

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
    assert set(filters.statuses) <= set(CASE_STATUSES)
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
    view = state.parse(search)
    assert view.range in state.RANGES and view.metric in state.METRICS
    assert view.lang in ("zh", "en") and set(view.layers) <= set(state.LAYERS)
    assert set(view.status) <= set(CASE_STATUSES)
    again = state.parse(view.query())
    assert again.params() == view.params()
    assert (again.layers, again.metric, again.lang) == (view.layers, view.metric, view.lang)
    with contextlib.suppress(BadParameter):  # what the page sends is parsed like any request
        parse_filters(view.params(), "Asia/Shanghai", NOW)


HOSTILE = st.sampled_from([
    "'", "''", "' OR '1'='1", "x'); DROP TABLE case_event; --", "\\", '"', ":scope", "%s",
    "%(scope)s", "$1", "/* */", "\x00", "\u2019", ":level", "TRUE",
]).flatmap(lambda bad: st.text(max_size=6).map(lambda s: f"{s}{bad}{s}"))


def _wheres(code: str, category: str, channel: str, level: int) -> list[Where]:
    """Every WHERE builder of the read side, on filters holding the given values."""
    filters = Filters(scope=code, categories=(category,), channels=(channel,), kinds=(code,),
                      statuses=CASE_STATUSES, device_statuses=DEVICE_STATUSES,
                      bbox=(1.0, 2.0, 3.0, 4.0), start=NOW, end=NOW.replace(year=2026))
    scope = Scope(code if level else None, "x", level, None, 1.0, ())
    wheres = [raw_where(filters, scope), *(rollup_where(filters, lv, code, parent, "Asia/Shanghai")
                                          for lv in (1, 4) for parent in (False, True))]
    return wheres + [where_for(layer, scope, filters) for layer in default_catalog()]


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

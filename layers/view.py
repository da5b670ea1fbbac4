"""Everything one dashboard view shows, read in one go: the scope's KPIs and children,
the children's shapes, the optional layers, the latest cases and the active alarms.

The dashboard calls this with the URL's parameters and draws the :class:`View` it returns:
the contract between the two sides, typed here (its parts are plain dicts and lists, typed
as TypedDicts, so that a view is cheap to cache and to serialise).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, is_dataclass, replace
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import Connection, Engine, text

from layers import alarms as alarm_list
from layers import backlog as stock
from layers import hotspots as hot
from layers import supervision
from layers.access import scope_for
from layers.admin import units
from layers.bins import case_bins
from layers.cases import local_zone, raw_where
from layers.catalog import default_catalog
from layers.changes import moved
from layers.errors import BadParameter
from layers.features import map_points, one
from layers.filters import Filters
from layers.freshness import DEFAULT_THRESHOLDS, Thresholds, elsewhere, feeds
from layers.kpi import point_counts, with_children
from layers.roster import case_workers
from layers.scope import Scope
from layers.times import iso
from onemap import aggregates as agg
from onemap.principal import Principal
from onemap.settings import DUE_SOON_HOURS

# Individual case points only below the street level (a community holds a few thousand);
# above it they are binned with their counts.
CASE_POINTS_FROM_LEVEL = 3
LIST_LIMIT = 50
ZOOM_FOR_LEVEL = {0: 10, 1: 11, 2: 12, 3: 13.5, 4: 15}
LISTED = ("c.id, c.reported_at, c.category_1, c.category_2, c.channel, c.status, "
          "c.deadline, c.closed_at, c.address, c.grid_code, c.community_code")
LATEST = f"SELECT {LISTED} FROM case_event c WHERE {{where}} ORDER BY {{order}} LIMIT :limit"
# The backlog's overdue cases and those due soon, newest reported first, at most :overdue
# and :due_soon of each (overdue first): numbered within each kind, so that many of one
# kind never crowd out the other.
DUE_CASES = f"""
SELECT * FROM (
    SELECT {LISTED}, row_number() OVER (PARTITION BY c.deadline < now()
                                        ORDER BY c.reported_at DESC, c.id) AS nth
    FROM case_event c WHERE {{where}}
) d
WHERE nth <= CASE WHEN deadline < now() THEN :overdue ELSE :due_soon END
ORDER BY deadline >= now(), reported_at DESC, id
"""
# The case table's orders: the newest cases of the range, or the backlog (the open cases
# now, whatever the range) most overdue first.
CASE_ORDERS = {"latest": "c.reported_at DESC, c.id",
               "overdue": "c.deadline ASC NULLS LAST, c.reported_at, c.id"}


Feature = dict[str, Any]            # a GeoJSON Feature
FeatureCollection = dict[str, Any]  # a GeoJSON FeatureCollection (``numberMatched`` …)


class Unit(TypedDict):
    """An admin unit by code (None: the whole area), name and level (1 district … 4 grid)."""

    code: str | None
    name: str
    level: int


class Period(TypedDict):
    """The flows' period: local midnights as ISO text; None: open on that side."""

    start: str | None
    end: str | None


class Backlog(TypedDict):
    """When the backlog was counted (the database's now), the due-soon horizon, and the
    open cases by the stage they wait at (``layers.backlog.STAGES``)."""

    now: str
    soon_hours: float
    stages: dict[str, int]


class Figures(TypedDict):
    """A unit's KPIs: the period's flows (``layers.summary.summarize``) and the backlog now
    (``layers.backlog.COUNTS``); rates are 0–1 or None when nothing to divide by."""

    total: int
    closed: int
    above_grid: int
    on_time_rate: float | None
    same_day_rate: float | None
    within_3d_rate: float | None
    median_hours: float | None
    median_approx: bool
    satisfaction: float | None
    resolution: dict[str, float | None]
    open: int
    overdue: int
    due_soon: int


class Days(TypedDict):
    """A compared period: its local midnights (ISO text, end exclusive) and last day."""

    start: str
    end: str
    last: str


class Change(TypedDict):
    """A flow's change against a compared period (``layers.comparison.change``): ``by``
    in its ``unit`` ("percent", "points", "score"; None: nothing to compare) and whether
    that is "better" or "worse" (None: unchanged, a volume, or nothing to compare)."""

    by: float | None
    unit: str
    verdict: str | None


class Compared(TypedDict):
    """环比 (``previous``) or 同比 (``year_before``): the compared period and its flows
    (``layers.comparison.FLOWS``) with each one's change; or none, with the ``reason``
    ("open", "not_days", "before_data": the data begins on ``data_from``)."""

    period: Days | None
    reason: str | None
    data_from: str | None
    figures: dict[str, float | None] | None
    changes: dict[str, Change] | None


class Child(Figures):
    """A child unit with its KPIs, as the choropleth colours it."""

    code: str
    name: str
    area_km2: float
    per_km2: float | None


class Count(TypedDict):
    key: str
    n: int


class Point(TypedDict):
    period: str  # the day, or the week's Monday
    n: int


class TrendPoint(Point, total=False):
    partial: bool  # a week only partly inside the range …
    days: int      # … with this many of its days inside


class Trend(TypedDict):
    unit: str  # "day" or "week"
    points: list[TrendPoint]


class Devices(TypedDict):
    devices: int
    online: int
    offline: int
    alarm: int
    online_rate: float | None


class Due(TypedDict):
    due: str      # "overdue" or "due_soon"
    hours: float  # past the deadline, or left


class CaseRow(TypedDict):
    """A row of the case table (times as local ISO text)."""

    id: str
    reported_at: str
    category_1: str
    category_2: str | None
    channel: str
    status: str
    deadline: str | None
    closed_at: str | None
    address: str | None
    grid_code: str | None
    community_code: str | None
    due: Due | None


class Feed(TypedDict):
    newest: str
    age_s: int
    limit_s: int
    stale: bool


class Elsewhere(TypedDict):
    """A period without cases: the scope's newest case and the shortest range holding it."""

    newest: str
    range: str


@dataclass(frozen=True)
class View:
    """Everything one dashboard view shows, as ``who`` may see it."""

    scope: Unit
    source: str                     # where the flows were counted: "rollup" or "cases"
    period: Period
    backlog: Backlog
    cases: Figures                  # the scope's own KPIs
    compare: dict[str, Compared]    # its flows' 环比 and 同比 (layers.comparison.KINDS)
    channels: list[Count]           # the channel mix, largest first
    categories: list[Count]         # the top categories
    trend: Trend
    weekday_hours: list[list[int]]  # reports by local weekday (Monday first) and hour
    iot: Devices
    facilities: dict[str, int]      # facilities by kind
    children: list[Child]           # the drill-down's next level, in code order
    units: FeatureCollection        # the children's shapes (the unit's own at the grid)
    breadcrumb: list[Unit]
    bbox: tuple[float, float, float, float] | None
    latest: list[CaseRow]
    alarms: list[Feature]           # devices in alarm, at most ``ReadLimits.alarms``
    alarms_total: int
    alarms_open: int                # of those, the alarms nobody has acknowledged
    focus: Feature | None           # the device a click on an alarm shows
    layers: dict[str, FeatureCollection]  # the optional map layers switched on
    feeds: dict[str, Feed]          # each feed's newest event and whether it is stale
    elsewhere: Elsewhere | None
    # The wall's overdue and due-soon cases (:func:`due_cases`); read for the wall only.
    ticker: list[CaseRow] = field(default_factory=list)


@dataclass(frozen=True)
class ReadLimits:
    """How much of a view is read: at most ``points`` points of a map layer (a layer's
    ``keep`` rows, the alarms, are drawn whatever their number) and ``alarms`` rows of the
    alarm list. What is left out is counted, and the page says so."""

    points: int = 10_000
    alarms: int = 200


def view(engine: Engine, filters: Filters, zone: str, layers: set[str],
         who: Principal, *, device: str | None = None, order: str = "latest",
         reads: ReadLimits = ReadLimits(), thresholds: Thresholds = DEFAULT_THRESHOLDS,
         soon_hours: float = DUE_SOON_HOURS, ticker: Mapping[str, int] | None = None,
         hours: bool = True) -> View:
    """The data of one view as ``who`` may see it (``ticker``: how many of the backlog's
    newest overdue and due-soon cases to read, for the wall, see :func:`due_cases`;
    ``hours``: whether to read the weekday × hour grid, which the wall does not show and
    which reads the cases themselves):
    ``filters`` as read
    (``layers.filters.read_filters``: their period is placed here, in the zone the
    aggregates count days in); ``layers`` names the optional map layers switched on;
    ``device`` a device to show on the map (``focus``); ``order`` the case table's
    (``CASE_ORDERS``); times are in the deployment's ``zone``; ``thresholds`` say when a
    feed is stale and a device offline; open cases due within ``soon_hours`` are due
    soon."""
    with engine.connect() as conn:
        days = local_zone(conn, zone)  # the zone the aggregates count days in
        filters = replace(filters.resolved(days),
                          device_offline_after=thresholds.device_offline)
        scope = scope_for(conn, who, filters.scope)
        figures = with_children(conn, scope, filters, days, soon_hours, clock=zone,
                                hours=hours)
        now = datetime.fromisoformat(figures["backlog"]["now"])
        drawn = _layers(conn, scope, filters, days, layers, reads.points)
        cases = drawn.get("cases")
        if cases and not cases.get("binned"):  # points, not bins: each its own mark
            _mark_points(cases, now, soon_hours)
        return View(
            **figures, units=shapes(conn, scope),
            breadcrumb=[{"code": c, "name": n, "level": lv} for c, n, lv in scope.breadcrumb],
            bbox=scope.bbox,
            latest=latest_cases(conn, scope, filters, zone, now, soon_hours,
                                order=order),
            ticker=(due_cases(conn, scope, filters, zone, now, soon_hours, ticker)
                    if ticker else []),
            elsewhere=(elsewhere(conn, scope, filters, days)
                       if figures["cases"]["total"] == 0 else None),
            **_devices_now(conn, scope, filters, zone, drawn, "iot" in layers, device, reads,
                           thresholds, counts=False))  # with_children counted them


# What a view shows of the IoT feed, all of it read by _devices_now: a device's status
# changed (the IoT version moved) changes these and nothing else.
DEVICE_PARTS = ("iot", "facilities", "alarms", "alarms_total", "alarms_open", "focus", "layers",
                "feeds")


def _devices_now(conn: Connection, scope: Scope, filters: Filters, zone: str, drawn: dict,
                 with_layer: bool, device: str | None, reads: ReadLimits,
                 thresholds: Thresholds, counts: bool = True) -> dict:
    """A view's :data:`DEVICE_PARTS` (``drawn``: its other map layers; ``with_layer``:
    whether the devices' own is switched on; ``counts``: whether to count devices and
    facilities, the parts :func:`layers.kpi.point_counts` reads)."""
    alarms = alarm_list.active_alarms(conn, scope, filters, reads.alarms)
    if with_layer:
        drawn = {**drawn, "iot": map_points(conn, default_catalog().get("iot-devices"),
                                            scope, filters, reads.points)}
    return {**(point_counts(conn, scope, filters) if counts else {}),
            "alarms": alarms["features"], "alarms_total": alarms["numberMatched"],
            "alarms_open": alarms["numberOpen"],
            "focus": alarm_list.device(conn, scope, device) if device else None,
            "layers": drawn, "feeds": feeds(conn, thresholds, zone)}


def with_devices_now(engine: Engine, data: View, filters: Filters, zone: str,
                     who: Principal, *, device: str | None = None,
                     reads: ReadLimits = ReadLimits(),
                     thresholds: Thresholds = DEFAULT_THRESHOLDS) -> View:
    """``data`` (a :func:`view` of these filters, device and reads) with its
    :data:`DEVICE_PARTS` read again: the view after a change of devices' status alone, in
    a few statements instead of the whole view's."""
    with engine.connect() as conn:
        days = local_zone(conn, zone)
        filters = replace(filters.resolved(days),
                          device_offline_after=thresholds.device_offline)
        scope = scope_for(conn, who, filters.scope)
        return replace(data, **_devices_now(conn, scope, filters, zone, data.layers,
                                            "iot" in data.layers, device, reads, thresholds))


class ViewCache:
    """Views read in the last few seconds, shared by the requests of one process.

    Many screens show the same view at once (wall screens touring the same streets, the
    officials of one street, a shared link): a view read once is answered again for
    ``seconds`` without the twenty-odd queries. The key holds everything the answer depends
    on: the filters, device and case order, the layers, the time zone, the data's version
    (``layers.changes``: a load, a case written or a device's status changed since shows at
    once), and the asker's role, own unit and personal-data right,
    so principals with different scopes or rights never share an entry. Identical requests
    arriving together wait for the first one instead of each querying. Failures are not
    kept. Entries are shared: callers must not change what they get.

    The entries hold at most ``max_bytes`` (their :func:`footprint`): a view of the district
    with its layers is several megabytes, so a count of entries bounds nothing. The least
    recently used go first; expired ones are dropped at every use, not only when pushed out.
    """

    def __init__(self, seconds: float = 15.0, max_bytes: int = 64 * 2**20,
                 reads: ReadLimits = ReadLimits(),
                 thresholds: Thresholds = DEFAULT_THRESHOLDS):
        self.seconds, self.max_bytes, self.reads = seconds, max_bytes, reads
        self.thresholds = thresholds
        self.nbytes = 0
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, tuple[float, int, View]] = OrderedDict()
        self._pending: dict[tuple, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def view(self, engine: Engine, filters: Filters, zone: str, layers: set[str],
             who: Principal, version: object, soon_hours: float = DUE_SOON_HOURS,
             *, device: str | None = None, order: str = "latest",
             ticker: Mapping[str, int] | None = None, hours: bool = True,
             since: str | None = None) -> View:
        """:func:`view`, from the cache when a fresh entry exists (``version``: the data's
        version read before, :func:`layers.changes.current`). ``since``: the version the
        asker's view was drawn at; when the cache holds that view and only the IoT feed
        moved since, the new view is that one with its device parts read again
        (:func:`with_devices_now`)."""
        asked = {"device": device, "order": order, "reads": self.reads,
                 "thresholds": self.thresholds, "soon_hours": soon_hours, "ticker": ticker,
                 "hours": hours}
        if self.seconds <= 0 or self.max_bytes <= 0:
            return view(engine, filters, zone, layers, who, **asked)

        def key(at: object) -> tuple:
            return (who.role, who.scope, who.personal, zone, at, frozenset(layers), soon_hours,
                    filters, device, order, tuple(sorted((ticker or {}).items())), hours)

        def read() -> View:
            with self._lock:
                was = (self._fresh(key(since))
                       if since is not None and moved(since, version) == {"iot"} else None)
            if was is None:
                return view(engine, filters, zone, layers, who, **asked)
            return with_devices_now(engine, was, filters, zone, who, device=device,
                                    reads=self.reads, thresholds=self.thresholds)

        return self._cached(key(version), read)

    def _cached(self, key: tuple, read) -> View:
        """The fresh entry of ``key``, else ``read()`` kept there."""
        with self._lock:
            found = self._fresh(key)
            if found is not None:
                return found
            first = self._pending.setdefault(key, threading.Lock())
        with first:  # the first asker reads; the others wait and take its answer
            with self._lock:
                found = self._fresh(key)
            if found is not None:
                return found
            try:
                data = read()
                self._keep(key, data, footprint(data))
            finally:
                with self._lock:
                    self._pending.pop(key, None)
        return data

    def _fresh(self, key: tuple) -> View | None:
        self._sweep()
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[2]

    def _keep(self, key: tuple, data: View, size: int) -> None:
        """Add an entry, then drop the least recently used until all fit (a view larger
        than the whole cache is not kept)."""
        if size > self.max_bytes:
            return
        with self._lock:
            self._sweep()
            self._drop(key)
            self._entries[key] = (time.monotonic() + self.seconds, size, data)
            self.nbytes += size
            while self.nbytes > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def _sweep(self) -> None:
        """Drop every expired entry (called with the lock held)."""
        now = time.monotonic()
        for key in [k for k, (expires, _, _) in self._entries.items() if expires < now]:
            self._drop(key)

    def _drop(self, key: tuple) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.nbytes -= entry[1]


def footprint(value) -> int:
    """About the bytes a view's data holds in memory (what the view cache bounds): every
    object reached from it, counted once; of a long list (the features of a point layer) an
    even sample of ``SAMPLE`` items is measured and scaled up, which on the demo city's views
    comes within 5 % (above) of counting all and takes a tenth of the time."""
    return _size(value, set())


SAMPLE = 32


def _size(value, seen: set[int]) -> int:
    if id(value) in seen:
        return 0
    seen.add(id(value))
    size = sys.getsizeof(value)
    if is_dataclass(value) and not isinstance(value, type):  # a View: its fields
        return size + _size(vars(value), seen)
    if isinstance(value, dict):
        members = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple | set | frozenset):
        members = list(value)
    else:
        return size
    if len(members) <= 2 * SAMPLE:
        return size + sum(_size(member, seen) for member in members)
    step = len(members) / SAMPLE
    sample = sum(_size(members[int(i * step)], seen) for i in range(SAMPLE))
    return size + round(sample * len(members) / SAMPLE)


def shapes(conn: Connection, scope: Scope) -> dict:
    """The children's polygons; the unit itself at the grid level or with no children."""
    if scope.child_level is not None:
        shapes = units(conn, level=scope.child_level, parent=scope.code)
        if shapes["features"]:
            return shapes
    return units(conn, level=max(scope.level, 1), code=scope.code)


def _layers(conn, scope: Scope, filters: Filters, zone: str, wanted: set[str],
            point_limit: int) -> dict:
    catalog = default_catalog()
    zoom = ZOOM_FOR_LEVEL[scope.level]
    found: dict = {}
    if "facilities" in wanted:
        found["facilities"] = map_points(conn, catalog.get("facilities"), scope, filters,
                                         point_limit)
    if "hexbins" in wanted:
        found["hexbins"] = hot.hexbins(conn, scope, filters, zoom)
    if "hotspots" in wanted:
        found["hotspots"] = hot.hotspots(conn, scope, filters, "grid", zoom, zone)
    if "cases" in wanted:
        found["cases"] = (map_points(conn, catalog.get("cases"), scope, filters, point_limit)
                          if scope.level >= CASE_POINTS_FROM_LEVEL
                          else case_bins(conn, scope, filters))
    return found


def latest_cases(conn: Connection, scope: Scope, filters: Filters, zone: str,
                 now: datetime, soon_hours: float = DUE_SOON_HOURS, limit: int = LIST_LIMIT,
                 order: str = "latest") -> list[dict]:
    """The case table (times in the local ``zone``): the newest cases of the view, or with
    ``order="overdue"`` the backlog (open cases now under every filter but the range) most
    overdue first; each with its overdue or due-soon ``due`` mark against ``now``
    (:func:`layers.backlog.mark`)."""
    if order not in CASE_ORDERS:
        raise BadParameter("cases", order, f"must be one of {', '.join(CASE_ORDERS)}")
    if order == "overdue":
        filters = replace(filters, start=None, end=None)
    where = raw_where(filters, scope)
    if order == "overdue":
        where.add("c.status = 'open'")
    query = LATEST.format(where=where.sql, order=CASE_ORDERS[order])
    rows = conn.execute(text(query), {**where.params, "limit": limit}).mappings()
    return [_listed(r, zone, now, soon_hours) for r in rows]


def due_cases(conn: Connection, scope: Scope, filters: Filters, zone: str, now: datetime,
              soon_hours: float, most: Mapping[str, int]) -> list[dict]:
    """The backlog's overdue cases, then those due soon (open now under every filter but
    the range, like the backlog's counts), newest reported first, at most ``most["overdue"]``
    and ``most["due_soon"]`` of them, each with its mark against ``now``."""
    where = raw_where(replace(filters, start=None, end=None), scope).add(
        f"(({stock.OVERDUE.format(a='c.')}) OR ({stock.DUE_SOON.format(a='c.')}))")
    rows = conn.execute(text(DUE_CASES.format(where=where.sql)), {
        **where.params, "soon_seconds": soon_hours * 3600,
        "overdue": most.get("overdue", 0), "due_soon": most.get("due_soon", 0)}).mappings()
    return [_listed(r, zone, now, soon_hours) for r in rows]


def _listed(row, zone: str, now: datetime, soon_hours: float) -> dict:
    """A listed case: its times in the local ``zone``, its mark against ``now``."""
    return {**{k: (iso(v, zone) if isinstance(v, datetime) else v) for k, v in row.items()
               if k != "nth"},
            "due": stock.mark(row["status"], row["deadline"], now, soon_hours)}


def _mark_points(collection: dict, now: datetime, soon_hours: float) -> None:
    """Each case point's overdue or due-soon mark, in place of its deadline."""
    for feature in collection["features"]:
        props = feature["properties"]
        props["due"] = stock.mark(props["status"], props.pop("deadline"), now, soon_hours)


def case_detail(engine: Engine, case_id: str, who: Principal, zone: str,
                soon_hours: float = DUE_SOON_HOURS) -> dict:
    """One case of ``who``'s area with its lifecycle stages (times in the local ``zone``),
    its overdue or due-soon mark now and its 督办 and 提醒 (``supervisions``, newest
    first); the reporter masked unless ``who`` holds the grant (kiosks get no personal
    fields); ``workers``: its grid's workers and its handler
    (``layers.roster.case_workers``), their phones likewise."""
    catalog = default_catalog()
    with engine.connect() as conn:
        scope = scope_for(conn, who, None)
        feature = one(conn, catalog.get("cases"), scope, case_id, personal=who.personal,
                      zone=zone)
        case = feature["properties"]
        workers = case_workers(conn, case, scope, who.personal)
        now = stock.database_now(conn)
        urged = supervision.of_case(conn, case["id"], zone)
    deadline = datetime.fromisoformat(case["deadline"]) if case.get("deadline") else None
    return {**case, "now": iso(now, zone), "workers": workers,
            "due": stock.mark(case["status"], deadline, now, soon_hours),
            "supervisions": urged}


def vocabularies(engine: Engine, who: Principal) -> dict[str, list[str]]:
    """Top-level categories and channels of ``who``'s area, for the filter lists, most
    cases first (from the aggregates of their own unit, or its cases where those keep no
    categories: a street official never learns another street's)."""
    with engine.connect() as conn:
        scope = scope_for(conn, who, None)
        unit = {"level": max(scope.level, 1), "code": scope.code}
        if agg.ROLLUP.keeps(scope.level):
            source = (f"FROM {agg.ROLLUP.name} r WHERE r.level = :level AND (CAST(:code AS "
                      f"text) IS NULL OR r.unit_code = :code) GROUP BY 1 "
                      f"ORDER BY {agg.TOTAL.summed()} DESC")
        else:
            source = (f"FROM case_event r WHERE r.{scope.column} = :code "
                      f"GROUP BY 1 ORDER BY count(*) DESC")
        found = {column: [r[0] for r in conn.execute(text(f"SELECT r.{column} {source}"),
                                                     unit)]
                 for column in ("category_1", "channel")}
    return {"categories": found["category_1"], "channels": found["channel"]}


def tour_codes(engine: Engine, who: Principal) -> list[str]:
    """The units one level below ``who``'s own (for the district: its streets), in code
    order: the big screen tours them."""
    with engine.connect() as conn:
        scope = scope_for(conn, who, None)
        return [r[0] for r in conn.execute(text(
            "SELECT code FROM admin_unit WHERE level = :level "
            "AND (CAST(:parent AS text) IS NULL OR parent_code = :parent) ORDER BY code"),
            {"level": scope.level + 1, "parent": scope.code})]


def subcategories(engine: Engine, tops: list[str], who: Principal,
                  limit: int = 300) -> list[str]:
    """The second-level categories under the given top-level ones (the category tree), as
    found in ``who``'s area."""
    if not tops:
        return []
    with engine.connect() as conn:
        scope = scope_for(conn, who, None)
        inside = f"AND c.{scope.column} = :code " if scope.column else ""
        return [r[0] for r in conn.execute(text(
            "SELECT DISTINCT category_2 FROM case_event c WHERE category_1 = ANY(:tops) "
            f"AND category_2 IS NOT NULL {inside}ORDER BY 1 LIMIT :limit"),
            {"tops": tops, "code": scope.code, "limit": limit})]

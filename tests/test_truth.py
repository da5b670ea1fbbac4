"""The truth suite: random views of the demo city, opened in Chromium as each role would open
them, every figure the page shows read from the DOM and compared with an independent
recomputation from the raw tables in pandas (nothing here goes through ``layers/``).

What each figure means is spelled out in :class:`Expected`: flows (received, closed, on
time, satisfaction) count the cases *reported* in the chosen period; the backlog (open,
overdue) is the scope's backlog now, whatever the period; days and times are Beijing's.
The desk's lists are checked too: the hotspot list (grid names, trend, cases, z, order and
its 显示 N / 共 M note) against Gi* recomputed with esda on the grid_neighbour weights and a
Benjamini–Hochberg correction written here (:class:`Hotspots`), and the alarm list against
the device and status-event tables. Then the wall (/bigscreen) of each role at random tour
stops and periods: its cards and every ticker item. All mismatches of all views are
reported together, view by view.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import psycopg
import pytest
from conftest import ensure_user, screenshot
from esda.getisord import G_Local
from libpysal.weights import W
from scipy.stats import norm

pytestmark = [pytest.mark.db, pytest.mark.browser]

ZONE = ZoneInfo("Asia/Shanghai")
VIEWS = 52
SEED = 20261203
RANGES = {"today": 1, "7d": 7, "30d": 30, "90d": 90, "year": None, "all": None}
ROLES = ("admin", "command_center", "street_official", "analyst")
STATUS_LABEL = {"open": "在办", "closed": "已办结", "overdue": "超期未办结",
                "due_soon": "即将超期"}
DUE_SOON = timedelta(hours=24)            # ONEMAP_DUE_SOON_HOURS' default
DEVICE_SILENT = timedelta(minutes=30)     # a device unheard of this long is offline
MEDIAN_TOLERANCE_H = 5 / 60   # or 1 %, whichever is larger (and the 0.1 h shown)
# The hotspot rules of layers/hotspots.py's docstring: hot at a false discovery rate of 5 %,
# with cases of its own, at least 5 around it, its own count above the family's mean at
# 1 %; a trend when the later half's odds differ significantly and by 1.5 times or more.
HOT_ALPHA, CORE_ALPHA, MIN_AROUND, TREND_ODDS = 0.05, 0.01, 5, 1.5
TREND_LABEL = {"persistent": "持续热点", "emerging": "新兴热点", "fading": "消退热点"}
LIST_ROWS = {"hotspot": 30, "alarm": 200}  # rows a desk list shows at most (the note says)
TICKER_CASES = {"overdue": 10, "due_soon": 5}
TICKER_ALARMS = 10
# 环比 and 同比 as the glossary states them: each flow's unit of change and its better side
# (+1 up, -1 down, 0 neither); the words the cards say when there is no number.
COMPARED = ("previous", "year_before")
CHANGE_RULE = {"total": ("percent", 0), "closed": ("percent", 0),
               "on_time_rate": ("points", 1), "same_day_rate": ("points", 1),
               "within_3d_rate": ("points", 1), "median_hours": ("percent", -1),
               "satisfaction": ("score", 1)}
KIND_WORD = {"previous": "环比", "year_before": "同比"}
NO_DATA = {"previous": "无上期数据", "year_before": "无同期数据"}
FROM_ZERO = {"previous": "上期为 0", "year_before": "同期为 0"}
UNIT_WORD = {"percent": "%", "points": "个百分点", "score": "分"}
CACHED_S = 16     # a view is answered from the server's cache for up to 15 s
WALL_STOPS = 3    # tour stops read per role on the wall (its own unit and two below it)


# -- the raw tables, read once ---------------------------------------------------------------
@dataclass
class Raw:
    cases: pd.DataFrame
    units: pd.DataFrame
    devices: pd.DataFrame
    neighbours: dict[str, list[str]]


def _frame(url: str, query: str) -> pd.DataFrame:
    with psycopg.connect(url) as conn:
        cur = conn.execute(query)
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


@pytest.fixture(scope="module")
def raw(city_db) -> Raw:
    cases = _frame(city_db, "SELECT id, reported_at, closed_at, deadline, status, on_time, "
                            "satisfaction, handling_hours, resolved_level, channel, category_1, "
                            "category_2, category_3, category_4, street_code, community_code, "
                            "grid_code FROM case_event")
    for column in ("reported_at", "closed_at", "deadline"):
        cases[column] = pd.to_datetime(cases[column], utc=True).dt.tz_convert(ZONE)
    units = _frame(city_db, "SELECT code, name, level, parent_code FROM admin_unit")
    devices = _frame(city_db, "SELECT id, kind, name, status, last_seen, street_code, "
                              "community_code, grid_code FROM iot_device")
    devices["last_seen"] = pd.to_datetime(devices["last_seen"], utc=True)
    events = _frame(city_db, "SELECT device_id, ts, status FROM iot_event "
                             "WHERE event_type = 'status'")
    devices["since"] = _alarm_since(devices, events)
    acts = _frame(city_db, "SELECT device_id, began_at, acknowledged_by, acknowledged_at, note, "
                           "case_id FROM alarm_action")
    devices["handled"] = [_handled(acts, d.id, d.since) for d in devices.itertuples()]
    neighbours: dict[str, list[str]] = {}
    for grid, near in _frame(city_db, "SELECT grid_code, neighbour_code FROM grid_neighbour"
                             ).itertuples(index=False):
        neighbours.setdefault(grid, []).append(near)
    return Raw(cases, units.set_index("code", drop=False), devices, neighbours)


def _alarm_since(devices: pd.DataFrame, events: pd.DataFrame) -> pd.Series:
    """When each device in alarm began its alarm: its first alarm report after its last
    report of another status (none without such a report, or for a device not in alarm)."""
    events = events.assign(ts=pd.to_datetime(events["ts"], utc=True))
    calm = events[events.status != "alarm"].groupby("device_id").ts.max()
    alarms = events[events.status == "alarm"]
    after = alarms.device_id.map(calm)
    began = alarms[after.isna() | (alarms.ts > after)].groupby("device_id").ts.min()
    return devices.id.map(began).where(devices.status == "alarm")


# -- the views -------------------------------------------------------------------------------
@dataclass
class View:
    role: str
    user: str
    scope: str | None
    range: str
    category: str | None = None
    channel: str | None = None
    status: str | None = None
    start: str | None = None  # custom dates (whole local days, the end day included) …
    end: str | None = None    # … in place of the range

    def query(self) -> str:
        params = {"scope": self.scope, "range": None if self.start else self.range,
                  "start": self.start, "end": self.end, "category": self.category,
                  "channel": self.channel, "status": self.status}
        return "?" + urlencode({k: v for k, v in params.items() if v})


def _views(raw: Raw, official_street: str) -> list[View]:
    """``VIEWS`` random views: a role, a unit it may see, a period and some filters."""
    rng = random.Random(SEED)
    units = raw.units
    views = []
    for i in range(VIEWS):
        role = ROLES[i % len(ROLES)]
        limited = role == "street_official"
        pool = units[units.code.map(lambda c: _street_of(units, c) == official_street)] \
            if limited else units
        level = rng.choice([1, 2, 3, 4] if not limited else [2, 3, 4])
        candidates = sorted(pool[pool.level == level].code)
        scope = rng.choice(candidates)
        view = View(role, f"truth-{role.replace('_', '-')}",
                    None if level == 1 and rng.random() < 0.5 else scope,
                    rng.choice(list(RANGES)))
        in_scope = raw.cases[_scope_mask(raw.cases, units, view.scope)]
        roll = rng.random()
        if roll < 0.3 and len(in_scope):
            view.category = rng.choice(sorted(in_scope.category_1.unique()))
        elif roll < 0.45 and len(in_scope):
            view.channel = rng.choice(sorted(in_scope.channel.unique()))
        if rng.random() < 0.25:
            view.status = rng.choice(["open", "closed", "overdue"])
        views.append(view)
    return views


def _street_of(units: pd.DataFrame, code: str) -> str | None:
    while code is not None and units.at[code, "level"] > 2:
        code = units.at[code, "parent_code"]
    return code if code is not None and units.at[code, "level"] == 2 else None


LEVEL_COLUMN = {2: "street_code", 3: "community_code", 4: "grid_code"}


def _scope_mask(frame: pd.DataFrame, units: pd.DataFrame, scope: str | None) -> pd.Series:
    if scope is None or units.at[scope, "level"] == 1:
        return pd.Series(True, index=frame.index)
    return frame[LEVEL_COLUMN[int(units.at[scope, "level"])]] == scope


# -- what the page must show, recomputed -----------------------------------------------------
@dataclass
class Expected:
    """Every figure of a view, from the raw tables."""

    view: View
    raw: Raw
    now: datetime
    figures: dict = field(default_factory=dict)

    def period(self) -> tuple[datetime | None, datetime | None]:
        if self.view.start:
            first, last = (datetime.fromisoformat(d).date() for d in (self.view.start,
                                                                       self.view.end))
            return (datetime.combine(first, time(), ZONE),
                    datetime.combine(last + timedelta(days=1), time(), ZONE))
        today = self.now.astimezone(ZONE).date()
        tomorrow = datetime.combine(today + timedelta(days=1), time(), ZONE)
        days = RANGES[self.view.range]
        if self.view.range == "all":
            return None, None
        if self.view.range == "year":
            return datetime(today.year, 1, 1, tzinfo=ZONE), tomorrow
        return tomorrow - timedelta(days=days), tomorrow

    def filtered(self, with_period: bool, scoped: bool = True) -> pd.DataFrame:
        """The view's cases (of the whole district unless ``scoped``)."""
        cases, view = self.raw.cases, self.view
        mask = _scope_mask(cases, self.raw.units, view.scope if scoped else None)
        if view.category:
            mask &= cases[["category_1", "category_2", "category_3", "category_4"]].eq(
                view.category).any(axis=1)
        if view.channel:
            mask &= cases.channel == view.channel
        if view.status == "open":
            mask &= cases.status == "open"
        elif view.status == "closed":
            mask &= cases.status == "closed"
        elif view.status == "overdue":
            mask &= (cases.status == "open") & (cases.deadline < self.now)
        if with_period:
            start, end = self.period()
            if start is not None:
                mask &= (cases.reported_at >= start) & (cases.reported_at < end)
        return cases[mask]

    def cards(self) -> dict[str, str]:
        flows = self.filtered(with_period=True)
        backlog = self.filtered(with_period=False)
        backlog = backlog[backlog.status == "open"]
        closed = flows[flows.status == "closed"]
        judged = flows.on_time.dropna()
        same_day = (closed.closed_at.dt.date == closed.reported_at.dt.date).sum()
        within_3d = (closed.closed_at <= closed.reported_at + pd.Timedelta(hours=72)).sum()
        satisfaction = flows.satisfaction.dropna()
        due_soon = (backlog.deadline >= self.now) & (backlog.deadline < self.now + DUE_SOON)
        devices = self.devices_now()
        return {
            "total": f"{len(flows):,}",
            "closed": f"{len(closed):,}",
            "open": f"{len(backlog):,}",
            "overdue": f"{int((backlog.deadline < self.now).sum()):,}",
            "due_soon": f"{int(due_soon.sum()):,}",
            "alarms": f"{int((devices == 'alarm').sum()):,}",
            "iot_online": _pct(int((devices == "online").sum()), len(devices)),
            "on_time_rate": _pct(judged.sum(), len(judged)),
            "same_day_rate": _pct(same_day, len(closed)),
            "within_3d_rate": _pct(within_3d, len(closed)),
            "satisfaction": "—" if satisfaction.empty else f"{satisfaction.mean():.2f}",
        }

    def median_hours(self) -> float | None:
        hours = self.filtered(with_period=True).handling_hours.dropna()
        return None if hours.empty else float(hours.median())

    def flows(self) -> dict:
        """The period's flows as numbers (rates 0–1, None with nothing to divide by)."""
        flows = self.filtered(with_period=True)
        closed = flows[flows.status == "closed"]
        judged = flows.on_time.dropna()
        share = (lambda part, whole: part / whole if whole else None)  # noqa: E731
        satisfaction = flows.satisfaction.dropna()
        hours = flows.handling_hours.dropna()
        return {
            "total": len(flows), "closed": len(closed),
            "on_time_rate": share(int(judged.sum()), len(judged)),
            "same_day_rate": share(int((closed.closed_at.dt.date
                                        == closed.reported_at.dt.date).sum()), len(closed)),
            "within_3d_rate": share(int((closed.closed_at <= closed.reported_at
                                         + pd.Timedelta(hours=72)).sum()), len(closed)),
            "median_hours": None if hours.empty else float(hours.median()),
            "satisfaction": None if satisfaction.empty else float(satisfaction.mean()),
        }

    def compared(self) -> dict[str, tuple[datetime, datetime] | None]:
        """环比 and 同比's periods: the local days of equal number right before the
        period, and the same month-days a year before (29 February as 28 February); none
        for an open period."""
        start, end = self.period()
        if start is None:
            return dict.fromkeys(COMPARED)
        first, last = start.date(), (end - timedelta(days=1)).date()
        days = (last - first).days + 1

        def back(day):
            return day.replace(year=day.year - 1, day=28 if (day.month, day.day) == (2, 29)
                               else day.day)

        midnight = (lambda day: datetime.combine(day, time(), ZONE))  # noqa: E731
        return {"previous": (midnight(first - timedelta(days=days)), midnight(first)),
                "year_before": (midnight(back(first)),
                                midnight(back(last) + timedelta(days=1)))}

    def over(self, start: datetime, end: datetime) -> Expected:
        """The same view over the local days [start, end)."""
        last = (end - timedelta(days=1)).date().isoformat()
        return replace(self, view=replace(self.view, start=start.date().isoformat(), end=last))

    def weekday_hours(self) -> list[list[int]]:
        """The period's cases by local weekday (Monday first) and hour."""
        reported = self.filtered(with_period=True).reported_at
        counts = reported.groupby([reported.dt.day_of_week, reported.dt.hour]).size()
        return [[int(counts.get((day, hour), 0)) for hour in range(24)] for day in range(7)]

    def children(self) -> dict[str, int]:
        """Cases of the period per child unit (the choropleth of the metric 'total')."""
        units, scope = self.raw.units, self.view.scope
        level = 1 if scope is None else int(units.at[scope, "level"])
        flows = self.filtered(with_period=True)
        if level == 4:
            return {scope: len(flows)}
        parent = scope or units[units.level == 1].code.iloc[0]
        codes = units[units.parent_code == parent].code
        counts = flows[LEVEL_COLUMN[level + 1]].value_counts()
        return {code: int(counts.get(code, 0)) for code in codes}

    def trend(self) -> dict[str, int]:
        """Cases per local day (per week from Monday over 120 days), zero days included."""
        flows = self.filtered(with_period=True)
        start, end = self.period()
        if start is None:
            if flows.empty:
                return {}
            first, last = flows.reported_at.min().date(), flows.reported_at.max().date()
        else:
            first, last = start.date(), (end - timedelta(days=1)).date()
        days = pd.date_range(first, last, freq="D")
        weekly = start is None or (end - start).days > 120
        local = flows.reported_at.dt.tz_localize(None).dt.normalize()
        if weekly:
            local = local - pd.to_timedelta(local.dt.day_of_week, unit="D")
            days = pd.DatetimeIndex(sorted({d - timedelta(days=d.weekday()) for d in days}))
        counts = local.value_counts()
        return {d.date().isoformat(): int(counts.get(d, 0)) for d in days}

    def mixes(self) -> tuple[dict[str, int], dict[str, int]]:
        flows = self.filtered(with_period=True)
        return (flows.category_1.value_counts().to_dict(),
                flows.channel.value_counts().to_dict())

    def latest(self, n: int = 20) -> list[tuple[str, str, str]]:
        """(id, local reported time, status words) of the newest cases of the view: an open
        case past its deadline is 超期未办结, one due within a day 即将超期."""
        flows = self.filtered(with_period=True).sort_values(["reported_at", "id"],
                                                            ascending=[False, True])
        return [(r.id, r.reported_at.strftime("%Y-%m-%d %H:%M"), self._words(r))
                for r in flows.head(n).itertuples()]

    def _words(self, case) -> str:
        if case.status == "open" and pd.notna(case.deadline):
            if case.deadline < self.now:
                return STATUS_LABEL["overdue"]
            if case.deadline < self.now + DUE_SOON:
                return STATUS_LABEL["due_soon"]
        return STATUS_LABEL[case.status]

    def alarms(self, now: datetime) -> tuple[str, list[tuple[str, ...]]]:
        """The desk's alarm list: its note and rows (device, where, alarm since, for how
        long, last report, what was done about it), the scope's devices in alarm newest
        alarm first, unknown starts last; durations against ``now``."""
        devices = self.in_alarm()
        rows = [(f"{d.kind} {d.name or ''}".strip(), self.place(d),
                 _local(d.since), "—" if pd.isna(d.since) else _duration(now - d.since),
                 _seen(d.last_seen, now), d.handled)
                for d in devices.head(LIST_ROWS["alarm"]).itertuples()]
        return _note(len(rows), len(devices)), rows

    def in_alarm(self) -> pd.DataFrame:
        devices = self.raw.devices
        devices = devices[_scope_mask(devices, self.raw.units, self.view.scope)
                          & (devices.status == "alarm")]
        return devices.assign(known=devices.since.notna()).sort_values(
            ["known", "since", "id"], ascending=[False, False, True])

    def place(self, device) -> str:
        """Where a device is, as the lists name it: its grid, else its community."""
        for code in (device.grid_code, device.community_code):
            if code in self.raw.units.index:
                return self.raw.units.at[code, "name"]
        return ""

    def ticker(self, now: datetime) -> list[tuple[str, str]]:
        """The wall's ticker items (class, words) at ``now``: the scope's overdue cases now,
        then those due soon, newest reported first (whatever the period: they are the
        backlog the cards beside them count), each with how long over or left; before them
        the newest alarms with when each began (its last report when that is unknown); a
        placeholder when there is nothing."""
        backlog = self.filtered(with_period=False)
        backlog = backlog[backlog.status == "open"].sort_values(
            ["reported_at", "id"], ascending=[False, True])
        left = backlog.deadline - now
        items = []
        for d in self.in_alarm().head(TICKER_ALARMS).itertuples():
            grid = self.raw.units.at[d.grid_code, "name"] \
                if d.grid_code in self.raw.units.index else ""
            when = (f"告警于 {_local(d.since)}" if pd.notna(d.since)
                    else _seen(d.last_seen, now))
            items.append(("tick alarm", f"● {d.kind} {grid} {when}"))
        for due, chosen in (("overdue", left < pd.Timedelta(0)),
                            ("due_soon", (left >= pd.Timedelta(0)) & (left < DUE_SOON))):
            for c in backlog[chosen].head(TICKER_CASES[due]).itertuples():
                mark, span = ("⚠", f"超期 {_span(now - c.deadline)}") if due == "overdue" \
                    else ("△", f"剩 {_span(c.deadline - now)}")
                items.append((f"tick case {due}",
                              f"{mark} {STATUS_LABEL[due]} {c.id} {c.category_1}/"
                              f"{c.category_2 or ''} · {span}"))
        return [(kind, " ".join(words.split())) for kind, words in items] or [
            ("tick", "最新告警与超期")]

    def devices_now(self) -> pd.Series:
        """Each device of the scope's status now: an alarm stays an alarm, a device not
        heard of for ``DEVICE_SILENT`` is offline, else what it last said."""
        devices = self.raw.devices
        devices = devices[_scope_mask(devices, self.raw.units, self.view.scope)]
        silent = devices.last_seen.isna() | (devices.last_seen < self.now - DEVICE_SILENT)
        return devices.status.where((devices.status == "alarm") | ~silent, "offline")


def _pct(part: int, whole: int) -> str:
    return "—" if not whole else f"{part / whole * 100:.1f}%"


def _note(shown: int, total: int) -> str:
    """A list's note: 共 M 条, or 显示 N / 共 M when it shows fewer."""
    return f"共 {total:,} 条" if shown >= total else f"显示 {shown:,} / 共 {total:,}"


def _local(moment) -> str:
    """A time as the screen shows it, in Beijing time (— for none)."""
    return "—" if pd.isna(moment) else moment.astimezone(ZONE).strftime("%Y-%m-%d %H:%M")


def _handled(acts: pd.DataFrame, device: str, since) -> str:
    """What the alarm list says was done about a device's alarm (its row of alarm_action,
    matched by the alarm's start): 未确认, or 已确认 · who · when (· note), and its case."""
    if pd.isna(since):
        return "未确认"
    began = pd.to_datetime(acts.began_at, utc=True)
    mine = acts[(acts.device_id == device) & (began == since)]
    if mine.empty:
        return "未确认"
    act = mine.iloc[0]
    text = f"已确认 · {act.acknowledged_by} · {_local(pd.Timestamp(act.acknowledged_at))}"
    text += f" · {act.note}" if act.note else ""
    return text + (f"\n已转工单 {act.case_id}" if act.case_id else "")


def _duration(span: timedelta) -> str:
    """An alarm's age as the lists say it: days and hours, hours and minutes, or minutes,
    each rounded down."""
    minutes = max(int(span.total_seconds() // 60), 0)
    if minutes >= 1440:
        return f"{minutes // 1440}天{minutes // 60 % 24}小时"
    if minutes >= 60:
        return f"{minutes // 60}小时{minutes % 60}分"
    return f"{minutes}分钟"


def _seen(moment, now: datetime) -> str:
    """A device's last report: its local time and how long ago."""
    return "—" if pd.isna(moment) else f"{_local(moment)} ({_duration(now - moment)}前)"


def _span(span: timedelta) -> str:
    """How long over or left of a deadline: days and hours, hours, or minutes (down)."""
    minutes = int(span.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes}分钟"
    if minutes < 1440:
        return f"{minutes // 60}小时"
    return f"{minutes // 1440}天{minutes % 1440 // 60}小时"


# -- hotspots, judged again ------------------------------------------------------------------
class Hotspots:
    """The desk's hotspot list recomputed: every grid of the district judged on the view's
    cases (the scope only picks the rows shown) with esda's Gi* on the grid_neighbour
    weights (binary, the grid among its own neighbours), two-sided normal p-values and a
    Benjamini–Hochberg correction written here; the period's halves judged the same way
    give the trend (rules: layers/hotspots.py's docstring). One judgement per filter set."""

    def __init__(self, raw: Raw):
        self.raw = raw
        grids = raw.units[raw.units.level == 4]
        assert (raw.units.level == 1).sum() == 1  # one district: one context of grids
        self.codes = sorted(grids.code)
        self.weights = W({c: raw.neighbours.get(c, []) for c in self.codes},
                         id_order=self.codes, silence_warnings=True)
        self.adjacency = self.weights.sparse
        self.labels = {c: _grid_label(raw.units, c) for c in self.codes}
        self.judged: dict[tuple, pd.DataFrame] = {}

    def rows(self, want: Expected) -> tuple[str, list[tuple[str, str, str, float]]]:
        """The list's note and rows (name, cases, trend, z), hottest first."""
        view = want.view
        key = (view.range, view.category, view.channel, view.status)
        if key not in self.judged:
            self.judged[key] = self.judge_all(want)
        grids = self.judged[key]
        grids = grids[grids.trend.notna()]
        units, scope = self.raw.units, view.scope
        if scope is not None and units.at[scope, "level"] > 1:
            inside = {2: "street", 3: "community", 4: "code"}[int(units.at[scope, "level"])]
            grids = grids[grids[inside] == scope]
        grids = grids.sort_values(["z", "code"], ascending=[False, True])
        rows = [(self.labels[g.code], str(int(g.n)), TREND_LABEL[g.trend], float(g.z))
                for g in grids.head(LIST_ROWS["hotspot"]).itertuples()]
        return _note(len(rows), len(grids)), rows

    def judge_all(self, want: Expected) -> pd.DataFrame:
        """Each grid's cases, Gi* and trend (None: not hot) under the view's filters."""
        cases = want.filtered(with_period=True, scoped=False)
        cases = cases[cases.grid_code.notna()]
        middle = self.middle(want)
        counts = {name: cases[part].grid_code.value_counts().reindex(
                      self.codes, fill_value=0).to_numpy(dtype=float)
                  for name, part in (("all", slice(None)),
                                     ("early", cases.reported_at < middle),
                                     ("late", cases.reported_at >= middle))}
        z, hot = self.judge(counts["all"])
        hot_early, hot_late = self.judge(counts["early"])[1], self.judge(counts["late"])[1]
        trend = _trends(counts["all"], counts["late"], hot | hot_early | hot_late)
        # A hotspot is hot where its trend says: persistent over the whole period, emerging
        # in the later half (or the period), fading in the earlier half (or the period).
        hot_when = {"persistent": hot, "emerging": hot | hot_late, "fading": hot | hot_early}
        trend = [t if t and hot_when[t][i] else None for i, t in enumerate(trend)]
        units = self.raw.units
        community = units.loc[self.codes, "parent_code"].to_numpy()
        return pd.DataFrame({
            "code": self.codes, "n": counts["all"], "z": z, "trend": trend,
            "community": community,
            "street": units.loc[community, "parent_code"].to_numpy()})

    def middle(self, want: Expected) -> datetime:
        """Where the period's halves meet: the local midnight of its middle (of the data's
        whole span when the period is open), from four weeks on the nearest Monday."""
        start, end = want.period()
        if start is None:
            start, end = self.raw.cases.reported_at.min(), self.raw.cases.reported_at.max()
        day = (start + (end - start) / 2).astimezone(ZONE).date()
        if end - start >= timedelta(days=28):
            day += timedelta(days=-day.weekday() if day.weekday() < 4 else 7 - day.weekday())
        return datetime.combine(day, time(), ZONE)

    def judge(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gi* z-scores of ``counts`` and which grids are hot."""
        if counts.std() == 0:
            return np.zeros(len(counts)), np.zeros(len(counts), dtype=bool)
        z = G_Local(counts, self.weights, transform="B", star=True, permutations=0).Zs
        q = _bh(2 * norm.sf(np.abs(z)))
        around = counts + self.adjacency @ counts
        own = (counts - counts.mean()) / counts.std()
        own_q = _bh(2 * norm.sf(np.abs(own)))
        hot = ((q <= HOT_ALPHA) & (z > 0) & (counts > 0) & (around >= MIN_AROUND)
               & (own_q <= CORE_ALPHA) & (own > 0))
        return z, hot


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values: p × m / rank, made monotone from the largest down."""
    p = np.asarray(p, dtype=float)
    if not len(p):
        return p
    order = np.argsort(p)
    scaled = p[order] * len(p) / np.arange(1, len(p) + 1)
    q = np.empty(len(p))
    q[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return q


def _trends(whole: np.ndarray, late: np.ndarray, hot: np.ndarray) -> list[str | None]:
    """A hot grid's trend: its later half's share of its cases against the other grids'
    (binomial z, corrected over the hot grids), emerging or fading when significant at
    5 % and the odds differ 1.5 times or more, else persistent."""
    trend: list[str | None] = [None] * len(whole)
    if not hot.any():
        return trend
    rest = ~hot if whole[~hot].sum() else np.ones(len(hot), dtype=bool)
    p0 = late[rest].sum() / whole[rest].sum() if whole[rest].sum() else 0.5
    if not 0 < p0 < 1:
        return ["persistent" if h else None for h in hot]
    n, k = whole[hot], late[hot]
    z = (k - n * p0) / np.sqrt(n * p0 * (1 - p0))
    odds = ((k + 0.5) / (n - k + 0.5)) / (p0 / (1 - p0))
    changed = (_bh(2 * norm.sf(np.abs(z))) <= HOT_ALPHA) & (
        np.abs(np.log(odds)) >= np.log(TREND_ODDS))
    for i, grid in enumerate(np.flatnonzero(hot)):
        trend[grid] = ("emerging" if z[i] > 0 else "fading") if changed[i] else "persistent"
    return trend


def _grid_label(units: pd.DataFrame, code: str) -> str:
    """A grid as the list names it: its name, with its community's in front unless the
    name holds it already (六和社区第12网格)."""
    name, parent = units.at[code, "name"] or "", units.at[code, "parent_code"]
    community = (units.at[parent, "name"] if parent in units.index else None) or ""
    stem = re.sub("(社区)?(居委会)?$", "", community)
    if not (community and name):
        return name or community
    return name if stem and stem in name else f"{community} {name}"


# -- what the page shows ---------------------------------------------------------------------
READ_FIGURE = """sel => { const gd = document.querySelector(sel + ' .js-plotly-plot');
    if (!gd || !gd.data) return null;
    const arr = v => v === undefined || v === null ? null : Array.from(v);
    return gd.data.map(t => ({type: t.type, name: t.name, x: arr(t.x), y: arr(t.y),
        z: arr(t.z), locations: arr(t.locations), labels: arr(t.labels),
        values: arr(t.values)})); }"""


DELTAS_JS = """() => ({
    deltas: Object.fromEntries([...document.querySelectorAll('#kpi-cards .delta')].map(
        e => [e.id.slice(6), {by: e.querySelector('.by').innerText.trim(),
                              cls: e.className}])),
    titles: Object.fromEntries([...document.querySelectorAll('#kpi-cards .card[id^=card-]')]
        .map(e => [e.id.slice(5), e.title]))})"""


# The pages keep one ask for the data's version open (held until the data changes), so the
# network is never idle: a page is settled when no Dash callback request has been in flight
# for half a second.
_COUNT_CALLBACKS = """if (!window.__callbacks) {
  window.__callbacks = {pending: 0, quiet: performance.now()};
  const fetch = window.fetch;
  window.fetch = (...args) => {
    const url = String(args[0] && args[0].url || args[0]);
    if (!url.includes('_dash-update-component')) return fetch(...args);
    window.__callbacks.pending += 1;
    const done = () => { window.__callbacks.pending -= 1;
                         window.__callbacks.quiet = performance.now(); };
    return fetch(...args).finally(done);
  };
}"""
_instrumented: set[int] = set()


def _settled(page) -> None:
    """Wait until the page's Dash callbacks have all answered (none for 500 ms)."""
    page.wait_for_function(
        "() => window.__callbacks && window.__callbacks.pending === 0"
        " && performance.now() - window.__callbacks.quiet > 500", timeout=60_000)


def _instrument(page) -> None:
    if id(page) not in _instrumented:
        page.add_init_script(_COUNT_CALLBACKS)
        _instrumented.add(id(page))


def _open(page, base: str, view: View) -> None:
    _instrument(page)
    page.goto(base + "/" + view.query())
    page.wait_for_function(
        "() => { const k = document.querySelector('#kpi-total');"
        " const gd = document.querySelector('#map-box .js-plotly-plot');"
        " return k && k.innerText.trim() && gd && gd.data; }", timeout=60_000)
    _settled(page)


def _read(page) -> dict:
    cards = page.evaluate("() => Object.fromEntries([...document.querySelectorAll("
                          "'#kpi-cards [id^=kpi-] ')].filter(e => e.classList.contains('value'))"
                          ".map(e => [e.id.slice(4), e.innerText.trim()]))")
    rows = page.evaluate("() => [...document.querySelectorAll('#case-table tbody tr')]"
                         ".map(r => [...r.querySelectorAll('td')].map(td => td.innerText.trim()))")
    return {"cards": cards, "map": page.evaluate(READ_FIGURE, "#map-box"),
            "trend": page.evaluate(READ_FIGURE, "#chart-trend"),
            "heat": page.evaluate(READ_FIGURE, "#chart-weekday-hours"),
            **page.evaluate(DELTAS_JS),
            "categories": page.evaluate(READ_FIGURE, "#chart-categories"),
            "channels": page.evaluate(READ_FIGURE, "#chart-channels"), "rows": rows,
            "errors": page.evaluate("() => [...document.querySelectorAll('#banner .banner')]"
                                    ".filter(b => !b.classList.contains('stale')"
                                    " && !b.classList.contains('info'))"
                                    ".map(b => b.innerText)")}


LIST_JS = """sel => { const box = document.querySelector(sel);
    const note = box && box.querySelector('.list-note');
    return {note: note ? note.innerText.trim() : null,
            rows: box ? [...box.querySelectorAll('tbody tr')].map(r =>
                [...r.querySelectorAll('td')].map(td => td.innerText.trim())) : null}; }"""


def _read_lists(page) -> dict:
    """The hotspot and alarm lists, each read from its own tab."""
    lists = {}
    for name, tab in (("hotspot", "热点"), ("alarm", "设备告警")):
        page.locator(".tab", has_text=re.compile(f"^{tab}$")).click(timeout=60_000)
        page.wait_for_selector(f"#{name}-count", timeout=60_000)
        lists[name] = page.evaluate(LIST_JS, f"#{name}-list")
    return lists


def _compare_lists(shown: dict, want: Expected, hotspots: Hotspots,
                   moments: tuple[datetime, ...]) -> list[str]:
    """Every difference in the hotspot and alarm lists (alarm ages: at one of
    ``moments``, the page's clock being between them)."""
    problems = []
    note, rows = hotspots.rows(want)
    hot = shown["hotspot"]
    if hot["note"] != note:
        problems.append(f"hotspot note: shown {hot['note']!r}, raw {note!r}")
    drawn = [tuple(r) for r in hot["rows"] or []]
    if [r[:3] for r in drawn] != [r[:3] for r in rows] or len(drawn) != len(rows):
        problems.append(f"hotspots: shown {drawn[:4]}…, raw {rows[:4]}…")
    for row, (name, _, _, z) in zip(drawn, rows, strict=False):
        if not _z_shown(row[3], z):
            problems.append(f"hotspot {name}: z shown {row[3]}, esda {z:.5f}")
    alarms = shown["alarm"]
    expected = [want.alarms(now) for now in moments]
    if alarms["note"] != expected[0][0]:
        problems.append(f"alarm note: shown {alarms['note']!r}, raw {expected[0][0]!r}")
    drawn = [tuple(r) for r in alarms["rows"] or []]
    if len(drawn) != len(expected[0][1]):
        problems.append(f"alarms: {len(drawn)} rows shown, raw {len(expected[0][1])}")
    for i, row in enumerate(drawn[:len(expected[0][1])]):
        if all(row != rows[i] for _, rows in expected):
            problems.append(f"alarm row {i}: shown {row}, raw {expected[-1][1][i]}")
    return problems


def _z_shown(text: str, z: float) -> bool:
    """``text`` is ``z`` to two decimals (either way when z lies on the rounding edge,
    where esda's and another float computation may part in the last bit)."""
    if text == f"{z:.2f}":
        return True
    edge = abs(abs(z) * 100 % 1 - 0.5) < 1e-6
    return edge and abs(float(text) - z) <= 0.005 + 1e-6


def _compare_deltas(shown: dict, want: Expected) -> list[str]:
    """The cards' 环比 and 同比 arrows and the compared figures in their tooltips against
    the flows of the compared periods recomputed; no arrows for an open period, "no data"
    for a compared period beginning before the data's first day."""
    problems = []
    now = want.flows()
    first_day = want.raw.cases.reported_at.min().date()
    for kind, days in want.compared().items():
        word = KIND_WORD[kind]
        was_flows = None
        for key, (unit, better) in CHANGE_RULE.items():
            chip, title = shown["deltas"].get(f"{kind}-{key}"), shown["titles"].get(key, "")
            where = f"{word} {key}"
            if days is None:
                if chip is not None or f"{word}：无（时段不限起止" not in title:
                    problems.append(f"{where}: an open period shows {chip} / {title!r}")
                continue
            if chip is None:
                problems.append(f"{where}: no arrow")
                continue
            if days[0].date() < first_day:
                if chip["by"] != NO_DATA[kind] or "neutral" not in chip["cls"]:
                    problems.append(f"{where}: shown {chip}, raw {NO_DATA[kind]} (the data "
                                    f"begins {first_day})")
                continue
            was_flows = was_flows or want.over(*days).flows()
            problems += _check_change(where, chip, unit, better, now[key], was_flows[key],
                                      kind)
            said = _flow_text(key, was_flows[key])
            last = (days[1] - timedelta(days=1)).date()
            line = f"{word}（{days[0].date()} 至 {last}）：{said or ''}"
            if key != "median_hours" and line not in title:
                problems.append(f"{where}: tooltip {title!r} lacks {line!r}")
    return problems


def _flow_text(key: str, value) -> str | None:
    """A flow as the card (and the tooltip's compared figure) shows it (the median: None,
    it is within its tolerance, not equal)."""
    if key in ("total", "closed"):
        return f"{value:,}"
    if key == "satisfaction":
        return "—" if value is None else f"{value:.2f}"
    if key == "median_hours":
        return None
    return "—" if value is None else f"{value * 100:.1f}%"


def _check_change(where: str, chip: dict, unit: str, better: int, now, was,
                  kind: str) -> list[str]:
    """One arrow against the change from ``was`` to ``now``: its words, or its direction
    and amount to the shown decimal (the median within the medians' tolerance), and its
    colour (better, worse, or neutral for a volume)."""
    text = chip["by"]
    if now is None or was is None:
        expected = "无可比"
    elif unit == "percent" and was == 0:
        expected = "持平" if now == 0 else FROM_ZERO[kind]
    else:
        expected = None
    if expected is not None:
        return [] if text == expected else [f"{where}: shown {text!r}, raw {expected!r}"]
    if unit == "points":
        by, low, high = (now - was) * 100, (now - was) * 100, (now - was) * 100
    elif unit == "score":
        by = low = high = round(now, 2) - round(was, 2)
    else:
        by = low = high = (now - was) / was * 100
        if where.endswith("median_hours"):
            err = (lambda h: max(MEDIAN_TOLERANCE_H, 0.01 * h))  # noqa: E731
            low = (now - err(now) - was - err(was)) / (was + err(was)) * 100
            high = (now + err(now) - was + err(was)) / max(was - err(was), 1e-9) * 100
    slack = 0.011 if unit == "score" else 0.051
    found = re.fullmatch(r"([▲▼])([0-9.]+)" + re.escape(UNIT_WORD[unit]), text)
    value = 0.0 if text == "持平" else (
        (1 if found.group(1) == "▲" else -1) * float(found.group(2)) if found else None)
    if value is None or not low - slack <= value <= high + slack:
        return [f"{where}: shown {text!r}, raw {by:+.3f} {unit} ({low:+.3f} … {high:+.3f})"]
    if low - slack > 0 or high + slack < 0:  # a change the tolerance cannot flip: its colour
        verdict = "neutral" if not better else (
            "better" if (by > 0) == (better > 0) else "worse")
        if verdict not in chip["cls"].split():
            return [f"{where}: coloured {chip['cls']!r}, raw {verdict}"]
    return []


def _compare(shown: dict, want: Expected) -> list[str]:
    """Every difference between what the page shows and the recomputation."""
    problems = []
    if shown["errors"]:  # "data is old" and "nothing in this period" are designed words
        problems.append(f"error banner: {shown['errors']!r}")
    cards = want.cards()
    for key, value in cards.items():
        if shown["cards"].get(key) != value:
            problems.append(f"card {key}: shown {shown['cards'].get(key)!r}, raw {value!r}")
    median = want.median_hours()
    text = shown["cards"].get("median_hours", "—")
    if median is None:
        if text != "—":
            problems.append(f"median: shown {text!r}, raw none")
    else:
        number = float(re.sub(r"[^0-9.]", "", text) or "nan")
        if not abs(number - median) <= max(MEDIAN_TOLERANCE_H, 0.01 * median) + 0.05:
            problems.append(f"median: shown {text!r}, raw {median:.3f} h")
    units = next(t for t in shown["map"] if t["type"] == "choroplethmap")
    by_unit = dict(zip(units["locations"], units["z"], strict=True))
    expected_units = want.children()
    if {k: int(v or 0) for k, v in by_unit.items()} != expected_units:
        problems.append(f"map: shown {by_unit}, raw {expected_units}")
    trend = shown["trend"][0] if shown["trend"] else {"x": [], "y": []}
    points = {str(x)[:10]: int(y) for x, y in zip(trend["x"] or [], trend["y"] or [],
                                                  strict=True)}
    if points != want.trend():
        missing = {k: v for k, v in want.trend().items() if points.get(k) != v}
        problems.append(f"trend: {len(points)} points shown, differing at "
                        f"{dict(list(missing.items())[:5])}")
    categories, channels = want.mixes()
    bars = shown["categories"][0] if shown["categories"] else {"x": [], "y": []}
    for label, n in zip(bars["y"] or [], bars["x"] or [], strict=True):
        if categories.get(label) != n:
            problems.append(f"category {label}: shown {n}, raw {categories.get(label)}")
    top = sorted(categories.values(), reverse=True)[:len(bars["x"] or [])]
    if sorted(bars["x"] or [], reverse=True) != top:
        problems.append(f"categories: shown {bars['x']}, raw top {top}")
    pie = shown["channels"][0] if shown["channels"] else {"labels": [], "values": []}
    if dict(zip(pie["labels"] or [], pie["values"] or [], strict=True)) != channels:
        problems.append(f"channels: shown {pie['labels']} {pie['values']}, raw {channels}")
    heat = shown["heat"][0]["z"] if shown["heat"] else None
    if heat != want.weekday_hours():
        problems.append(f"weekday × hour grid: shown {heat}, raw {want.weekday_hours()}")
    problems += _compare_deltas(shown, want)
    rows = [(r[0], r[1][:16], r[3]) for r in shown["rows"] if len(r) >= 4]
    expected_rows = want.latest(len(rows) or 20)
    if rows != expected_rows:
        wrong = [(a, b) for a, b in zip(rows, expected_rows, strict=False) if a != b]
        problems.append(f"table ({len(rows)} rows shown, {len(expected_rows)} raw): "
                        f"{wrong[:3] or (rows[:2], expected_rows[:2])}")
    return problems


# -- the wall -------------------------------------------------------------------------------
WALL_JS = """() => { const crumbs = document.querySelector('#bs-breadcrumb');
    return {crumbs: crumbs ? crumbs.innerText.trim() : null,
            cards: Object.fromEntries([...document.querySelectorAll(
                '#bs-kpi-cards .value[id^=kpi-]')].map(e => [e.id.slice(4), e.innerText.trim()])),
            ticker: [...document.querySelectorAll('#bs-ticker > span')].map(
                e => [e.className, e.innerText.replace(/\\s+/g, ' ').trim()])}; }"""


def _wall_stops(raw: Raw, own: str | None, rng: random.Random) -> list[tuple[int, str | None]]:
    """(tour index, unit) of the stops read: the role's own unit, then some of the units
    one level below it, which the tour visits in code order from index 1."""
    parent = own or raw.units[raw.units.level == 1].code.iloc[0]
    below = sorted(raw.units[raw.units.parent_code == parent].code)
    return [(-1, own)] + [(i + 1, below[i])
                          for i in rng.sample(range(len(below)), WALL_STOPS - 1)]


def _crumbs(raw: Raw, scope: str | None, own: str | None) -> str:
    """The wall's breadcrumb: the units from the role's own down to ``scope``."""
    units, chain = raw.units, []
    code = scope or own or units[units.level == 1].code.iloc[0]
    while isinstance(code, str):  # the district's parent is none (NaN in the frame)
        chain.append(units.at[code, "name"])
        code = None if code == own else units.at[code, "parent_code"]
    return " › ".join(reversed(chain))


def _wall_go(page, base: str, range_: str, index: int, crumbs: str) -> None:
    """Open the wall at its first stop, or step its tour to ``index`` (as its timer does),
    and wait until it shows that stop."""
    if index < 0:
        _instrument(page)
        page.goto(base + f"/bigscreen?tour=off&range={range_}")
    else:
        def stepped(response) -> bool:
            return ("_dash-update-component" in response.url
                    and f'"index":{index},' in (response.request.post_data or ""))

        with page.expect_response(stepped, timeout=60_000):
            page.evaluate("i => window.dash_clientside.set_props("
                          "'bs-tour-state', {data: {index: i, on: false}})", index)
    page.wait_for_function(
        "c => { const b = document.querySelector('#bs-breadcrumb');"
        " return b && b.innerText.trim() === c"
        " && document.querySelector('#bs-kpi-cards #kpi-total'); }", arg=crumbs,
        timeout=60_000)
    _settled(page)


def _compare_wall(shown: dict, want: Expected, crumbs: str,
                  moments: tuple[datetime, ...]) -> list[str]:
    """The wall's breadcrumb, cards and ticker against the raw tables, the view read at
    one of ``moments``."""
    problems = []
    if shown["crumbs"] != crumbs:
        problems.append(f"breadcrumb: shown {shown['crumbs']!r}, raw {crumbs!r}")
    cards = [replace(want, now=now).cards() for now in moments]
    if not any(all(shown["cards"].get(k) == v for k, v in c.items()) for c in cards):
        problems += [f"card {k}: shown {shown['cards'].get(k)!r}, raw {v!r}"
                     for k, v in cards[-1].items() if shown["cards"].get(k) != v]
    expected = [want.ticker(now) for now in moments]
    ticks = [tuple(t) for t in shown["ticker"]]
    if len(ticks) not in {len(e) for e in expected}:
        problems.append(f"ticker: {len(ticks)} items shown, raw {len(expected[-1])}: "
                        f"{[t[1] for t in expected[-1]]}")
    for i, tick in enumerate(ticks):
        if all(i >= len(e) or tick != e[i] for e in expected):
            raw_tick = expected[-1][i] if i < len(expected[-1]) else None
            problems.append(f"ticker item {i}: shown {tick}, raw {raw_tick}")
    return problems


def _look(page, shown: dict, name: str, looked: set[str]) -> None:
    """A screenshot of the first non-empty ``name`` list the test reads."""
    if name in looked or not shown[name]["rows"]:
        return
    looked.add(name)
    page.locator(".tab", has_text=re.compile("^热点$" if name == "hotspot" else "^设备告警$")
                 ).click()
    page.locator(f"#{name}-list").scroll_into_view_if_needed()
    screenshot(page, f"truth-{name}-list")


# -- the test --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(city_db, raw):
    """A server on the demo city, a user of each role (the official on one street)."""
    from conftest import DashServer

    official_street = sorted(raw.units[raw.units.level == 2].code)[1]
    for role in ROLES:
        scope = official_street if role == "street_official" else None
        ensure_user(city_db, f"truth-{role.replace('_', '-')}", role, scope)
    server = DashServer(city_db)
    yield server, official_street
    server.stop()


def test_every_figure_of_random_views_equals_the_raw_tables(site, raw, browser):
    server, official_street = site
    views = _views(raw, official_street)
    hotspots = Hotspots(raw)
    report, pages, looked, counted = [], {}, set(), {"hotspot": 0, "alarm": 0, "tick": 0}
    started, on_lists = datetime.now(ZONE), timedelta()
    for n, view in enumerate(views):
        if view.role not in pages:
            context = browser.new_context(viewport={"width": 1600, "height": 1000},
                                          locale="zh-CN", timezone_id="Asia/Shanghai")
            pages[view.role] = context.new_page()
            server.login(pages[view.role], view.user)
        page = pages[view.role]
        before = datetime.now(ZONE)
        _open(page, server.url, view)
        now = datetime.now(ZONE)
        want = Expected(view, raw, now)
        problems = _compare(_read(page), want)
        listed = datetime.now(ZONE)
        lists = _read_lists(page)
        problems += _compare_lists(lists, want, hotspots, (before, datetime.now(ZONE)))
        for name in ("hotspot", "alarm"):
            counted[name] += len(lists[name]["rows"] or [])
            _look(page, lists, name, looked)
        on_lists += datetime.now(ZONE) - listed
        if problems:
            report.append(f"view {n} {view.role} {view.query()}:\n  " + "\n  ".join(problems))
            if len(report) == 1:
                screenshot(page, "truth-first-mismatch")
    desk = datetime.now(ZONE) - started
    rng = random.Random(SEED + 1)
    for role, page in pages.items():
        own = official_street if role == "street_official" else None
        range_ = rng.choice(list(RANGES))
        for index, scope in _wall_stops(raw, own, rng):
            view = View(role, f"truth-{role.replace('_', '-')}", scope, range_)
            before = datetime.now(ZONE)
            _wall_go(page, server.url, range_, index, _crumbs(raw, scope, own))
            shown = page.evaluate(WALL_JS)
            moments = (before - timedelta(seconds=CACHED_S), before, datetime.now(ZONE))
            problems = _compare_wall(shown, Expected(view, raw, moments[-1]),
                                     _crumbs(raw, scope, own), moments)
            counted["tick"] += len(shown["ticker"])
            if "wall" not in looked:
                looked.add("wall")
                screenshot(page, "truth-wall-ticker")
            if problems:
                report.append(f"wall {role} range={range_} stop {index} ({scope}):\n  "
                              + "\n  ".join(problems))
    for page in pages.values():
        page.context.close()
    print(f"read: {counted['hotspot']} hotspot rows, {counted['alarm']} alarm rows of "
          f"{len(views)} views in {desk.total_seconds():.0f} s (the lists "
          f"{on_lists.total_seconds():.0f} s); {counted['tick']} ticker "
          f"items of {len(pages) * WALL_STOPS} wall stops in "
          f"{(datetime.now(ZONE) - started - desk).total_seconds():.0f} s")
    assert not report, f"{len(report)} of {len(views)} views and {len(pages) * WALL_STOPS} " \
                       f"wall stops differ:\n" + "\n".join(report)


# -- 环比, 同比 and the weekday × hour grid of chosen periods ---------------------------------
def test_comparisons_and_the_weekday_hour_grid_equal_the_raw_tables(site, raw, browser):
    """Chosen periods of the demo city (cases from 2025-11-21 to 2026-11-20): October 2026,
    whose 环比 (31 days before it) the data holds and whose 同比 (October 2025) it does
    not; a street official's 21 November – 3 December 2026, empty, against a full 环比 and
    a 同比 the data just reaches; a community under a channel (the aggregates' full grain)
    and a grid under a subcategory (the cases); an open range (no arrows, the reason in
    the tooltip). Every card, arrow, compared figure and the 168 cells of the grid are
    recomputed here; the desk is photographed with its arrows and grid, and the wall."""
    server, street = site
    cases, units = raw.cases, raw.units
    community = sorted(units[units.parent_code == street].code)[0]
    in_community = cases[cases.community_code == community]
    channel = in_community.channel.value_counts().index[0]
    grid = in_community.grid_code.value_counts().index[0]
    subcategory = cases[cases.grid_code == grid].category_2.value_counts().index[0]
    views = [
        View("admin", "truth-admin", None, "", start="2026-10-01", end="2026-10-31"),
        View("street_official", "truth-street-official", street, "", start="2026-11-21",
             end="2026-12-03"),
        View("analyst", "truth-analyst", community, "", channel=channel, start="2026-09-01",
             end="2026-09-30"),
        View("command_center", "truth-command-center", grid, "", category=subcategory,
             start="2026-06-01", end="2026-08-31"),
        View("admin", "truth-admin", street, "all"),
    ]
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    page, report, signed = context.new_page(), [], None
    official_was = None
    for n, view in enumerate(views):
        if view.user != signed:
            context.clear_cookies()
            server.login(page, view.user)
            signed = view.user
        _open(page, server.url, view)
        want = Expected(view, raw, datetime.now(ZONE))
        shown = _read(page)
        problems = _compare(shown, want)
        if not shown["deltas"] and view.start:
            problems.append("no arrows shown")
        if view.role == "street_official":  # her street's, not the district's
            official_was = shown["titles"]["total"]
        if n == 0:
            page.locator("#card-total").scroll_into_view_if_needed()
            screenshot(page, "compare-desk-cards")
            page.locator("#chart-weekday-hours").scroll_into_view_if_needed()
            screenshot(page, "compare-desk-weekday-hours")
        if problems:
            report.append(f"view {n} {view.role} {view.query()}:\n  " + "\n  ".join(problems))
    district = Expected(replace(views[1], scope=None), raw, datetime.now(ZONE))
    days = district.compared()["year_before"]
    assert f"：{len(district.over(*days).filtered(with_period=True)):,} →" not in official_was
    for size in ((1920, 1080), (3840, 2160)):
        page.set_viewport_size({"width": size[0], "height": size[1]})
        _instrument(page)
        page.goto(server.url + "/bigscreen?tour=off&range=30d")
        page.wait_for_selector("#bs-kpi-cards .delta", timeout=60_000)
        _settled(page)
        screenshot(page, f"compare-wall-{size[0]}")
        overflow = page.evaluate("() => [document.documentElement.scrollWidth > innerWidth,"
                                 " document.documentElement.scrollHeight > innerHeight]")
        assert overflow == [False, False], f"the wall scrolls at {size}"
    context.close()
    assert not report, "\n".join(report)

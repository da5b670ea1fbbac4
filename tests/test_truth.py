"""The truth suite: random views of the demo city, opened in Chromium as each role would open
them, every figure the page shows read from the DOM and compared with an independent
recomputation from the raw tables in pandas (nothing here goes through ``layers/``).

What each figure means is spelled out in :class:`Expected`: flows (received, closed, on
time, satisfaction) count the cases *reported* in the chosen period; the backlog (open,
overdue) is the scope's backlog now, whatever the period; days and times are Beijing's.
All mismatches of all views are reported together, view by view.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pandas as pd
import psycopg
import pytest
from conftest import ensure_user, screenshot

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


# -- the raw tables, read once ---------------------------------------------------------------
@dataclass
class Raw:
    cases: pd.DataFrame
    units: pd.DataFrame
    devices: pd.DataFrame


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
    devices = _frame(city_db, "SELECT id, kind, status, last_seen, street_code, "
                              "community_code, grid_code FROM iot_device")
    devices["last_seen"] = pd.to_datetime(devices["last_seen"], utc=True)
    return Raw(cases, units.set_index("code", drop=False), devices)


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

    def query(self) -> str:
        params = {"scope": self.scope, "range": self.range, "category": self.category,
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
        today = self.now.astimezone(ZONE).date()
        tomorrow = datetime.combine(today + timedelta(days=1), time(), ZONE)
        days = RANGES[self.view.range]
        if self.view.range == "all":
            return None, None
        if self.view.range == "year":
            return datetime(today.year, 1, 1, tzinfo=ZONE), tomorrow
        return tomorrow - timedelta(days=days), tomorrow

    def filtered(self, with_period: bool) -> pd.DataFrame:
        cases, view = self.raw.cases, self.view
        mask = _scope_mask(cases, self.raw.units, view.scope)
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

    def devices_now(self) -> pd.Series:
        """Each device of the scope's status now: an alarm stays an alarm, a device not
        heard of for ``DEVICE_SILENT`` is offline, else what it last said."""
        devices = self.raw.devices
        devices = devices[_scope_mask(devices, self.raw.units, self.view.scope)]
        silent = devices.last_seen.isna() | (devices.last_seen < self.now - DEVICE_SILENT)
        return devices.status.where((devices.status == "alarm") | ~silent, "offline")


def _pct(part: int, whole: int) -> str:
    return "—" if not whole else f"{part / whole * 100:.1f}%"


# -- what the page shows ---------------------------------------------------------------------
READ_FIGURE = """sel => { const gd = document.querySelector(sel + ' .js-plotly-plot');
    if (!gd || !gd.data) return null;
    const arr = v => v === undefined || v === null ? null : Array.from(v);
    return gd.data.map(t => ({type: t.type, name: t.name, x: arr(t.x), y: arr(t.y),
        z: arr(t.z), locations: arr(t.locations), labels: arr(t.labels),
        values: arr(t.values)})); }"""


def _open(page, base: str, view: View) -> None:
    page.goto(base + "/" + view.query())
    page.wait_for_function(
        "() => { const k = document.querySelector('#kpi-total');"
        " const gd = document.querySelector('#map-box .js-plotly-plot');"
        " return k && k.innerText.trim() && gd && gd.data; }", timeout=60_000)
    page.wait_for_load_state("networkidle")


def _read(page) -> dict:
    cards = page.evaluate("() => Object.fromEntries([...document.querySelectorAll("
                          "'#kpi-cards [id^=kpi-] ')].filter(e => e.classList.contains('value'))"
                          ".map(e => [e.id.slice(4), e.innerText.trim()]))")
    rows = page.evaluate("() => [...document.querySelectorAll('#case-table tbody tr')]"
                         ".map(r => [...r.querySelectorAll('td')].map(td => td.innerText.trim()))")
    return {"cards": cards, "map": page.evaluate(READ_FIGURE, "#map-box"),
            "trend": page.evaluate(READ_FIGURE, "#chart-trend"),
            "categories": page.evaluate(READ_FIGURE, "#chart-categories"),
            "channels": page.evaluate(READ_FIGURE, "#chart-channels"), "rows": rows,
            "errors": page.evaluate("() => [...document.querySelectorAll('#banner .banner')]"
                                    ".filter(b => !b.classList.contains('stale')"
                                    " && !b.classList.contains('info'))"
                                    ".map(b => b.innerText)")}


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
    rows = [(r[0], r[1][:16], r[3]) for r in shown["rows"] if len(r) >= 4]
    expected_rows = want.latest(len(rows) or 20)
    if rows != expected_rows:
        wrong = [(a, b) for a, b in zip(rows, expected_rows, strict=False) if a != b]
        problems.append(f"table ({len(rows)} rows shown, {len(expected_rows)} raw): "
                        f"{wrong[:3] or (rows[:2], expected_rows[:2])}")
    return problems


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
    report, pages = [], {}
    for n, view in enumerate(views):
        if view.role not in pages:
            context = browser.new_context(viewport={"width": 1600, "height": 1000},
                                          locale="zh-CN", timezone_id="Asia/Shanghai")
            pages[view.role] = context.new_page()
            server.login(pages[view.role], view.user)
        page = pages[view.role]
        _open(page, server.url, view)
        now = datetime.now(ZONE)
        problems = _compare(_read(page), Expected(view, raw, now))
        if problems:
            report.append(f"view {n} {view.role} {view.query()}:\n  " + "\n  ".join(problems))
            if len(report) == 1:
                screenshot(page, "truth-first-mismatch")
    for page in pages.values():
        page.context.close()
    assert not report, f"{len(report)} of {len(views)} views differ:\n" + "\n".join(report)

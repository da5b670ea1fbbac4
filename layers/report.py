"""A scope's 周报 / 月报: what the printable report holds, assembled from the read side's
own figures — the same functions ``/api/kpi`` and ``/api/workbench`` answer with — so that
a report never says what the dashboard does not.

A report covers whole local days (:class:`ReportPeriod`): a calendar month (``2026-11``,
月报), an ISO week from Monday to Sunday (``2026-W47``, 周报) or any days
(``2026-11-01..2026-11-15``; named 周报 or 月报 when they are exactly a week or a month,
else 自定义 with their dates). It holds the scope's children's shapes and cases (the map),
the flows with their 环比 and 同比 (``layers.kpi``, ``layers.comparison``), the top
categories, the hot grids (``layers.hotspots``), the backlog now with its most overdue cases
(``layers.backlog``, ``layers.view.latest_cases``) and the handling units' ranking
(``layers.workbench.ranking``). The backlog is a stock: it is counted when the report is
made, whatever its period, and the report says so.

The rendering (HTML, PDF) is the dashboard's (``dashboard.report``); this module only reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import Engine

from layers import hotspots as hot
from layers.access import scope_for
from layers.cases import local_zone
from layers.errors import BadParameter
from layers.filters import Filters, read_filters
from layers.freshness import DEFAULT_THRESHOLDS, feeds
from layers.kpi import with_children
from layers.view import latest_cases, shapes
from layers.workbench import ranking
from onemap.principal import Principal
from onemap.settings import DUE_SOON_HOURS

KINDS = ("week", "month", "days")
OVERDUE_LISTED = 15   # the backlog's most overdue cases listed
HOTSPOTS_LISTED = 10  # the hottest grids listed
UNITS_LISTED = 20     # the handling units listed, most received first
PERIOD_FORMS = "YYYY-MM (a month), YYYY-Www (an ISO week) or YYYY-MM-DD..YYYY-MM-DD (days)"
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$", re.IGNORECASE)
_DAYS = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:\.\.|/)(\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True)
class ReportPeriod:
    """Whole local days, ``first`` to ``last`` included; ``kind`` names them: "week" (an
    ISO week, Monday to Sunday), "month" (a calendar month) or "days" (any other)."""

    kind: str
    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def week(self) -> tuple[int, int]:
        """The ISO year and week number of a week's Monday."""
        year, week, _ = self.first.isocalendar()
        return year, week

    @property
    def code(self) -> str:
        """The period as ``--period`` writes it: ``2026-11``, ``2026-W47`` or days."""
        if self.kind == "month":
            return f"{self.first:%Y-%m}"
        if self.kind == "week":
            return "{}-W{:02d}".format(*self.week)
        return f"{self.first.isoformat()}..{self.last.isoformat()}"

    def filters(self, scope: str | None) -> Filters:
        """The filters of these days in ``scope`` (as a URL's ``start`` and ``end``; a
        scope that is not an admin code's form is refused as in a URL)."""
        return read_filters({"scope": scope, "start": self.first.isoformat(),
                             "end": self.last.isoformat()})


def named(first: date, last: date) -> ReportPeriod:
    """The days ``first`` to ``last`` as a week or a month when they are exactly one."""
    if first.weekday() == 0 and last == first + timedelta(days=6):
        return ReportPeriod("week", first, last)
    if first.day == 1 and last == _month_end(first):
        return ReportPeriod("month", first, last)
    return ReportPeriod("days", first, last)


def parse_period(text: str | None) -> ReportPeriod:
    """A report's period from ``2026-11``, ``2026-W47`` or ``2026-11-01..2026-11-15``;
    :class:`BadParameter` naming ``period`` and what is wrong otherwise."""
    raw = (text or "").strip()
    if not raw:
        raise BadParameter("period", text, f"missing: {PERIOD_FORMS}")
    try:
        if match := _MONTH.match(raw):
            first = date(_year(raw, match[1]), int(match[2]), 1)
            return ReportPeriod("month", first, _month_end(first))
        if match := _WEEK.match(raw):
            first = date.fromisocalendar(_year(raw, match[1]), int(match[2]), 1)
            return ReportPeriod("week", first, first + timedelta(days=6))
        if match := _DAYS.match(raw):
            first, last = (date.fromisoformat(day) for day in match.groups())
            for day in (first, last):
                _year(raw, str(day.year))
            if last < first:
                raise BadParameter("period", raw, "the last day is before the first")
            return named(first, last)
    except ValueError as exc:  # month 13, week 54, 31 February
        raise BadParameter("period", raw, f"not a date: {exc}") from None
    raise BadParameter("period", raw, f"expected {PERIOD_FORMS}")


def _year(raw: str, year: str) -> int:
    if not 1900 <= int(year) <= 2200:
        raise BadParameter("period", raw, "year out of range")
    return int(year)


def _month_end(first: date) -> date:
    after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return after - timedelta(days=1)


def period_of(bounds: dict) -> ReportPeriod | None:
    """The report period of a view's period (``{"start", "end"}``: local ISO instants, the
    end excluded, as ``/api/workbench`` gives them); None when it is open or not of whole
    days."""
    if not bounds.get("start") or not bounds.get("end"):
        return None
    start, end = (datetime.fromisoformat(bounds[side]) for side in ("start", "end"))
    if start.time() != time(0) or end.time() != time(0):
        return None
    return named(start.date(), end.date() - timedelta(days=1))


@dataclass(frozen=True)
class Report:
    """What a report of ``scope`` over ``period`` holds, as ``who`` may see it; times are
    local ISO text of the deployment's zone."""

    scope: dict                 # {"code", "name", "level"}
    breadcrumb: list[dict]
    period: ReportPeriod
    bounds: dict                # the flows' local midnights {"start", "end"}
    now: str                    # when the backlog was counted (the report's instant)
    newest_case: str | None     # 数据截至: the newest case reported anywhere
    figures: dict               # ``layers.kpi.with_children`` of the period
    shapes: dict                # the children's polygons (the unit's own at a grid)
    hotspots: list[dict]        # the hot grids, hottest first (``HOTSPOTS_LISTED``)
    hotspots_total: int
    overdue: list[dict]         # the most overdue open cases (``OVERDUE_LISTED``)
    units: list[dict]           # the handling units, most received first (``UNITS_LISTED``)
    units_total: int


def report(engine: Engine, who: Principal, code: str | None, period: ReportPeriod,
           zone: str, soon_hours: float = DUE_SOON_HOURS) -> Report:
    """The report of the unit ``code`` (None: ``who``'s own area) over ``period``, as
    ``who`` may see it (:class:`layers.errors.Forbidden` for a unit outside their area);
    times in the deployment's ``zone``."""
    with engine.connect() as conn:
        days = local_zone(conn, zone)  # the zone the aggregates count days in
        filters = period.filters(code).resolved(days)
        scope = scope_for(conn, who, code)
        figures = with_children(conn, scope, filters, days, soon_hours, clock=zone,
                                hours=False)
        now = datetime.fromisoformat(figures["backlog"]["now"])
        grids = hot.hotspots(conn, scope, filters, "grid", zone=days)
        hottest = [f["properties"] for f in grids["features"] if f["properties"]["hot"]]
        backlog = latest_cases(conn, scope, filters, zone, now, soon_hours,
                               limit=OVERDUE_LISTED, order="overdue")
        units = ranking(conn, scope, filters, days, "received")
        return Report(
            scope={"code": scope.code, "name": scope.name, "level": scope.level},
            breadcrumb=[{"code": c, "name": n, "level": lv} for c, n, lv in scope.breadcrumb],
            period=period, bounds=figures["period"], now=figures["backlog"]["now"],
            newest_case=feeds(conn, DEFAULT_THRESHOLDS, zone).get("cases", {}).get("newest"),
            figures=figures, shapes=shapes(conn, scope),
            hotspots=hottest[:HOTSPOTS_LISTED], hotspots_total=len(hottest),
            overdue=[c for c in backlog if (c["due"] or {}).get("due") == "overdue"],
            units=units[:UNITS_LISTED], units_total=len(units))

"""The command centre's workbench: where a scope's cases are stuck in their lifecycle.

The lifecycle funnel (受理 → 分拨 → 处置 → 反馈 → 评价), one entry per stage of
``layers.backlog.STAGES``:

* ``open``: the open cases waiting at the stage now (the backlog's own count, under every
  filter but the time range);
* ``median_hours`` and ``p90_hours``: how long the cases reported in the period spent in the
  stage (``DWELL``: from the time it began to the time it ended, both recorded, the end not
  before the start), over the ``measured`` cases that have both times;
* ``oldest``: the open cases waiting at it longest now, each with the time it entered the
  stage (the last stage time it has, else its report) and how long it has waited.

The seeds' indicators (``INDICATORS``), each a share of the cases reported in the period,
counted by the measures the desk's KPIs are counted by (``onemap.aggregates``) where they
are the same figure, and shown only when the source fills what it needs (``needs``: columns
of ``case_event``); otherwise not available (None), never 0. Beside them the mean score,
and the rated cases not satisfied (``UNSATISFIED_AT_MOST``).

The handling units' ranking: per ``case_event.handling_unit`` of the scope, the period's
received, closed, on-time rate, median handling time and satisfaction, the unit's overdue
cases now and the 督办 / 提醒 it got in the scope (``layers.supervision.counts``); sortable
by each (``RANKED_BY``); a unit's cases and latest 督办 on request.

The early warning: the backlog's 即将超期 cases, least time left first, and its 超期未办结
cases, longest over first (every filter but the time range, as the backlog counts them),
each with its 督办 so far.

The dashboard's /workbench page and ``/api/workbench`` draw the :class:`Workbench` this
returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypedDict

from sqlalchemy import Connection, Engine

from layers import backlog as stock
from layers import supervision
from layers.access import scope_for
from layers.case_query import RAW_MEASURES
from layers.cases import local_zone, raw_where
from layers.errors import BadParameter
from layers.filters import Filters
from layers.scope import Scope
from layers.sql import run
from layers.summary import ratio, summarize
from layers.times import iso
from onemap.principal import Principal
from onemap.settings import DUE_SOON_HOURS

# Each stage (named as in ``layers.backlog.STAGES``: by the time that ends it for an open
# case) with the times its dwell runs between. 评价 is the wait after 反馈 until the case is
# closed (办结, after the return visit): an open case at 评价 has its feedback and no closing.
DWELL = {
    "accepted_at": ("reported_at", "accepted_at"),
    "dispatched_at": ("accepted_at", "dispatched_at"),
    "handled_at": ("dispatched_at", "handled_at"),
    "feedback_at": ("handled_at", "feedback_at"),
    "evaluated_at": ("feedback_at", "closed_at"),
}
# When an open case entered the stage it waits at: its last stage time, else its report
# (the order ``layers.backlog.stage_sql`` reads them in).
ENTERED = "coalesce(c.feedback_at, c.handled_at, c.dispatched_at, c.accepted_at, c.reported_at)"
OLDEST = 5  # the open cases listed per stage
STUCK_LISTED = ("c.id, c.reported_at, c.category_1, c.category_2, c.status, c.deadline, "
                "c.handling_unit")

# 满意: a score of 4 or 5 (of 1–5); 不满意: 1 or 2; 3 (基本满意) is neither.
SATISFIED_AT_LEAST = 4
UNSATISFIED_AT_MOST = 2
EXTRA_MEASURES = (f"count(*) FILTER (WHERE c.satisfaction >= {SATISFIED_AT_LEAST}) AS satisfied, "
                  f"count(*) FILTER (WHERE c.satisfaction <= {UNSATISFIED_AT_MOST}) "
                  "AS unsatisfied")
LISTED = 20  # rows of the not-satisfied list and of a unit's cases


@dataclass(frozen=True)
class Indicator:
    """A share: the cases of measures ``part`` over those of ``whole`` (measure names of
    ``onemap.aggregates`` or of ``EXTRA_MEASURES``); available when every column of
    ``needs`` is a column of ``case_event`` the source has filled for some case."""

    key: str
    part: tuple[str, ...]
    whole: tuple[str, ...]
    needs: tuple[str, ...]


INDICATORS = (
    Indicator("closure_rate", ("closed",), ("total",), ("status",)),
    Indicator("on_time_closure_rate", ("closed_on_time",), ("closed_on_time", "closed_late"),
              ("on_time",)),
    Indicator("same_day_closure_rate", ("closed_same_day",), ("closed",), ("closed_at",)),
    Indicator("within_3d_closure_rate", ("closed_3d",), ("closed",), ("closed_at",)),
    Indicator("satisfied_rate", ("satisfied",), ("satisfaction_n",), ("satisfaction",)),
    # Not in the case mapping yet: a source with these columns makes them available.
    Indicator("accept_notified_rate", (), (), ("accept_notified_at",)),
    Indicator("handle_notified_rate", (), (), ("handle_notified_at",)),
    Indicator("instant_answer_rate", (), (), ("answered_at",)),
    Indicator("repeat_rate", (), (), ("repeat_of",)),
)
# The ranking's sort keys (descending unless asked ``<key>.asc``).
RANKED_BY = ("received", "closed", "on_time_rate", "median_hours", "overdue", "satisfied_rate",
             "satisfaction", "supervised")
WARNED = 20  # rows of each early-warning list


class StuckCase(TypedDict):
    """An open case waiting at a stage: since when (``entered``, local ISO) and for how
    long (``waited_hours``, to the funnel's ``now``)."""

    id: str
    reported_at: str
    category_1: str
    category_2: str | None
    handling_unit: str | None
    deadline: str | None
    entered: str
    waited_hours: float
    due: dict | None


class Stage(TypedDict):
    stage: str                  # a ``layers.backlog.STAGES`` name
    open: int
    measured: int               # cases of the period with both of the stage's times
    median_hours: float | None
    p90_hours: float | None
    oldest: list[StuckCase]


class Unit(TypedDict):
    code: str | None
    name: str
    level: int


class Shown(TypedDict):
    """An indicator: its share (0–1; None when not available or nothing to divide), the
    counts it divides, and whether the source has what it needs."""

    key: str
    available: bool
    value: float | None
    part: int | None
    whole: int | None
    needs: list[str]


class ListedCase(TypedDict):
    id: str
    reported_at: str
    category_1: str
    category_2: str | None
    handling_unit: str | None
    status: str
    closed_at: str | None
    satisfaction: int | None


class Ranked(TypedDict):
    """A handling unit's figures: the period's flows and its overdue cases now."""

    unit: str
    received: int
    closed: int
    on_time_rate: float | None
    median_hours: float | None
    satisfaction: float | None      # the mean score
    satisfied_rate: float | None
    overdue: int
    supervised: int                 # 督办 and 提醒 in the scope, at any time


class DueCase(TypedDict):
    """A case of the early warning: overdue or due soon now (``due``: the backlog's mark,
    hours over or left), with its 督办 and 提醒 so far."""

    id: str
    reported_at: str
    category_1: str
    category_2: str | None
    handling_unit: str | None
    deadline: str
    due: dict
    supervised: int


@dataclass(frozen=True)
class Workbench:
    """What the workbench shows of a scope, as ``who`` may see it."""

    scope: Unit
    breadcrumb: list[Unit]
    period: dict                # the flows' period: {"start", "end"} local ISO or None
    now: str                    # the backlog's instant
    funnel: list[Stage]
    indicators: list[Shown]
    satisfaction: dict          # {"mean": 1–5 or None, "rated": n}
    unsatisfied: list[ListedCase]
    unsatisfied_total: int
    units: list[Ranked]
    sort: str
    unit: str | None = None     # the unit whose cases are listed …
    unit_cases: list[ListedCase] = field(default_factory=list)
    unit_cases_total: int = 0   # … and how many it received in the period
    unit_supervised: list = field(default_factory=list)  # … and its latest 督办
    due_soon: list[DueCase] = field(default_factory=list)  # least time left first
    due_soon_total: int = 0
    overdue: list[DueCase] = field(default_factory=list)   # longest over first
    overdue_total: int = 0


def workbench(engine: Engine, filters: Filters, zone: str, who: Principal,
              soon_hours: float = DUE_SOON_HOURS, *, sort: str = "received",
              unit: str | None = None) -> Workbench:
    """The workbench of ``filters``' scope as ``who`` may see it (``filters`` as read, their
    period placed here in the aggregates' zone; times in that zone)."""
    with engine.connect() as conn:
        days = local_zone(conn, zone)
        filters = filters.resolved(days)
        scope = scope_for(conn, who, filters.scope)
        return read(conn, scope, filters, days, soon_hours, sort=sort, unit=unit)


def read(conn: Connection, scope: Scope, filters: Filters, zone: str,
         soon_hours: float = DUE_SOON_HOURS, *, sort: str = "received",
         unit: str | None = None) -> Workbench:
    """The workbench of ``scope`` under ``filters`` (period resolved), times in ``zone``;
    the ranking sorted by ``sort`` (``RANKED_BY``, ``.asc`` for ascending); the cases of
    the handling unit ``unit`` when given."""
    key, _, way = sort.partition(".")
    if key not in RANKED_BY or way not in ("", "asc"):
        raise BadParameter("sort", sort, f"must be one of {', '.join(RANKED_BY)}, "
                           "optionally followed by .asc")
    if unit is not None and (len(unit) > 200 or "\x00" in unit):
        raise BadParameter("unit", unit[:40], "not a handling unit's name")
    now = stock.database_now(conn)
    sums = _sums(conn, scope, filters, zone)
    listed = raw_where(filters, scope).add(f"c.satisfaction <= {UNSATISFIED_AT_MOST}")
    unit_cases, unit_total, urged = ([], 0, [])
    if unit is not None:
        mine = raw_where(filters, scope).add("c.handling_unit = :unit", unit=unit)
        unit_cases, unit_total = _listed(conn, mine, zone), _count(conn, mine)
        urged = supervision.of_unit(conn, scope, unit, zone)
    warned = {due: _due(conn, scope, filters, zone, now, soon_hours, due)
              for due in ("due_soon", "overdue")}
    return Workbench(
        scope={"code": scope.code, "name": scope.name, "level": scope.level},
        breadcrumb=[{"code": c, "name": n, "level": lv} for c, n, lv in scope.breadcrumb],
        period={"start": iso(filters.start, zone), "end": iso(filters.end, zone)},
        now=iso(now, zone),
        funnel=funnel(conn, scope, filters, zone, now, soon_hours),
        indicators=indicators(sums, filled(conn, {n for i in INDICATORS for n in i.needs})),
        satisfaction={"mean": summarize(sums)["satisfaction"],
                      "rated": int(sums["satisfaction_n"])},
        unsatisfied=_listed(conn, listed, zone), unsatisfied_total=int(sums["unsatisfied"]),
        units=ranking(conn, scope, filters, zone, sort), sort=sort,
        unit=unit, unit_cases=unit_cases, unit_cases_total=unit_total,
        unit_supervised=urged, due_soon=warned["due_soon"][0],
        due_soon_total=warned["due_soon"][1], overdue=warned["overdue"][0],
        overdue_total=warned["overdue"][1])


def _due(conn: Connection, scope: Scope, filters: Filters, zone: str, now: datetime,
         soon_hours: float, due: str, most: int = WARNED) -> tuple[list[DueCase], int]:
    """The backlog's overdue or due-soon cases by urgency (the nearest or longest passed
    deadline first), at most ``most``, and how many there are."""
    if filters.statuses and not {"open", "overdue"} & set(filters.statuses):
        return [], 0  # closed cases only: no backlog
    rule = stock.OVERDUE if due == "overdue" else stock.DUE_SOON
    where = raw_where(replace(filters, start=None, end=None), scope).add(rule.format(a="c."))
    params = {**where.params, "soon_seconds": soon_hours * 3600, "most": most}
    rows = run(conn, f"SELECT c.id, c.reported_at, c.category_1, c.category_2, "
                     f"c.handling_unit, c.status, c.deadline, count(*) OVER () AS total, "
                     f"(SELECT count(*) FROM case_supervision s WHERE s.case_id = c.id) "
                     f"AS supervised FROM case_event c WHERE {where.sql} "
                     f"ORDER BY c.deadline, c.id LIMIT :most", params).mappings().all()
    listed: list[DueCase] = [{
        "id": r["id"], "reported_at": iso(r["reported_at"], zone),
        "category_1": r["category_1"], "category_2": r["category_2"],
        "handling_unit": r["handling_unit"], "deadline": iso(r["deadline"], zone),
        "due": stock.mark(r["status"], r["deadline"], now, soon_hours) or {"due": due},
        "supervised": int(r["supervised"])} for r in rows]
    return listed, int(rows[0]["total"]) if rows else 0


def filled(conn: Connection, columns: set[str]) -> set[str]:
    """The ``columns`` that ``case_event`` has and the source filled for some case."""
    have = {r[0] for r in run(conn, "SELECT column_name FROM information_schema.columns "
                                    "WHERE table_name = 'case_event' AND column_name = ANY(:c)",
                              {"c": sorted(columns)})}
    return {c for c in have if run(conn, f"SELECT EXISTS (SELECT 1 FROM case_event "
                                         f"WHERE {c} IS NOT NULL)").scalar()}


def indicators(sums, filled_columns: set[str]) -> list[Shown]:
    """Each of ``INDICATORS`` from the period's summed measures ``sums``."""
    shown: list[Shown] = []
    for ind in INDICATORS:
        available = set(ind.needs) <= filled_columns
        part = sum(int(sums[m]) for m in ind.part) if available else None
        whole = sum(int(sums[m]) for m in ind.whole) if available else None
        shown.append({"key": ind.key, "available": available,
                      "value": ratio(part, whole) if available else None,
                      "part": part, "whole": whole, "needs": list(ind.needs)})
    return shown


def _sums(conn: Connection, scope: Scope, filters: Filters, zone: str):
    """The declared measures (and ``EXTRA_MEASURES``) over the period's cases."""
    where = raw_where(filters, scope)
    return run(conn, f"SELECT {RAW_MEASURES}, {EXTRA_MEASURES} FROM case_event c "
                     f"WHERE {where.sql}", {**where.params, "tz": zone}).mappings().one()


def ranking(conn: Connection, scope: Scope, filters: Filters, zone: str,
            sort: str = "received") -> list[Ranked]:
    """Each handling unit of the scope: the period's flows (received and of those closed,
    on time, rated), its overdue cases now (every filter but the range) and its 督办 and
    提醒 in the scope (whatever the filters); sorted by
    ``sort``, a unit without the figure last, then by name."""
    where = raw_where(filters, scope).add("c.handling_unit IS NOT NULL")
    flows = {r["unit"]: r for r in run(
        conn, f"SELECT c.handling_unit AS unit, {RAW_MEASURES}, {EXTRA_MEASURES} "
              f"FROM case_event c WHERE {where.sql} GROUP BY 1",
        {**where.params, "tz": zone}).mappings()}
    late = raw_where(replace(filters, start=None, end=None), scope).add(
        "c.handling_unit IS NOT NULL").add(stock.OVERDUE.format(a="c."))
    overdue = dict(run(conn, f"SELECT c.handling_unit, count(*) FROM case_event c "
                             f"WHERE {late.sql} GROUP BY 1", late.params).all())
    urged = supervision.counts(conn, scope)
    units: list[Ranked] = []
    for name in sorted(set(flows) | set(overdue) | set(urged)):
        row = flows.get(name)
        figures = summarize(row) if row else {}
        units.append({
            "unit": name, "received": figures.get("total", 0),
            "closed": figures.get("closed", 0),
            "on_time_rate": figures.get("on_time_rate"),
            # Exact, not summarize's two decimals: the page rounds once, to its own digits.
            "median_hours": _exact(row["median_hours"]) if row else None,
            "satisfaction": figures.get("satisfaction"),
            "satisfied_rate": ratio(int(row["satisfied"]), int(row["satisfaction_n"]))
            if row else None,
            "overdue": int(overdue.get(name, 0)),
            "supervised": int(urged.get(name, 0))})
    key, _, way = sort.partition(".")
    known = [u for u in units if u[key] is not None]
    known.sort(key=lambda u: u[key], reverse=way != "asc")  # stable: names stay in order
    return known + [u for u in units if u[key] is None]


LISTED_COLUMNS = ("c.id, c.reported_at, c.category_1, c.category_2, c.handling_unit, "
                  "c.status, c.closed_at, c.satisfaction")


def _listed(conn: Connection, where, zone: str, limit: int = LISTED) -> list[ListedCase]:
    """The newest ``limit`` cases ``where`` selects."""
    rows = run(conn, f"SELECT {LISTED_COLUMNS} FROM case_event c WHERE {where.sql} "
                     f"ORDER BY c.reported_at DESC, c.id LIMIT :limit",
               {**where.params, "limit": limit}).mappings()
    return [{**r, "reported_at": iso(r["reported_at"], zone),
             "closed_at": iso(r["closed_at"], zone)} for r in rows]


def _count(conn: Connection, where) -> int:
    return int(run(conn, f"SELECT count(*) FROM case_event c WHERE {where.sql}",
                   where.params).scalar())


def funnel(conn: Connection, scope: Scope, filters: Filters, zone: str, now: datetime,
           soon_hours: float = DUE_SOON_HOURS, oldest: int = OLDEST) -> list[Stage]:
    """Each stage's open cases now, dwell over the period and longest waiting cases."""
    waiting = stock.backlog(conn, scope, filters, soon_hours)[None]["stages"]
    dwell = _dwell(conn, scope, filters)
    stuck = _stuck(conn, scope, filters, zone, now, soon_hours, oldest)
    return [{"stage": stage, "open": waiting[stage], **dwell[stage],
             "oldest": stuck.get(stage, [])} for stage in stock.STAGES]


def _hours(end: str, start: str) -> str:
    return f"extract(epoch FROM c.{end} - c.{start}) / 3600"


def _dwell(conn: Connection, scope: Scope, filters: Filters) -> dict:
    """Per stage: the period's cases with both times, and the median and 90th percentile
    of the hours between them, in one pass."""
    where = raw_where(filters, scope)
    parts = []
    for stage, (start, end) in DWELL.items():
        both = f"c.{start} IS NOT NULL AND c.{end} >= c.{start}"
        parts += [f"count(*) FILTER (WHERE {both}) AS {stage}_n",
                  *(f"percentile_cont({q}) WITHIN GROUP (ORDER BY {_hours(end, start)}) "
                    f"FILTER (WHERE {both}) AS {stage}_{name}"
                    for name, q in (("median", 0.5), ("p90", 0.9)))]
    row = run(conn, f"SELECT {', '.join(parts)} FROM case_event c WHERE {where.sql}",
              where.params).mappings().one()
    return {stage: {"measured": int(row[f"{stage}_n"]),
                    "median_hours": _exact(row[f"{stage}_median"]),
                    "p90_hours": _exact(row[f"{stage}_p90"])} for stage in DWELL}


def _exact(value) -> float | None:
    """Hours as computed (the page rounds them once, to what it shows)."""
    return None if value is None else float(value)


def _stuck(conn: Connection, scope: Scope, filters: Filters, zone: str, now: datetime,
           soon_hours: float, most: int) -> dict[str, list[StuckCase]]:
    """The ``most`` open cases of each stage that entered it first (the backlog's cases:
    every filter but the time range)."""
    where = raw_where(replace(filters, start=None, end=None), scope).add("c.status = 'open'")
    query = (f"SELECT * FROM (SELECT {STUCK_LISTED}, {stock.stage_sql()} AS stage, "
             f"{ENTERED} AS entered, row_number() OVER (PARTITION BY {stock.stage_sql()} "
             f"ORDER BY {ENTERED}, c.id) AS nth FROM case_event c WHERE {where.sql}) s "
             f"WHERE nth <= :most ORDER BY stage, nth")
    found: dict[str, list[StuckCase]] = {}
    for row in run(conn, query, {**where.params, "most": most}).mappings():
        found.setdefault(row["stage"], []).append({
            "id": row["id"], "reported_at": iso(row["reported_at"], zone),
            "category_1": row["category_1"], "category_2": row["category_2"],
            "handling_unit": row["handling_unit"],
            "deadline": iso(row["deadline"], zone),
            "entered": iso(row["entered"], zone),
            "waited_hours": round((now - row["entered"]).total_seconds() / 3600, 3),
            "due": stock.mark(row["status"], row["deadline"], now, soon_hours)})
    return found

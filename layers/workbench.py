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

The dashboard's /workbench page and ``/api/workbench`` draw the :class:`Workbench` this
returns.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypedDict

from sqlalchemy import Connection, Engine

from layers import backlog as stock
from layers.access import scope_for
from layers.cases import local_zone, raw_where
from layers.filters import Filters
from layers.scope import Scope
from layers.sql import run
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


@dataclass(frozen=True)
class Workbench:
    """What the workbench shows of a scope, as ``who`` may see it."""

    scope: Unit
    breadcrumb: list[Unit]
    period: dict                # the flows' period: {"start", "end"} local ISO or None
    now: str                    # the backlog's instant
    funnel: list[Stage]


def workbench(engine: Engine, filters: Filters, zone: str, who: Principal,
              soon_hours: float = DUE_SOON_HOURS) -> Workbench:
    """The workbench of ``filters``' scope as ``who`` may see it (``filters`` as read, their
    period placed here in the aggregates' zone; times in that zone)."""
    with engine.connect() as conn:
        days = local_zone(conn, zone)
        filters = filters.resolved(days)
        scope = scope_for(conn, who, filters.scope)
        return read(conn, scope, filters, days, soon_hours)


def read(conn: Connection, scope: Scope, filters: Filters, zone: str,
         soon_hours: float = DUE_SOON_HOURS) -> Workbench:
    """The workbench of ``scope`` under ``filters`` (period resolved), times in ``zone``."""
    now = stock.database_now(conn)
    return Workbench(
        scope={"code": scope.code, "name": scope.name, "level": scope.level},
        breadcrumb=[{"code": c, "name": n, "level": lv} for c, n, lv in scope.breadcrumb],
        period={"start": iso(filters.start, zone), "end": iso(filters.end, zone)},
        now=iso(now, zone),
        funnel=funnel(conn, scope, filters, zone, now, soon_hours))


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
                    "median_hours": _round(row[f"{stage}_median"]),
                    "p90_hours": _round(row[f"{stage}_p90"])} for stage in DWELL}


def _round(value) -> float | None:
    return None if value is None else round(float(value), 3)


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

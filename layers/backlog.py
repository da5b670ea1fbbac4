"""The backlog now: the open cases of a scope at this moment, whatever the time range.

The time range selects *flows* (cases received in the period, and of those the closed, on
time, satisfied ones); the backlog is a stock and has no period: 在办 (open), 超期未办结
(overdue: open past the deadline), 即将超期 (due soon: open, the deadline within the next
``soon_hours``) and the stage each open case waits at. It does follow every other filter:
it is the backlog of what the user filtered (scope, categories, channels, map box); a
status filter keeps the open cases it selects ("overdue" alone: the overdue ones; "closed"
alone: none).

"Now" is the database's ``now()``: the start of the view's transaction, the same instant
for the counts, the marks of single cases (:func:`mark`) and the ``now`` a view reports.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import Connection

from layers.cases import child_column, raw_where
from layers.filters import Filters
from layers.scope import Scope
from layers.sql import run
from onemap.schema import LEVEL_COLUMN
from onemap.settings import DUE_SOON_HOURS

# The stages of 受理 → 分拨 → 处置 → 反馈 → 评价, each named by the timestamp that ends it:
# an open case waits at the stage after the last one it has a time for.
STAGES = ("accepted_at", "dispatched_at", "handled_at", "feedback_at", "evaluated_at")
COUNTS = ("open", "overdue", "due_soon")
OVERDUE = "{a}status = 'open' AND {a}deadline < now()"
DUE_SOON = ("{a}status = 'open' AND {a}deadline >= now() "
            "AND {a}deadline < now() + make_interval(secs => :soon_seconds)")


def stage_sql(a: str = "c.") -> str:
    """The stage (a ``STAGES`` name) an open case of alias ``a`` waits at."""
    done = [f"WHEN {a}{stage} IS NOT NULL THEN '{after}'"
            for stage, after in zip(STAGES[-2::-1], STAGES[:0:-1], strict=True)]
    return f"CASE {' '.join(done)} ELSE '{STAGES[0]}' END"


def empty() -> dict:
    """The backlog of a unit without open cases."""
    return {**dict.fromkeys(COUNTS, 0), "stages": dict.fromkeys(STAGES, 0)}


def backlog(conn: Connection, scope: Scope, filters: Filters,
            soon_hours: float = DUE_SOON_HOURS, by_child: bool = False) -> dict:
    """The open, overdue and due-soon cases of ``scope`` now and the stage they wait at,
    under every filter but the time range; by child code when ``by_child`` (cases placed
    above the child level under the key None), else the scope's under None."""
    if filters.statuses and not {"open", "overdue"} & set(filters.statuses):
        return {None: empty()}  # closed cases only: no backlog
    where = raw_where(replace(filters, start=None, end=None), scope).add("c.status = 'open'")
    for code, _, level in scope.breadcrumb:
        # The scope's street and community as well: the index on open cases leads with them.
        if 2 <= level < scope.level:
            where.add(f"c.{LEVEL_COLUMN[level]} = :above_{level}", **{f"above_{level}": code})
    key = f"c.{child_column(scope)}" if by_child else "NULL"
    query = (f"SELECT {key} AS code, {stage_sql()} AS stage, count(*) AS open, "
             f"count(*) FILTER (WHERE {OVERDUE.format(a='c.')}) AS overdue, "
             f"count(*) FILTER (WHERE {DUE_SOON.format(a='c.')}) AS due_soon "
             f"FROM case_event c WHERE {where.sql} GROUP BY 1, 2")
    found: dict = {}
    params = {**where.params, "soon_seconds": soon_hours * 3600}
    for row in run(conn, query, params).mappings():
        unit = found.setdefault(row["code"], empty())
        for name in COUNTS:
            unit[name] += int(row[name])
        unit["stages"][row["stage"]] += int(row["open"])
    return found if by_child else {None: found.get(None, empty())}


def total(by_child: dict) -> dict:
    """The scope's backlog: the sum of its children's (and of those placed above them)."""
    summed = empty()
    for unit in by_child.values():
        for name in COUNTS:
            summed[name] += unit[name]
        for stage in STAGES:
            summed["stages"][stage] += unit["stages"][stage]
    return summed


def database_now(conn: Connection) -> datetime:
    """The instant the backlog is counted at (the transaction's ``now()``)."""
    return run(conn, "SELECT now()", {}).scalar_one()


def mark(status: str | None, deadline: datetime | None, now: datetime,
         soon_hours: float = DUE_SOON_HOURS) -> dict | None:
    """``{"due": "overdue" | "due_soon", "hours": h}`` for a case that is overdue (hours
    past the deadline) or due soon (hours left), else None: the rules of ``OVERDUE`` and
    ``DUE_SOON`` for one case, against the same ``now``."""
    if status != "open" or deadline is None:
        return None
    # Hours as they are: the page rounds them down to its minutes or hours, and rounding
    # them here first made 3 d 4 h 59 min 50 s over read 超期 3天5小时.
    left = (deadline - now) / timedelta(hours=1)
    if left < 0:
        return {"due": "overdue", "hours": -left}
    if left < soon_hours:
        return {"due": "due_soon", "hours": left}
    return None

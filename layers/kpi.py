"""The KPIs of a view: a scope's figures and each of its children's — volumes, closure,
timeliness, satisfaction, resolution levels (琐事不出网格…), channel mix, top categories,
trend, the flows' 环比 and 同比 (``layers.comparison``), reports by weekday and hour — read
through one :class:`layers.case_query.CaseQuery`, and the scope's IoT devices and
facilities.

Flows (cases received in the range, and of those the closed, on time, satisfied ones) are
counted over the period; the backlog (open, overdue, due soon, by stage) now, whatever the
range (``layers.backlog``).
"""

from __future__ import annotations

from sqlalchemy import Connection

from layers import backlog as stock
from layers.case_query import CaseQuery
from layers.catalog import default_catalog
from layers.comparison import comparisons
from layers.filters import Filters
from layers.scope import Scope
from layers.sql import ident, run
from layers.summary import ratio
from onemap.settings import DUE_SOON_HOURS


def with_children(conn: Connection, scope: Scope, filters: Filters, zone: str,
                  soon_hours: float = DUE_SOON_HOURS, clock: str | None = None,
                  hours: bool = True) -> dict:
    """Every KPI of ``scope`` under ``filters`` (days local to ``zone``, the aggregates'),
    with its children's under ``"children"``; weekdays and hours of reports are local to
    ``clock``, the deployment's zone (``zone`` when not given). Without ``hours`` the
    weekday × hour grid is not read (an empty list): it counts the cases themselves, so
    its cost grows with them, unlike the aggregates' figures."""
    query = CaseQuery(conn, scope, filters, zone, soon_hours)
    flows, now = query.closed(), query.backlog()
    return {
        "scope": {"code": scope.code, "name": scope.name, "level": scope.level},
        "source": query.source,
        # The flows' period (local midnights; None: open) and the backlog's instant.
        "period": {"start": _iso(filters.start), "end": _iso(filters.end)},
        "backlog": {"now": query.now().isoformat(), "soon_hours": soon_hours,
                    "stages": now["stages"]},
        "cases": {**flows, **{name: now[name] for name in stock.COUNTS}},
        "compare": comparisons(query, flows),
        **query.mixes(),
        "trend": query.trend(),
        "weekday_hours": query.weekday_hours(clock or zone) if hours else [],
        **point_counts(conn, scope, filters),
        "children": query.by_child(),
    }


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def point_counts(conn: Connection, scope: Scope, filters: Filters) -> dict:
    """IoT devices by status (online rate, active alarms) and facilities by kind in the
    scope, in one statement (both layers' filters bind the same names to the same values)."""
    catalog = default_catalog()
    devices, places = catalog.get("iot-devices"), catalog.get("facilities")
    on_devices, on_places = devices.where(scope, filters), places.where(scope, filters)
    rows = run(conn,
               f"SELECT true AS device, {devices.value('status')} AS key, count(*) AS n "
               f"FROM {ident(devices.table)} t WHERE {on_devices.sql} GROUP BY 2 UNION ALL "
               f"SELECT false, {places.value('kind')}, count(*) FROM {ident(places.table)} t "
               f"WHERE {on_places.sql} GROUP BY 2 ORDER BY 1, 3 DESC, 2",
               {**on_devices.params, **on_places.params}).all()
    status = {key: int(n) for device, key, n in rows if device}
    total = sum(status.values())
    iot = {"devices": total, "online": status.get("online", 0),
           "offline": status.get("offline", 0), "alarm": status.get("alarm", 0),
           "online_rate": ratio(status.get("online", 0), total)}
    return {"iot": iot, "facilities": {key: int(n) for device, key, n in rows if not device}}

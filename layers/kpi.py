"""KPIs of a scope and of each of its children: volumes, closure, timeliness, satisfaction,
resolution levels (琐事不出网格…), channel mix, top categories, trend, IoT and facilities.

Flows (cases received in the range, and of those the closed, on time, satisfied ones) come
from the daily aggregates whenever they can answer the filters exactly
(``layers.cases.rollup_answers``), else from ``case_event``; the backlog (open, overdue, due
soon, by stage) is counted live and now, whatever the range (``layers.backlog``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from layers import backlog as stock
from layers.cases import (
    Rows,
    child_column,
    raw_rows,
    rollup_answers,
    rollup_rows,
    rollup_table,
    rollup_where,
)
from layers.catalog import default_catalog
from layers.filters import Filters
from layers.scope import Scope
from layers.sql import run
from onemap import aggregates as agg
from onemap.settings import DUE_SOON_HOURS

RESOLUTION = ("grid", "community", "street", "district")  # resolved_level 4, 3, 2, 1
TREND_WEEKLY_AFTER_DAYS = 120
# The fine handling-time histograms hold no grid, category or channel: for a grid, or under
# such a filter, the median is exact from the cases up to this many closed ones (a few ms),
# and beyond it the aggregates' hourly buckets give it, marked approximate.
EXACT_MEDIAN_MAX = 20_000

# A view's figures from its cases (``c``, local days in :tz) or from aggregate rows (``r``):
# every declared measure, the hourly buckets only from the aggregates (the cases give the
# median exactly).
LOCAL_DAYS = {"day": "(c.reported_at AT TIME ZONE :tz)::date",
              "closed_day": "(c.closed_at AT TIME ZONE :tz)::date"}
RAW_MEASURES = ", ".join(
    [f"{m.counted(**LOCAL_DAYS)} AS {m.name}"
     for m in agg.MEASURES if m.name not in agg.HOURS_COLUMNS]
    + ["percentile_cont(0.5) WITHIN GROUP (ORDER BY c.handling_hours) AS median_hours"])
ROLLUP_MEASURES = ", ".join([f"{m.summed()} AS {m.name}" for m in agg.MEASURES]
                            + ["NULL::float8 AS median_hours"])


def with_children(conn: Connection, scope: Scope, filters: Filters, zone: str,
                  soon_hours: float = DUE_SOON_HOURS) -> dict:
    """:func:`kpis` with :func:`children` under ``"children"``: whether the aggregates
    answer is asked once, and the backlog is counted once for both, by child, and summed
    for the scope."""
    fast = rollup_answers(conn, filters, zone)
    live = (stock.backlog(conn, scope, filters, soon_hours, by_child=True)
            if scope.child_level else None)
    data = _kpis(conn, scope, filters, zone, fast, live, soon_hours)
    data["children"] = _children(conn, scope, filters, zone, fast, live)
    return data


def kpis(conn: Connection, scope: Scope, filters: Filters, zone: str,
         soon_hours: float = DUE_SOON_HOURS) -> dict:
    """Every KPI of ``scope`` under ``filters`` (times in the local ``zone``)."""
    return _kpis(conn, scope, filters, zone, rollup_answers(conn, filters, zone), None,
                 soon_hours)


def children(conn: Connection, scope: Scope, filters: Filters, zone: str,
             soon_hours: float = DUE_SOON_HOURS) -> list[dict]:
    """The KPIs of each child unit of ``scope`` (the drill-down's next level), zero-filled."""
    if scope.child_level is None:
        return []
    return _children(conn, scope, filters, zone, rollup_answers(conn, filters, zone),
                     stock.backlog(conn, scope, filters, soon_hours, by_child=True))


def _kpis(conn: Connection, scope: Scope, filters: Filters, zone: str, fast: bool,
          open_by_child: dict | None, soon_hours: float) -> dict:
    """:func:`kpis`, ``fast`` when the aggregates answer; ``open_by_child``: the children's
    backlog, when counted already."""
    row = _closed_figures(conn, scope, filters, zone, fast)
    figures = summarize(row)
    if fast:
        figures.update(_median(conn, scope, filters, zone, figures["closed"]))
    now = stock.total(open_by_child if open_by_child is not None else
                      stock.backlog(conn, scope, filters, soon_hours))
    figures.update({name: now[name] for name in stock.COUNTS})
    return {
        "scope": {"code": scope.code, "name": scope.name, "level": scope.level},
        "source": "rollup" if fast else "cases",
        # The flows' period (local midnights; None: open) and the backlog's instant.
        "period": {"start": _iso(filters.start), "end": _iso(filters.end)},
        "backlog": {"now": stock.database_now(conn).isoformat(), "soon_hours": soon_hours,
                    "stages": now["stages"]},
        "cases": figures,
        **_mixes(conn, scope, filters, zone, fast),
        "trend": trend(conn, scope, filters, zone, fast),
        **point_counts(conn, scope, filters),
    }


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def _children(conn: Connection, scope: Scope, filters: Filters, zone: str, fast: bool,
              open_by_child: dict) -> list[dict]:
    """:func:`children`, with the children's backlog ``open_by_child``."""
    if scope.child_level is None:
        return []
    rows = []
    for unit in _closed_by_child(conn, scope, filters, zone, fast):
        figures = summarize(unit)
        now = open_by_child.get(unit["code"], stock.empty())
        figures.update({name: now[name] for name in stock.COUNTS})
        area = float(unit["area_km2"])
        figures["per_km2"] = round(figures["total"] / area, 2) if area else None
        rows.append({"code": unit["code"], "name": unit["name"], "area_km2": area, **figures})
    return rows


def summarize(row) -> dict:
    """Rates and shares from summed counts (a pure function of one result row)."""
    values = dict(row)

    def get(key: str):
        return values.get(key) or 0

    total, closed = int(get("total")), int(get("closed"))
    with_deadline = int(get("closed_on_time")) + int(get("closed_late"))
    resolved = [int(get(f"res_{name}")) for name in RESOLUTION]
    exact = values.get("median_hours") is not None
    median = get("median_hours") or median_from_histogram(
        [int(get(h)) for h in agg.HOURS_COLUMNS])
    return {
        "total": total, "closed": closed, "above_grid": int(get("above_grid")),
        "on_time_rate": _ratio(int(get("closed_on_time")), with_deadline),
        "same_day_rate": _ratio(int(get("closed_same_day")), closed),
        "within_3d_rate": _ratio(int(get("closed_3d")), closed),
        "median_hours": round(float(median), 2) if median else None,
        "median_approx": bool(median) and not exact,
        "satisfaction": _ratio(int(get("satisfaction_sum")), int(get("satisfaction_n")), 2),
        "resolution": {name: _ratio(n, sum(resolved)) for name, n in
                       zip(RESOLUTION, resolved, strict=True)},
    }


def _median(conn, scope: Scope, filters: Filters, zone: str, closed: int) -> dict:
    """The scope's median handling time when the aggregates answer: from the fine
    histograms (within 2.5 minutes or 1 %), or exact from the cases for a grid or under a
    category or channel filter when they are few; else nothing (the hourly buckets' value
    stays)."""
    if not closed:
        return {}
    if filters.categories or filters.channels or scope.level == 4:
        if closed > EXACT_MEDIAN_MAX:
            return {}
        rows = raw_rows(filters, scope)
        value = run(conn, f"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY "
                          f"c.handling_hours) FROM {rows.sql}", rows.params).scalar()
    else:
        rows = _scope_rows(scope, replace(filters, statuses=()), zone, True,
                           table=agg.HISTOGRAM_DAY.name)
        value = median_from_fine(run(
            conn, f"SELECT u.b, sum(u.n) FROM {rows.sql} CROSS JOIN LATERAL "
                  f"unnest(r.buckets, r.counts) AS u(b, n) GROUP BY 1 ORDER BY 1",
            rows.params).all())
    return {"median_hours": None if value is None else round(float(value), 2),
            "median_approx": False}


def median_from_fine(counts: list[tuple[int, int]]) -> float | None:
    """The median (as ``percentile_cont(0.5)``: the mean of the two middle values when
    their number is even) from (fine bucket, count) pairs in bucket order, each middle value
    taken as its bucket's middle."""
    total = sum(n for _, n in counts)
    if not total:
        return None
    middles, seen = [], 0
    for bucket, n in counts:
        low, high = agg.fine_bucket_bounds(bucket)
        for rank in ((total - 1) // 2, total // 2):
            if seen <= rank < seen + n:
                middles.append((low + high) / 2)
        seen += n
    return sum(middles) / 2


def median_from_histogram(counts: list[int]) -> float | None:
    """The median, interpolated linearly inside its ``agg.HOUR_BUCKETS`` bucket."""
    total = sum(counts)
    if total == 0:
        return None
    bounds = (0, *agg.HOUR_BUCKETS, agg.HOUR_BUCKETS[-1] * 2)
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= total / 2:
            return bounds[i] + (bounds[i + 1] - bounds[i]) * (total / 2 - seen) / n
        seen += n
    return None


def _ratio(part: int, whole: int, digits: int = 6) -> float | None:
    return round(part / whole, digits) if whole else None


def _scope_rows(scope: Scope, filters: Filters, zone: str, fast: bool,
                table: str | None = None, weeks: bool = True, counts: bool = False) -> Rows:
    """Where the scope's own figures come from: its aggregates (alias ``r``; by day only
    unless ``weeks``; only ``total`` read if ``counts``) or its cases (alias ``c``), under
    the filters."""
    if fast:
        where = rollup_where(filters, max(scope.level, 1), scope.code, False)
        return rollup_rows(where, filters, zone, table or rollup_table(filters), weeks=weeks,
                           counts=counts)
    return raw_rows(filters, scope)


def _closed_figures(conn, scope: Scope, filters: Filters, zone: str, fast: bool):
    rows = _scope_rows(scope, filters, zone, fast)
    measures = ROLLUP_MEASURES if fast else RAW_MEASURES
    query = f"SELECT {measures} FROM {rows.sql}"
    return run(conn, query, {**rows.params, "tz": zone}).mappings().one()


def _closed_by_child(conn, scope: Scope, filters: Filters, zone: str, fast: bool) -> list:
    """Every child unit (code, name, area) with its summed figures (NULL when it has no
    cases), in code order."""
    if fast:
        where = rollup_where(filters, scope.child_level, scope.code, True)
        rows = rollup_rows(where, filters, zone, rollup_table(filters))
        figures = f"SELECT r.unit_code AS child, {ROLLUP_MEASURES} FROM {rows.sql} GROUP BY 1"
    else:
        column = child_column(scope)
        rows = raw_rows(filters, scope)
        figures = (f"SELECT c.{column} AS child, {RAW_MEASURES} FROM {rows.sql} "
                   f"WHERE c.{column} IS NOT NULL GROUP BY 1")
    query = (f"SELECT a.code, a.name, a.area_km2, f.* FROM admin_unit a "
             f"LEFT JOIN ({figures}) f ON f.child = a.code WHERE a.level = :child_level "
             f"AND (CAST(:parent AS text) IS NULL OR a.parent_code = :parent) ORDER BY a.code")
    params = {**rows.params, "tz": zone, "child_level": scope.child_level, "parent": scope.code}
    return run(conn, query, params).mappings().all()


def _mixes(conn, scope, filters, zone, fast: bool) -> dict[str, list[dict]]:
    """The channel mix and the top 10 categories, from one pass over the rows (grouping
    sets). Mixes need the category and channel columns: the full-grain aggregates."""
    rows = _scope_rows(scope, filters, zone, fast, table=agg.ROLLUP.name, counts=True)
    a, measure = ("r", agg.TOTAL.summed()) if fast else ("c", "count(*)")
    query = (f"SELECT GROUPING({a}.channel) = 0 AS by_channel, "
             f"coalesce({a}.channel, {a}.category_1) AS key, {measure} AS n FROM {rows.sql} "
             f"GROUP BY GROUPING SETS (({a}.channel), ({a}.category_1)) ORDER BY 1, 3 DESC, 2")
    mixes: dict[str, list[dict]] = {"channels": [], "categories": []}
    for by_channel, key, n in run(conn, query, rows.params):
        mixes["channels" if by_channel else "categories"].append({"key": key, "n": int(n)})
    mixes["channels"] = mixes["channels"][:50]
    mixes["categories"] = mixes["categories"][:10]
    return mixes


def trend(conn, scope: Scope, filters: Filters, zone: str, fast: bool) -> dict:
    """Cases per local day, or per week (from Monday) when the range is long: every period
    of the range, those without cases as 0; a week only partly inside the range is
    ``partial`` (its ``days`` say how many of its days are)."""
    days = (filters.end - filters.start).days if filters.start and filters.end else 10_000
    unit = "week" if days > TREND_WEEKLY_AFTER_DAYS else "day"
    rows = _scope_rows(scope, filters, zone, fast, weeks=unit == "week", counts=True)
    bucket, measure = (("r.day", agg.TOTAL.summed()) if fast else
                       ("(c.reported_at AT TIME ZONE :tz)::date", "count(*)"))
    query = (f"SELECT date_trunc('{unit}', {bucket})::date AS period, {measure} AS n "
             f"FROM {rows.sql} GROUP BY 1 ORDER BY 1")
    counts = {p: int(n) for p, n in run(conn, query, {**rows.params, "tz": zone})}
    first, end = _local_days(filters, zone)
    return {"unit": unit, "points": _series(counts, unit, first, end)}


def _local_days(filters: Filters, zone: str) -> tuple[date | None, date | None]:
    """The range's first local day and the local day after its last (None: open)."""
    local = ZoneInfo(zone)
    first = filters.start.astimezone(local).date() if filters.start else None
    if filters.end is None:
        return first, None
    end = filters.end.astimezone(local)
    return first, end.date() + timedelta(days=0 if end.time() == time(0) else 1)


def _series(counts: dict[date, int], unit: str, first: date | None,
            end: date | None) -> list[dict]:
    """Every period from the range's first to its last (an open side: the first or last
    period with cases), 0 where ``counts`` has none, weeks marked when partly outside."""
    step = timedelta(days=7 if unit == "week" else 1)
    monday = (lambda d: d - timedelta(days=d.weekday())) if unit == "week" else (lambda d: d)
    low = monday(first) if first else min(counts, default=None)
    high = monday(end - timedelta(days=1)) if end else max(counts, default=None)
    points, period = [], low
    while low is not None and high is not None and period <= high:
        point = {"period": period.isoformat(), "n": counts.get(period, 0)}
        if unit == "week":
            inside = sum(1 for i in range(7) if (first is None or period + timedelta(i) >= first)
                         and (end is None or period + timedelta(i) < end))
            if inside < 7:
                point.update(partial=True, days=inside)
        points.append(point)
        period += step
    return points


def point_counts(conn, scope: Scope, filters: Filters) -> dict:
    """IoT devices by status (online rate, active alarms) and facilities by kind in the
    scope, in one statement (both layers' filters bind the same names to the same values)."""
    catalog = default_catalog()
    layer = catalog.get("iot-devices")
    devices = layer.where(scope, filters)
    places = catalog.get("facilities").where(scope, filters)
    rows = run(conn,
               f"SELECT true AS device, {layer.value('status')} AS key, count(*) AS n "
               f"FROM iot_device t "
               f"WHERE {devices.sql} GROUP BY 2 UNION ALL "
               f"SELECT false, t.kind, count(*) FROM facility t WHERE {places.sql} GROUP BY 2 "
               f"ORDER BY 1, 3 DESC, 2", {**devices.params, **places.params}).all()
    status = {key: int(n) for device, key, n in rows if device}
    total = sum(status.values())
    iot = {"devices": total, "online": status.get("online", 0),
           "offline": status.get("offline", 0), "alarm": status.get("alarm", 0),
           "online_rate": _ratio(status.get("online", 0), total)}
    return {"iot": iot, "facilities": {key: int(n) for device, key, n in rows if not device}}

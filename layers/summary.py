"""A view's figures from its summed counts: rates and shares, medians from histograms, and
a trend's periods. Pure functions, no SQL: what each figure is made of is declared in
``onemap.aggregates`` (``SHOWN``, ``RATIOS``, ``RESOLVED``); ``layers.case_query`` reads the
counts.
"""

from __future__ import annotations

from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

from layers.filters import Filters
from onemap import aggregates as agg


def summarize(row) -> dict:
    """The shown counts, ratios, resolution shares and median of one row of summed
    measures (``median_hours``, when the row has it, is the exact median; else the hourly
    buckets' estimate, marked approximate)."""
    values = dict(row)

    def get(name: str) -> int:
        return int(values.get(name) or 0)

    figures: dict = {name: get(name) for name in agg.SHOWN}
    for r in agg.RATIOS:
        figures[r.name] = ratio(get(r.part), sum(get(w) for w in r.whole), r.digits)
    resolved = {name: get(name) for name in agg.RESOLVED}
    figures["resolution"] = {name.removeprefix("res_"): ratio(n, sum(resolved.values()))
                             for name, n in resolved.items()}
    exact = values.get("median_hours") is not None
    median = values.get("median_hours") or median_from_histogram(
        [get(h) for h in agg.HOURS_COLUMNS])
    figures["median_hours"] = round(float(median), 2) if median else None
    figures["median_approx"] = bool(median) and not exact
    return figures


def ratio(part: int, whole: int, digits: int = 6) -> float | None:
    """``part / whole`` to ``digits`` decimals, None when ``whole`` is 0. Six digits: the
    page rounds again, and a ratio rounded to 4 first showed 82.05…% as 82.0 %."""
    return round(part / whole, digits) if whole else None


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


def local_days(filters: Filters, zone: str) -> tuple[date | None, date | None]:
    """The range's first local day and the local day after its last (None: open)."""
    local = ZoneInfo(zone)
    first = filters.start.astimezone(local).date() if filters.start else None
    if filters.end is None:
        return first, None
    end = filters.end.astimezone(local)
    return first, end.date() + timedelta(days=0 if end.time() == time(0) else 1)


def series(counts: dict[date, int], unit: str, first: date | None,
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

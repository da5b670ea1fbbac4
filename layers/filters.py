"""Filters every query takes: scope, time range, categories, channels, statuses, kinds, bbox.

``parse_filters`` turns request parameters (strings, as in a URL) into a :class:`Filters`,
raising :class:`BadParameter` for anything malformed. ``Where`` turns filters into SQL with
every value bound; only catalog-known identifiers are ever written into the SQL text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from layers.errors import BadParameter

RANGES = ("today", "7d", "30d", "90d", "year", "all")
CASE_STATUSES = ("open", "closed", "overdue")
DEVICE_STATUSES = ("online", "offline", "alarm")
DEVICE_OFFLINE_AFTER = timedelta(minutes=30)
_CODE = re.compile(r"^[\w\- ]{1,40}$")
# A list filter holds at most this many items (comma-separated or repeated): a list of
# 600,000 categories cost the database 42 s of CPU. The district's whole category tree,
# the most the dashboard can pick, stays below it.
MAX_LIST_ITEMS = 200


@dataclass(frozen=True)
class Filters:
    scope: str | None = None
    start: datetime | None = None      # inclusive, aware
    end: datetime | None = None        # exclusive, aware
    categories: tuple[str, ...] = ()   # match any of category_1 … category_4
    channels: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()     # open, closed, overdue
    kinds: tuple[str, ...] = ()        # facility or device kinds
    device_statuses: tuple[str, ...] = ()
    bbox: tuple[float, float, float, float] | None = None
    # A device silent for longer is offline (settings: ONEMAP_DEVICE_OFFLINE_MINUTES).
    device_offline_after: timedelta = DEVICE_OFFLINE_AFTER
    extra: dict = field(default_factory=dict, compare=False)

    def with_scope(self, scope: str | None) -> Filters:
        return replace(self, scope=scope)


def parse_filters(params: Mapping[str, object], timezone: str = "Asia/Shanghai",
                  now: datetime | None = None,
                  device_offline_after: timedelta = DEVICE_OFFLINE_AFTER) -> Filters:
    """Read filters from request parameters; every problem names the parameter
    (``device_offline_after``: the deployment's setting, not a request's)."""
    zone = ZoneInfo(timezone)
    now = now or datetime.now(zone)
    start, end = _time_range(params, zone, now)
    return Filters(
        scope=_code(params.get("scope")),
        start=start, end=end,
        categories=_list(params, "category"),
        channels=_list(params, "channel"),
        statuses=_choices(params, "status", CASE_STATUSES),
        kinds=_list(params, "kind"),
        device_statuses=_choices(params, "device_status", DEVICE_STATUSES),
        bbox=_bbox(params.get("bbox")),
        device_offline_after=device_offline_after,
    )


def param_pairs(params: Mapping) -> list[tuple[str, str]]:
    """Request parameters as (name, text) pairs, a repeated one once per value."""
    return [(name, str(v)) for name, value in params.items()
            for v in (value if isinstance(value, list | tuple) else [value])]


def _first(value) -> str | None:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _code(value) -> str | None:
    code = _first(value)
    if code is not None and not _CODE.match(code):
        raise BadParameter("scope", code, "not an admin code")
    return code


def _list(params: Mapping[str, object], name: str) -> tuple[str, ...]:
    raw = params.get(name)
    values = raw if isinstance(raw, list | tuple) else [raw] if raw is not None else []
    items = [part.strip() for v in values for part in str(v).split(",")]
    items = [i for i in items if i]
    if len(items) > MAX_LIST_ITEMS:
        raise BadParameter(name, f"{len(items):,} items", f"at most {MAX_LIST_ITEMS} items")
    for item in items:
        if len(item) > 100:
            raise BadParameter(name, item[:40] + "…", "longer than 100 characters")
        if "\x00" in item:  # PostgreSQL text cannot hold it: the query would fail
            raise BadParameter(name, item, "contains a NUL character")
    return tuple(dict.fromkeys(items))


def _choices(params, name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    values = _list(params, name)
    for value in values:
        if value not in allowed:
            raise BadParameter(name, value, f"must be one of {', '.join(allowed)}")
    return values


def _bbox(value) -> tuple[float, float, float, float] | None:
    text = _first(value)
    if text is None:
        return None
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise BadParameter("bbox", text, "expected minx,miny,maxx,maxy numbers") from None
    if len(parts) != 4:
        raise BadParameter("bbox", text, "expected four numbers: minx,miny,maxx,maxy")
    minx, miny, maxx, maxy = parts
    if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
        raise BadParameter("bbox", text, "not a lon/lat box with min < max")
    return parts


def _time_range(params, zone: ZoneInfo, now: datetime):
    """``range`` (today, 7d, 30d, 90d, year, all) or ``start``/``end`` or OGC ``datetime``."""
    preset = _first(params.get("range"))
    if preset is not None:
        return preset_range(preset, zone, now)
    interval = _first(params.get("datetime"))
    if interval is not None:
        return _interval(interval, zone)
    start = _instant("start", _first(params.get("start")), zone)
    end = _instant("end", _first(params.get("end")), zone, end_of_day=True)
    if start and end and start >= end:
        raise BadParameter("end", _first(params.get("end")), "must be after start")
    return start, end


def preset_range(preset: str, zone: ZoneInfo, now: datetime):
    """Local-midnight-aligned ranges ending tomorrow at 00:00 (so today is included)."""
    if preset not in RANGES:
        raise BadParameter("range", preset, f"must be one of {', '.join(RANGES)}")
    tomorrow = datetime.combine(now.astimezone(zone).date() + timedelta(days=1), time(), zone)
    if preset == "all":
        return None, None
    if preset == "year":
        return datetime(now.astimezone(zone).year, 1, 1, tzinfo=zone), tomorrow
    days = {"today": 1, "7d": 7, "30d": 30, "90d": 90}[preset]
    return tomorrow - timedelta(days=days), tomorrow


def _interval(text: str, zone: ZoneInfo):
    parts = text.split("/")
    if len(parts) == 1:
        instant = _instant("datetime", parts[0], zone)
        return instant, instant + timedelta(seconds=1)
    if len(parts) != 2:
        raise BadParameter("datetime", text, "expected an instant or start/end")
    start = None if parts[0] in ("", "..") else _instant("datetime", parts[0], zone)
    end = None if parts[1] in ("", "..") else _instant("datetime", parts[1], zone, True)
    if start and end and start >= end:
        raise BadParameter("datetime", text, "the end must be after the start")
    return start, end


def _instant(name: str, text: str | None, zone: ZoneInfo, end_of_day: bool = False):
    if text is None:
        return None
    whole_day = re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text) is not None
    try:
        if whole_day:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time(), zone)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadParameter(name, text, "not an ISO date or date-time") from None
    # The year is checked before any arithmetic: the day after 9999-12-31 does not exist.
    if not 1900 <= moment.year <= 2200:
        raise BadParameter(name, text, "year out of range")
    if whole_day and end_of_day:
        moment += timedelta(days=1)
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


class Where:
    """WHERE clauses with bound values: ``sql`` for the text, ``params`` for the values."""

    def __init__(self):
        self.clauses: list[str] = []
        self.params: dict[str, object] = {}

    def add(self, clause: str, **params) -> Where:
        self.clauses.append(clause)
        self.params.update(params)
        return self

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "TRUE"

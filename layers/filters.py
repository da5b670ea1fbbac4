"""Filters every query takes: scope, time range, categories, channels, statuses, kinds, bbox.

Request parameters (strings, as in a URL) become a :class:`Filters` in one place:
``read_filters`` checks them all, raising :class:`BadParameter` for anything malformed, and
keeps the time range as asked (a :class:`Period`); ``Filters.resolved`` places it in a time
zone (local midnights), and ``parse_filters`` does both. ``filter_params`` writes filters back
as parameters. The vocabularies (ranges, statuses) are declared here and in
``onemap.vocabulary``, nowhere else. ``Where`` turns filters into SQL with every value bound;
only catalog-known identifiers are ever written into the SQL text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from layers.errors import BadParameter
from onemap.vocabulary import CASE_STATUSES, DEVICE_STATUSES

# The time range presets and the local days each spans ("year": since 1 January; "all": no
# bound), in the order the dashboard offers them.
RANGE_DAYS = {"today": 1, "7d": 7, "30d": 30, "90d": 90, "year": None, "all": None}
RANGES = tuple(RANGE_DAYS)
# A case's status filter: its stored status, or overdue (open past its deadline, now).
STATUS_FILTERS = (*CASE_STATUSES, "overdue")
DEVICE_OFFLINE_AFTER = timedelta(minutes=30)
_CODE = re.compile(r"^[\w\- ]{1,40}$")
# A list filter holds at most this many items (comma-separated or repeated): a list of
# 600,000 categories cost the database 42 s of CPU. The district's whole category tree,
# the most the dashboard can pick, stays below it.
MAX_LIST_ITEMS = 200


@dataclass(frozen=True)
class Period:
    """The time range as asked: a preset of ``RANGES``; or ``start`` and ``end``, ISO dates
    (whole local days, the end day included) or date-times; or an OGC ``datetime`` instant
    or interval; nothing: no bound. A preset wins over ``datetime``, ``datetime`` over
    dates."""

    range: str | None = None
    start: str | None = None
    end: str | None = None
    datetime: str | None = None

    def bounds(self, zone: ZoneInfo, now: datetime) -> tuple[datetime | None, datetime | None]:
        """The instants [start, end) in ``zone`` (None: open), ``now`` for the presets."""
        if self.range is not None:
            return preset_range(self.range, zone, now)
        if self.datetime is not None:
            return _interval(self.datetime, zone)
        start = _instant("start", self.start, zone)
        end = _instant("end", self.end, zone, end_of_day=True)
        if start and end and start >= end:
            raise BadParameter("end", self.end, "must be after start")
        return start, end


@dataclass(frozen=True)
class Filters:
    scope: str | None = None
    period: Period = Period()          # the time range as asked …
    start: datetime | None = None      # … from (inclusive, aware) …
    end: datetime | None = None        # … to (exclusive, aware): see ``resolved``
    categories: tuple[str, ...] = ()   # match any of category_1 … category_4
    channels: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()     # of STATUS_FILTERS
    kinds: tuple[str, ...] = ()        # facility or device kinds
    device_statuses: tuple[str, ...] = ()
    bbox: tuple[float, float, float, float] | None = None
    # A device silent for longer is offline (settings: ONEMAP_DEVICE_OFFLINE_MINUTES).
    device_offline_after: timedelta = DEVICE_OFFLINE_AFTER

    def resolved(self, timezone: str, now: datetime | None = None) -> Filters:
        """These filters with the period's instants in ``timezone`` (presets end tomorrow
        at 00:00 local, from ``now``)."""
        zone = ZoneInfo(timezone)
        start, end = self.period.bounds(zone, now or datetime.now(zone))
        return replace(self, start=start, end=end)


def parse_filters(params: Mapping[str, object], timezone: str = "Asia/Shanghai",
                  now: datetime | None = None,
                  device_offline_after: timedelta = DEVICE_OFFLINE_AFTER) -> Filters:
    """Read filters from request parameters and place their period in ``timezone``; every
    problem names the parameter (``device_offline_after``: the deployment's setting, not a
    request's)."""
    filters = read_filters(params).resolved(timezone, now)
    return replace(filters, device_offline_after=device_offline_after)


def read_filters(params: Mapping[str, object], lenient: bool = False) -> Filters:
    """Filters from request parameters, each checked (a period whose dates do not parse, or
    end before they start, is refused here), the period as asked: ``start`` and ``end`` stay
    None until :meth:`Filters.resolved`. ``lenient``: a range or status outside the
    vocabulary is left out rather than refused (an old link keeps working)."""
    period = Period(range=_choice(params, "range", RANGES, lenient),
                    start=_first(params.get("start")), end=_first(params.get("end")),
                    datetime=_first(params.get("datetime")))
    period.bounds(ZoneInfo("UTC"), datetime.now(UTC))  # the dates' form and order
    return Filters(
        scope=_code(params.get("scope")),
        period=period,
        categories=_list(params, "category"),
        channels=_list(params, "channel"),
        statuses=_choices(params, "status", STATUS_FILTERS, lenient),
        kinds=_list(params, "kind"),
        device_statuses=_choices(params, "device_status", DEVICE_STATUSES, lenient),
        bbox=_bbox(params.get("bbox")),
    )


def param_pairs(params: Mapping) -> list[tuple[str, str]]:
    """Request parameters as (name, text) pairs, a repeated one once per value."""
    return [(name, str(v)) for name, value in params.items()
            for v in (value if isinstance(value, list | tuple) else [value])]


def filter_params(filters: Filters) -> dict[str, str]:
    """The request parameters that read back as ``filters`` (what a URL or an export link
    carries): lists comma-separated, the period as asked, empty ones left out."""
    period = filters.period
    params = {"scope": filters.scope, "category": ",".join(filters.categories),
              "channel": ",".join(filters.channels), "status": ",".join(filters.statuses),
              "kind": ",".join(filters.kinds), "device_status": ",".join(filters.device_statuses),
              "bbox": ",".join(map(str, filters.bbox)) if filters.bbox else None,
              "range": period.range, "start": period.start, "end": period.end,
              "datetime": period.datetime}
    return {name: value for name, value in params.items() if value}


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


def _choices(params, name: str, allowed: tuple[str, ...],
             lenient: bool = False) -> tuple[str, ...]:
    """The listed values of ``allowed`` (others refused, or left out when ``lenient``)."""
    values = _list(params, name)
    for value in values:
        if value not in allowed and not lenient:
            raise BadParameter(name, value, f"must be one of {', '.join(allowed)}")
    return tuple(v for v in values if v in allowed)


def _choice(params, name: str, allowed: tuple[str, ...], lenient: bool) -> str | None:
    """One value of ``allowed``, or None (one outside refused, or None when ``lenient``)."""
    value = _first(params.get(name))
    if value is None or value in allowed:
        return value
    if lenient:
        return None
    raise BadParameter(name, value, f"must be one of {', '.join(allowed)}")


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


def preset_range(preset: str, zone: ZoneInfo, now: datetime):
    """Local-midnight-aligned ranges ending tomorrow at 00:00 (so today is included)."""
    if preset not in RANGES:
        raise BadParameter("range", preset, f"must be one of {', '.join(RANGES)}")
    tomorrow = datetime.combine(now.astimezone(zone).date() + timedelta(days=1), time(), zone)
    if preset == "all":
        return None, None
    if preset == "year":
        return datetime(now.astimezone(zone).year, 1, 1, tzinfo=zone), tomorrow
    return tomorrow - timedelta(days=RANGE_DAYS[preset]), tomorrow


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

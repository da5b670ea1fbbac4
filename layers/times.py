"""Times as people read them: every instant shown or exported is in the deployment's zone
(``ONEMAP_TIMEZONE``), whatever zone the database session or a load's source used.

The database keeps instants (``timestamptz``) and hands them back in its session's zone;
this module is the one place that turns them into the deployment's local time: ISO 8601
with the offset for data (API, GeoJSON, CSV), ``2026-11-20 23:16`` for the screen, naive
local datetimes for Excel (which has no zones; the header names it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

NOTHING = "—"


def local(value, zone: str) -> datetime | None:
    """``value`` (an aware datetime, or ISO 8601 text with an offset) in ``zone``; None
    stays None. A naive value is taken as UTC, the zone the database session runs in."""
    if value is None or value == "":
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(zone))


def iso(value, zone: str) -> str | None:
    """ISO 8601 with the local offset, to the second: ``2026-11-20T23:16:05+08:00``."""
    moment = local(value, zone)
    return None if moment is None else moment.isoformat(timespec="seconds")


def shown(value, zone: str, seconds: bool = False) -> str:
    """The local time as the screen shows it: ``2026-11-20 23:16`` (``—`` for none)."""
    moment = local(value, zone)
    if moment is None:
        return NOTHING
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def offset_name(zone: str, when: datetime | None = None) -> str:
    """The zone as a header names it: ``Asia/Shanghai UTC+08:00`` (offset at ``when``)."""
    moment = (when or datetime.now(UTC)).astimezone(ZoneInfo(zone))
    offset = moment.strftime("%z")
    return f"{zone} UTC{offset[:3]}:{offset[3:]}"


def local_series(values: pd.Series, zone: str) -> pd.Series:
    """A column of instants (aware or UTC datetimes, None for missing) in ``zone``."""
    return pd.to_datetime(values, utc=True).dt.tz_convert(zone)


def iso_series(values: pd.Series) -> pd.Series:
    """A column of local instants as :func:`iso` text (None for missing), built a column at
    a time: the wall time to the second, then the offset each instant had (zones with
    summer time have two)."""
    if values.empty:
        return values.astype(object)
    wall = values.dt.tz_localize(None)
    utc = values.dt.tz_convert("UTC").dt.tz_localize(None)
    minutes = ((wall - utc) // pd.Timedelta(minutes=1)).astype("Int64")
    text = pd.Series(np.datetime_as_string(wall.to_numpy(dtype="datetime64[s]"), unit="s"),
                     index=values.index, dtype=object)
    offsets = minutes.map({m: _offset_text(m) for m in minutes.dropna().unique()})
    return (text + offsets).where(values.notna(), None).astype(object)


def _offset_text(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(int(minutes)), 60)
    return f"{sign}{hours:02d}:{rest:02d}"


def is_time_column(values: pd.Series) -> bool:
    """True for a column of instants (a datetime dtype, or objects with ``isoformat``). A
    column from the database holds one type, so its first value decides."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    first = values.first_valid_index()
    return values.dtype == object and first is not None and isinstance(values[first], datetime)


def age(value, now: datetime) -> timedelta | None:
    """How long before ``now`` the instant ``value`` was (None for none)."""
    moment = local(value, "UTC")
    return None if moment is None else now - moment

"""环比 and 同比's periods and changes (``layers.comparison``), without a database: the
compared periods stay on local midnights (through summer time too), 29 February, open and
part-day periods, and how a change is stated."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from layers.comparison import change, compared_days, year_before

SHANGHAI, NEW_YORK = "Asia/Shanghai", "America/New_York"


def days(first: str, last: str, zone: str = SHANGHAI) -> tuple[datetime, datetime]:
    """The local days ``first`` to ``last`` (included) as [start, end) midnights."""
    local = ZoneInfo(zone)
    start = datetime.fromisoformat(first).replace(tzinfo=local)
    return start, datetime.fromisoformat(last).replace(tzinfo=local) + timedelta(days=1)


@pytest.mark.parametrize("period, previous, a_year_before", [
    (("2026-10-01", "2026-10-31"), ("2026-08-31", "2026-09-30"), ("2025-10-01", "2025-10-31")),
    (("2026-12-03", "2026-12-03"), ("2026-12-02", "2026-12-02"), ("2025-12-03", "2025-12-03")),
    (("2026-01-01", "2026-12-03"), ("2025-01-29", "2025-12-31"), ("2025-01-01", "2025-12-03")),
    # 29 February stands for 28 February a year later …
    (("2028-02-29", "2028-02-29"), ("2028-02-28", "2028-02-28"), ("2027-02-28", "2027-02-28")),
    (("2028-02-01", "2028-02-29"), ("2028-01-03", "2028-01-31"), ("2027-02-01", "2027-02-28")),
    (("2028-02-29", "2028-03-06"), ("2028-02-22", "2028-02-28"), ("2027-02-28", "2027-03-06")),
    # … and a year before a leap year's February is the same month-days, 28 of them.
    (("2029-02-01", "2029-02-28"), ("2029-01-04", "2029-01-31"), ("2028-02-01", "2028-02-28")),
])
def test_compared_periods_are_whole_local_days(period, previous, a_year_before):
    start, end = days(*period)
    assert compared_days("previous", start, end, SHANGHAI) == days(*previous)
    assert compared_days("year_before", start, end, SHANGHAI) == days(*a_year_before)


def test_summer_time_keeps_local_midnights():
    """New York's March has a 23-hour day: the previous period is the same number of local
    days, each bound a local midnight, not the same number of hours."""
    start, end = days("2026-03-08", "2026-03-14", NEW_YORK)  # 8 March: clocks go forward
    utc = tuple(moment.astimezone(ZoneInfo("UTC")) for moment in (start, end))
    assert utc[1] - utc[0] == timedelta(days=7, hours=-1)
    before = compared_days("previous", start, end, NEW_YORK)
    assert before == days("2026-03-01", "2026-03-07", NEW_YORK)
    assert all(b.astimezone(ZoneInfo(NEW_YORK)).hour == 0 for b in before)
    assert compared_days("previous", *utc, NEW_YORK) == before  # any zone's instants


def test_open_and_part_day_periods_are_not_compared():
    start, end = days("2026-10-01", "2026-10-31")
    assert compared_days("previous", None, None, SHANGHAI) == "open"
    assert compared_days("year_before", start, None, SHANGHAI) == "open"
    assert compared_days("previous", start + timedelta(hours=9), end, SHANGHAI) == "not_days"
    with pytest.raises(ValueError, match="previous, year_before"):
        compared_days("last_week", start, end, SHANGHAI)


def test_year_before():
    assert year_before(datetime(2028, 2, 29).date()).isoformat() == "2027-02-28"
    assert year_before(datetime(2026, 12, 31).date()).isoformat() == "2025-12-31"


def test_a_change_is_stated_in_its_unit_never_as_infinity():
    assert change("total", 110, 100) == {"by": 10.0, "unit": "percent", "verdict": None}
    assert change("total", 5, 0) == {"by": None, "unit": "percent", "verdict": None}
    assert change("closed", 0, 0) == {"by": 0.0, "unit": "percent", "verdict": None}
    assert change("on_time_rate", 0.95, 0.9) == {"by": 5.0, "unit": "points",
                                                 "verdict": "better"}
    assert change("same_day_rate", 0.2, 0.25)["verdict"] == "worse"
    assert change("within_3d_rate", None, 0.8)["by"] is None
    assert change("median_hours", 30, 24) == {"by": 25.0, "unit": "percent",
                                              "verdict": "worse"}
    assert change("median_hours", 12, 24)["verdict"] == "better"
    assert change("satisfaction", 4.3, 4.35) == {"by": -0.05, "unit": "score",
                                                 "verdict": "worse"}
    assert change("on_time_rate", 0.9, 0.9) == {"by": 0.0, "unit": "points", "verdict": None}

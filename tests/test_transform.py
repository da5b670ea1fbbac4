"""Timestamps around daylight-saving changes keep their rows."""

import pandas as pd

from etl.transform import _to_utc


def test_repeated_and_skipped_local_hours_are_read_not_rejected():
    local = pd.Series(["2023-11-05 01:30:00", "2023-03-12 02:30:00", "2023-06-01 12:00:00"])
    utc = _to_utc(local, "%Y-%m-%d %H:%M:%S", "America/New_York").astype(str).tolist()
    # The repeated hour is its first (summer-time) occurrence; a skipped time moves forward.
    assert utc == ["2023-11-05 05:30:00", "2023-03-12 07:00:00", "2023-06-01 16:00:00"]

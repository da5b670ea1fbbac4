"""Facts about the schema that both the write side and the read side rely on."""

# Admin levels and the code column that holds each level's code on every point table.
LEVEL_COLUMN = {1: "district_code", 2: "street_code", 3: "community_code", 4: "grid_code"}

# Upper bounds (hours) of the aggregates' handling-time buckets; one more open-ended bucket
# follows. The aggregates hold closed cases per bucket in the columns HOURS_COLUMNS.
HOUR_BUCKETS = (1, 2, 4, 8, 12, 24, 36, 48, 72, 96, 120, 168, 240, 336, 504, 720)
HOURS_COLUMNS = tuple(f"h{i}" for i in range(len(HOUR_BUCKETS) + 1))

# The handling-time histogram the exact-enough median is read from (tables case_hours_day and
# case_hours_week: per unit and day or week, the closed cases' bucket numbers and counts as
# two arrays, only the buckets that hold cases). Buckets are 5 minutes wide up to 250
# minutes, then each 2 % wider than the one before: a median reported as its bucket's middle
# is within 2.5 minutes or 1 % of the true one.
FINE_WIDTH_HOURS = 5 / 60
FINE_LINEAR_BUCKETS = 50                # [0, 250 min) in 5-minute buckets
FINE_RATIO = 1.02


def fine_bucket_bounds(bucket: int) -> tuple[float, float]:
    """The handling hours [low, high) of a fine bucket."""
    if bucket < FINE_LINEAR_BUCKETS:
        return bucket * FINE_WIDTH_HOURS, (bucket + 1) * FINE_WIDTH_HOURS
    start = FINE_LINEAR_BUCKETS * FINE_WIDTH_HOURS
    step = bucket - FINE_LINEAR_BUCKETS
    return start * FINE_RATIO ** step, start * FINE_RATIO ** (step + 1)

"""Facts about the schema that both the write side and the read side rely on."""

# Admin levels and the code column that holds each level's code on every point table.
LEVEL_COLUMN = {1: "district_code", 2: "street_code", 3: "community_code", 4: "grid_code"}

# Upper bounds (hours) of the aggregates' handling-time buckets; one more open-ended bucket
# follows. The aggregates hold closed cases per bucket in the columns HOURS_COLUMNS.
HOUR_BUCKETS = (1, 2, 4, 8, 12, 24, 36, 48, 72, 96, 120, 168, 240, 336, 504, 720)
HOURS_COLUMNS = tuple(f"h{i}" for i in range(len(HOUR_BUCKETS) + 1))

"""Facts about the schema that both the write side and the read side rely on (the
aggregates' own are in ``onemap.aggregates``)."""

# Admin levels and the code column that holds each level's code on every point table.
LEVEL_COLUMN = {1: "district_code", 2: "street_code", 3: "community_code", 4: "grid_code"}

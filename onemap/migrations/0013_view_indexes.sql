-- Facilities and devices are counted and listed per street or community on every view:
-- without these, each such count read the whole table.
CREATE INDEX IF NOT EXISTS facility_street_idx ON facility (street_code, kind);
CREATE INDEX IF NOT EXISTS facility_community_idx ON facility (community_code, kind);
CREATE INDEX IF NOT EXISTS iot_device_street_idx ON iot_device (street_code, status);
CREATE INDEX IF NOT EXISTS iot_device_community_idx ON iot_device (community_code, status);

-- A view's channel and category mixes and its hotspot counts read one unit's days (or its
-- grids' days): with the counts included these become index-only scans instead of visiting
-- the aggregates' wide rows (a street's 90-day mixes at M: 10 ms → 2-5 ms).
CREATE INDEX IF NOT EXISTS case_rollup_mix_idx ON case_rollup (level, unit_code, day)
    INCLUDE (status, category_1, channel, total);
CREATE INDEX IF NOT EXISTS case_unit_day_unit_idx ON case_unit_day (level, unit_code, day)
    INCLUDE (status, total);

-- Hotspot statistics read every grid's days of a period: (level, day) with the unit and its
-- count included answers them by an index-only range scan (at L: 32 ms → 10 ms).
CREATE INDEX case_unit_day_level_day_idx ON case_unit_day (level, day) INCLUDE (unit_code, total);

-- The aggregates' keys carry the count: a view's mixes and hotspot counts are answered by
-- the key index alone (as by the covering indexes of 0013, which they replace), and a large
-- load builds one index fewer per table.
ALTER TABLE case_rollup DROP CONSTRAINT case_rollup_pkey,
    ADD CONSTRAINT case_rollup_pkey
        PRIMARY KEY (level, unit_code, day, category_1, channel, status) INCLUDE (total);
DROP INDEX IF EXISTS case_rollup_mix_idx;
ALTER TABLE case_unit_day DROP CONSTRAINT case_unit_day_pkey,
    ADD CONSTRAINT case_unit_day_pkey PRIMARY KEY (level, unit_code, day, status) INCLUDE (total);
DROP INDEX IF EXISTS case_unit_day_unit_idx;

-- Cases per admin unit and local day (case_rollup summed over categories and channels):
-- what hotspot statistics and trends need when no category or channel filter applies.
CREATE TABLE case_unit_day (
    level       smallint NOT NULL,
    unit_code   text NOT NULL,
    parent_code text,
    day         date NOT NULL,
    total       integer NOT NULL,
    PRIMARY KEY (level, unit_code, day)
);
CREATE INDEX case_unit_day_parent_idx ON case_unit_day (level, parent_code, day);
INSERT INTO case_unit_day
SELECT level, unit_code, parent_code, day, sum(total) FROM case_rollup GROUP BY 1, 2, 3, 4;

-- The aggregates' handling-time histogram and resolution levels become plain columns, where
-- they were arrays (h0 … h16: closed cases per onemap.schema.HOUR_BUCKETS bucket;
-- res_grid … res_district: closed cases resolved at each level). Summing an array element
-- deconstructs the array on every row: a community's children (2,730 day rows at L) took
-- 10.5 ms, 4-5 ms from columns. The tables are rewritten in unit and day order, the order
-- the loads write them in.
CREATE TABLE case_rollup_columns (
    level            smallint NOT NULL,
    unit_code        text NOT NULL,
    parent_code      text,
    day              date NOT NULL,
    category_1       text NOT NULL,
    channel          text NOT NULL,
    status           text NOT NULL,
    total            integer NOT NULL,
    closed           integer NOT NULL,
    closed_on_time   integer NOT NULL,
    closed_late      integer NOT NULL,
    closed_same_day  integer NOT NULL,
    closed_3d        integer NOT NULL,
    hours_sum        double precision NOT NULL,
    h0 integer NOT NULL, h1 integer NOT NULL, h2 integer NOT NULL, h3 integer NOT NULL, h4 integer NOT NULL, h5 integer NOT NULL, h6 integer NOT NULL, h7 integer NOT NULL, h8 integer NOT NULL,
    h9 integer NOT NULL, h10 integer NOT NULL, h11 integer NOT NULL, h12 integer NOT NULL, h13 integer NOT NULL, h14 integer NOT NULL, h15 integer NOT NULL, h16 integer NOT NULL,
    satisfaction_sum integer NOT NULL,
    satisfaction_n   integer NOT NULL,
    res_grid integer NOT NULL, res_community integer NOT NULL, res_street integer NOT NULL, res_district integer NOT NULL
);
INSERT INTO case_rollup_columns
SELECT level, unit_code, parent_code, day, category_1, channel, status, total, closed, closed_on_time, closed_late, closed_same_day, closed_3d, hours_sum,
       hours_hist[1], hours_hist[2], hours_hist[3], hours_hist[4], hours_hist[5], hours_hist[6], hours_hist[7], hours_hist[8], hours_hist[9],
       hours_hist[10], hours_hist[11], hours_hist[12], hours_hist[13], hours_hist[14], hours_hist[15], hours_hist[16], hours_hist[17],
       satisfaction_sum, satisfaction_n, resolved[1], resolved[2], resolved[3], resolved[4]
FROM case_rollup ORDER BY level, unit_code, day;
DROP TABLE case_rollup;
ALTER TABLE case_rollup_columns RENAME TO case_rollup;
ALTER TABLE case_rollup ADD CONSTRAINT case_rollup_pkey
    PRIMARY KEY (level, unit_code, day, category_1, channel, status) INCLUDE (total);
CREATE TABLE case_unit_day_columns (LIKE case_rollup INCLUDING DEFAULTS);
ALTER TABLE case_unit_day_columns DROP COLUMN category_1, DROP COLUMN channel;
INSERT INTO case_unit_day_columns
SELECT level, unit_code, parent_code, day, status, total, closed, closed_on_time, closed_late, closed_same_day, closed_3d, hours_sum,
       hours_hist[1], hours_hist[2], hours_hist[3], hours_hist[4], hours_hist[5], hours_hist[6], hours_hist[7], hours_hist[8], hours_hist[9],
       hours_hist[10], hours_hist[11], hours_hist[12], hours_hist[13], hours_hist[14], hours_hist[15], hours_hist[16], hours_hist[17],
       satisfaction_sum, satisfaction_n, resolved[1], resolved[2], resolved[3], resolved[4]
FROM case_unit_day ORDER BY level, unit_code, day;
DROP TABLE case_unit_day;
ALTER TABLE case_unit_day_columns RENAME TO case_unit_day;
ALTER TABLE case_unit_day ADD CONSTRAINT case_unit_day_pkey
    PRIMARY KEY (level, unit_code, day, status) INCLUDE (total);

-- case_unit_day carries every measure of case_rollup, summed over categories and
-- channels: KPIs, children and trends without those filters read one row per unit and day.
DROP TABLE case_unit_day;
CREATE TABLE case_unit_day (LIKE case_rollup INCLUDING DEFAULTS);
ALTER TABLE case_unit_day DROP COLUMN category_1, DROP COLUMN channel;
ALTER TABLE case_unit_day ADD PRIMARY KEY (level, unit_code, day);
CREATE INDEX case_unit_day_parent_idx ON case_unit_day (level, parent_code, day);
INSERT INTO case_unit_day
SELECT level, unit_code, parent_code, day, sum(total), sum(closed), sum(closed_on_time),
       sum(closed_late), sum(closed_same_day), sum(closed_3d), sum(hours_sum),
       ARRAY[sum(hours_hist[1]), sum(hours_hist[2]), sum(hours_hist[3]), sum(hours_hist[4]), sum(hours_hist[5]), sum(hours_hist[6]), sum(hours_hist[7]), sum(hours_hist[8]), sum(hours_hist[9]), sum(hours_hist[10]), sum(hours_hist[11]), sum(hours_hist[12]), sum(hours_hist[13]), sum(hours_hist[14]), sum(hours_hist[15]), sum(hours_hist[16]), sum(hours_hist[17])],
       sum(satisfaction_sum), sum(satisfaction_n),
       ARRAY[sum(resolved[1]), sum(resolved[2]), sum(resolved[3]), sum(resolved[4])]
FROM case_rollup GROUP BY level, unit_code, parent_code, day;

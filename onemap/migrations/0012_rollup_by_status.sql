-- The aggregates split by status (open / closed), so a status filter is answered from them
-- instead of scanning the scope's cases: a street's 90 days with status=closed took 570 ms
-- raw. The aggregates are counted again here in the zone they were counted in (the same
-- statements as etl.rollup, over every day).
ALTER TABLE case_rollup ADD COLUMN status text NOT NULL DEFAULT 'open';
ALTER TABLE case_rollup ALTER COLUMN status DROP DEFAULT;
ALTER TABLE case_rollup DROP CONSTRAINT case_rollup_pkey,
    ADD PRIMARY KEY (level, unit_code, day, category_1, channel, status);
ALTER TABLE case_unit_day ADD COLUMN status text NOT NULL DEFAULT 'open';
ALTER TABLE case_unit_day ALTER COLUMN status DROP DEFAULT;
ALTER TABLE case_unit_day DROP CONSTRAINT case_unit_day_pkey,
    ADD PRIMARY KEY (level, unit_code, day, status);
TRUNCATE case_rollup, case_unit_day;
INSERT INTO case_rollup
SELECT level,
       CASE level WHEN 4 THEN grid_code WHEN 3 THEN community_code
                  WHEN 2 THEN street_code ELSE district_code END,
       CASE level WHEN 4 THEN community_code WHEN 3 THEN street_code
                  WHEN 2 THEN district_code END,
       day, category_1, channel, total, closed, closed_on_time, closed_late, closed_same_day,
       closed_3d, hours_sum, hours_hist, satisfaction_sum, satisfaction_n, resolved, status
FROM (
    SELECT CASE GROUPING(grid_code, community_code, street_code, district_code)
                WHEN 3 THEN 4 WHEN 9 THEN 3 WHEN 12 THEN 2 ELSE 1 END AS level,
           grid_code, community_code, street_code, district_code, day, category_1, channel,
           status, count(*) AS total,
           count(*) FILTER (WHERE closed_at IS NOT NULL) AS closed,
           count(*) FILTER (WHERE on_time) AS closed_on_time,
           count(*) FILTER (WHERE NOT on_time) AS closed_late,
           count(*) FILTER (WHERE closed_day = day) AS closed_same_day,
           count(*) FILTER (WHERE closed_at <= reported_at + interval '72 hours') AS closed_3d,
           coalesce(sum(handling_hours), 0) AS hours_sum,
           ARRAY[count(*) FILTER (WHERE handling_hours >= 0 AND handling_hours < 1), count(*) FILTER (WHERE handling_hours >= 1 AND handling_hours < 2), count(*) FILTER (WHERE handling_hours >= 2 AND handling_hours < 4), count(*) FILTER (WHERE handling_hours >= 4 AND handling_hours < 8), count(*) FILTER (WHERE handling_hours >= 8 AND handling_hours < 12), count(*) FILTER (WHERE handling_hours >= 12 AND handling_hours < 24), count(*) FILTER (WHERE handling_hours >= 24 AND handling_hours < 36), count(*) FILTER (WHERE handling_hours >= 36 AND handling_hours < 48), count(*) FILTER (WHERE handling_hours >= 48 AND handling_hours < 72), count(*) FILTER (WHERE handling_hours >= 72 AND handling_hours < 96), count(*) FILTER (WHERE handling_hours >= 96 AND handling_hours < 120), count(*) FILTER (WHERE handling_hours >= 120 AND handling_hours < 168), count(*) FILTER (WHERE handling_hours >= 168 AND handling_hours < 240), count(*) FILTER (WHERE handling_hours >= 240 AND handling_hours < 336), count(*) FILTER (WHERE handling_hours >= 336 AND handling_hours < 504), count(*) FILTER (WHERE handling_hours >= 504 AND handling_hours < 720), count(*) FILTER (WHERE handling_hours >= 720)] AS hours_hist,
           coalesce(sum(satisfaction), 0) AS satisfaction_sum,
           count(satisfaction) AS satisfaction_n,
           ARRAY[count(*) FILTER (WHERE resolved_level = 4 AND closed_at IS NOT NULL),
                 count(*) FILTER (WHERE resolved_level = 3 AND closed_at IS NOT NULL),
                 count(*) FILTER (WHERE resolved_level = 2 AND closed_at IS NOT NULL),
                 count(*) FILTER (WHERE resolved_level = 1 AND closed_at IS NOT NULL)]
               AS resolved
    FROM (SELECT c.*, (c.reported_at AT TIME ZONE (SELECT zone FROM rollup_zone))::date AS day,
                 (c.closed_at AT TIME ZONE (SELECT zone FROM rollup_zone))::date AS closed_day
          FROM case_event c
          ) c
    GROUP BY GROUPING SETS (
        (district_code, day, category_1, channel, status),
        (district_code, street_code, day, category_1, channel, status),
        (street_code, community_code, day, category_1, channel, status),
        (community_code, grid_code, day, category_1, channel, status))
) g
WHERE CASE level WHEN 4 THEN grid_code WHEN 3 THEN community_code
                 WHEN 2 THEN street_code ELSE district_code END IS NOT NULL;
INSERT INTO case_unit_day
SELECT level, unit_code, parent_code, day, sum(total), sum(closed), sum(closed_on_time),
       sum(closed_late), sum(closed_same_day), sum(closed_3d), sum(hours_sum), ARRAY[sum(hours_hist[1]), sum(hours_hist[2]), sum(hours_hist[3]), sum(hours_hist[4]), sum(hours_hist[5]), sum(hours_hist[6]), sum(hours_hist[7]), sum(hours_hist[8]), sum(hours_hist[9]), sum(hours_hist[10]), sum(hours_hist[11]), sum(hours_hist[12]), sum(hours_hist[13]), sum(hours_hist[14]), sum(hours_hist[15]), sum(hours_hist[16]), sum(hours_hist[17])],
       sum(satisfaction_sum), sum(satisfaction_n),
       ARRAY[sum(resolved[1]), sum(resolved[2]), sum(resolved[3]), sum(resolved[4])], status
FROM case_rollup
GROUP BY level, unit_code, parent_code, day, status;
-- The hotspot counts' index-only scan, now with the status a filter may name.
DROP INDEX case_unit_day_level_day_idx;
CREATE INDEX case_unit_day_level_day_idx ON case_unit_day (level, day)
    INCLUDE (unit_code, status, total);

-- A case is closed when its status says so (etl.places.DERIVED): a closed case may have no
-- closing time (exports that give a status and an on-time flag only), and a closing time
-- on an open case (a 311 request Pending with a Closed Date) neither closes it nor makes it
-- on time or late. Cases may be placed at any level, the district included (a row naming
-- only its borough), so street_code may be empty; placed_level is the level of the finest
-- unit a case was placed in (4: a grid, by its point or a grid code). The aggregates count
-- the cases placed above the grid (above_grid) and closed ones by status.
ALTER TABLE case_event ALTER COLUMN street_code DROP NOT NULL;
ALTER TABLE case_event ADD COLUMN placed_level smallint GENERATED ALWAYS AS (
    CASE WHEN grid_code IS NOT NULL THEN 4 WHEN community_code IS NOT NULL THEN 3
         WHEN street_code IS NOT NULL THEN 2 ELSE 1 END) STORED;
UPDATE case_event SET on_time = NULL, handling_hours = NULL
WHERE status <> 'closed' AND (on_time IS NOT NULL OR handling_hours IS NOT NULL);

ALTER TABLE case_rollup ADD COLUMN above_grid integer NOT NULL DEFAULT 0;
ALTER TABLE case_unit_day ADD COLUMN above_grid integer NOT NULL DEFAULT 0;
ALTER TABLE case_unit_week ADD COLUMN above_grid integer NOT NULL DEFAULT 0;

-- Rows of open cases counted as closed those with a closing time: every closed-case
-- measure of an open row is now zero, and a closed row's closed count is its total.
UPDATE case_rollup SET closed = 0, closed_on_time = 0, closed_late = 0, closed_same_day = 0,
    closed_3d = 0, hours_sum = 0, h0 = 0, h1 = 0, h2 = 0, h3 = 0, h4 = 0, h5 = 0, h6 = 0,
    h7 = 0, h8 = 0, h9 = 0, h10 = 0, h11 = 0, h12 = 0, h13 = 0, h14 = 0, h15 = 0, h16 = 0,
    res_grid = 0, res_community = 0, res_street = 0, res_district = 0
WHERE status <> 'closed' AND closed > 0;
UPDATE case_rollup SET closed = total WHERE status = 'closed' AND closed <> total;
UPDATE case_unit_day SET closed = 0, closed_on_time = 0, closed_late = 0, closed_same_day = 0,
    closed_3d = 0, hours_sum = 0, h0 = 0, h1 = 0, h2 = 0, h3 = 0, h4 = 0, h5 = 0, h6 = 0,
    h7 = 0, h8 = 0, h9 = 0, h10 = 0, h11 = 0, h12 = 0, h13 = 0, h14 = 0, h15 = 0, h16 = 0,
    res_grid = 0, res_community = 0, res_street = 0, res_district = 0
WHERE status <> 'closed' AND closed > 0;
UPDATE case_unit_day SET closed = total WHERE status = 'closed' AND closed <> total;

-- What the counts above cannot give: cases placed above the grid, and the resolution level
-- of closed cases without a closing time (counted only with one before). Few cases, grouped
-- once per level in the zone the aggregates count days in.
CREATE TEMP TABLE fix_counts ON COMMIT DROP AS
SELECT x.level, x.unit_code, x.day, x.category_1, x.channel, x.status,
       count(*) FILTER (WHERE x.grid_code IS NULL)::int AS above_grid,
       count(*) FILTER (WHERE x.late_level = 4)::int AS res_grid,
       count(*) FILTER (WHERE x.late_level = 3)::int AS res_community,
       count(*) FILTER (WHERE x.late_level = 2)::int AS res_street,
       count(*) FILTER (WHERE x.late_level = 1)::int AS res_district
FROM (SELECT l.level, CASE l.level WHEN 4 THEN c.grid_code WHEN 3 THEN c.community_code
                                   WHEN 2 THEN c.street_code ELSE c.district_code END AS unit_code,
             (c.reported_at AT TIME ZONE z.zone)::date AS day, c.category_1, c.channel,
             c.status, c.grid_code,
             CASE WHEN c.status = 'closed' AND c.closed_at IS NULL THEN c.resolved_level
             END AS late_level
      FROM case_event c CROSS JOIN rollup_zone z CROSS JOIN generate_series(1, 4) AS l(level)
      WHERE c.grid_code IS NULL
         OR (c.status = 'closed' AND c.closed_at IS NULL AND c.resolved_level IS NOT NULL)) x
WHERE x.unit_code IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6;
UPDATE case_rollup r SET above_grid = f.above_grid, res_grid = r.res_grid + f.res_grid,
    res_community = r.res_community + f.res_community, res_street = r.res_street + f.res_street,
    res_district = r.res_district + f.res_district
FROM fix_counts f
WHERE (r.level, r.unit_code, r.day, r.category_1, r.channel, r.status)
    = (f.level, f.unit_code, f.day, f.category_1, f.channel, f.status);
UPDATE case_unit_day r SET above_grid = f.above_grid, res_grid = r.res_grid + f.res_grid,
    res_community = r.res_community + f.res_community, res_street = r.res_street + f.res_street,
    res_district = r.res_district + f.res_district
FROM (SELECT level, unit_code, day, status, sum(above_grid)::int AS above_grid,
             sum(res_grid)::int AS res_grid, sum(res_community)::int AS res_community,
             sum(res_street)::int AS res_street, sum(res_district)::int AS res_district
      FROM fix_counts GROUP BY 1, 2, 3, 4) f
WHERE (r.level, r.unit_code, r.day, r.status) = (f.level, f.unit_code, f.day, f.status);

-- The weekly sums of the measures, again from the days.
TRUNCATE case_unit_week;
INSERT INTO case_unit_week (level, unit_code, parent_code, day, status, total, closed,
    closed_on_time, closed_late, closed_same_day, closed_3d, hours_sum, h0, h1, h2, h3, h4,
    h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15, h16, satisfaction_sum, satisfaction_n,
    res_grid, res_community, res_street, res_district, above_grid)
SELECT level, unit_code, max(parent_code), week, status,
       sum(total)::int, sum(closed)::int, sum(closed_on_time)::int, sum(closed_late)::int,
       sum(closed_same_day)::int, sum(closed_3d)::int, sum(hours_sum)::float8, sum(h0)::int,
       sum(h1)::int, sum(h2)::int, sum(h3)::int, sum(h4)::int, sum(h5)::int, sum(h6)::int,
       sum(h7)::int, sum(h8)::int, sum(h9)::int, sum(h10)::int, sum(h11)::int, sum(h12)::int,
       sum(h13)::int, sum(h14)::int, sum(h15)::int, sum(h16)::int, sum(satisfaction_sum)::int,
       sum(satisfaction_n)::int, sum(res_grid)::int, sum(res_community)::int,
       sum(res_street)::int, sum(res_district)::int, sum(above_grid)::int
FROM (SELECT *, day - ((day - DATE '2000-01-03') % 7 + 7) % 7 AS week FROM case_unit_day) d
GROUP BY level, unit_code, week, status
ORDER BY level, unit_code, week;

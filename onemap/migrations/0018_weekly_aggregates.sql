-- Weekly aggregates beside the daily ones: their rows summed over weeks (Monday to Sunday,
-- local days), keyed by the week's Monday, kept current by every case load (etl.rollup).
-- A range's whole weeks are read from these and only the days around them from the daily
-- tables (layers.cases.rollup_rows): a 90-day view reads about 18 rows per unit where it
-- read 90. case_unit_week keeps every measure; case_rollup_week, by category and channel,
-- keeps the counts that mixes, trends and hotspots read (the other figures under a category
-- or channel filter are summed by day), which keeps its refresh short. A unit's days may
-- name different parents (cases keep the codes they were placed with): its week takes one.
CREATE TABLE case_rollup_week (   -- by category and channel: the counts only
    level      smallint NOT NULL,
    unit_code  text NOT NULL,
    parent_code text,
    day        date NOT NULL,        -- the week's Monday
    category_1 text NOT NULL,
    channel    text NOT NULL,
    status     text NOT NULL,
    total      integer NOT NULL,
    PRIMARY KEY (level, unit_code, day, category_1, channel, status) INCLUDE (total)
);
INSERT INTO case_rollup_week
SELECT level, unit_code, max(parent_code), date_trunc('week', day)::date, category_1, channel,
       status, sum(total)::int
FROM case_rollup
GROUP BY level, unit_code, date_trunc('week', day)::date, category_1, channel, status;
CREATE TABLE case_unit_week (LIKE case_unit_day INCLUDING ALL);
INSERT INTO case_unit_week
SELECT level, unit_code, max(parent_code), date_trunc('week', day)::date, status,
       sum(total)::int, sum(closed)::int, sum(closed_on_time)::int, sum(closed_late)::int,
       sum(closed_same_day)::int, sum(closed_3d)::int, sum(hours_sum)::float8, sum(h0)::int,
       sum(h1)::int, sum(h2)::int, sum(h3)::int, sum(h4)::int, sum(h5)::int, sum(h6)::int,
       sum(h7)::int, sum(h8)::int, sum(h9)::int, sum(h10)::int, sum(h11)::int, sum(h12)::int,
       sum(h13)::int, sum(h14)::int, sum(h15)::int, sum(h16)::int, sum(satisfaction_sum)::int,
       sum(satisfaction_n)::int, sum(res_grid)::int, sum(res_community)::int,
       sum(res_street)::int, sum(res_district)::int
FROM case_unit_day
GROUP BY level, unit_code, date_trunc('week', day)::date, status
ORDER BY level, unit_code, 4;

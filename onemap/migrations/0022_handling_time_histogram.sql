-- The handling time of closed cases per unit and local day, and per week (keyed by its
-- Monday), in fine buckets (onemap.schema.FINE_*: 5 minutes wide up to 250 minutes, then
-- each 2 % wider): a view's median handling time is read from these within 2.5 minutes or
-- 1 % (layers.kpi), where the hourly buckets of the other aggregates gave it only to within
-- their width (0.5 h for cases that took seconds). Only buckets holding cases are stored, as
-- two arrays, for the district, streets and communities (a grid's median is exact from its
-- few cases). Kept by every case load (etl.rollup); filled here from the cases.
CREATE TABLE case_hours_day (
    level     smallint NOT NULL,
    unit_code text NOT NULL,
    day       date NOT NULL,
    buckets   smallint[] NOT NULL,
    counts    integer[] NOT NULL,
    PRIMARY KEY (level, unit_code, day)
);
CREATE TABLE case_hours_week (LIKE case_hours_day INCLUDING ALL);

CREATE TEMP TABLE hours_leaf ON COMMIT DROP AS
SELECT c.community_code, c.street_code, c.district_code,
       (c.reported_at AT TIME ZONE z.zone)::date AS day,
       CASE WHEN c.handling_hours < 4.166666666666666
            THEN floor(c.handling_hours / 0.08333333333333333)
            ELSE 50 + floor(ln(c.handling_hours / 4.166666666666666) / ln(1.02)) END::smallint AS b,
       count(*)::int AS n
FROM case_event c CROSS JOIN rollup_zone z
WHERE c.handling_hours IS NOT NULL
GROUP BY 1, 2, 3, 4, 5;

INSERT INTO case_hours_day (level, unit_code, day, buckets, counts)
SELECT level, unit_code, day, array_agg(b ORDER BY b), array_agg(n ORDER BY b)
FROM (SELECT l.level, CASE l.level WHEN 3 THEN h.community_code WHEN 2 THEN h.street_code
                                   ELSE h.district_code END AS unit_code,
             h.day, h.b, sum(h.n)::int AS n
      FROM hours_leaf h CROSS JOIN generate_series(1, 3) AS l(level)
      GROUP BY 1, 2, 3, 4) x
WHERE unit_code IS NOT NULL
GROUP BY level, unit_code, day
ORDER BY level, unit_code, day;

INSERT INTO case_hours_week (level, unit_code, day, buckets, counts)
SELECT level, unit_code, week, array_agg(b ORDER BY b), array_agg(n ORDER BY b)
FROM (SELECT d.level, d.unit_code, d.day - ((d.day - DATE '2000-01-03') % 7 + 7) % 7 AS week,
             u.b, sum(u.n)::int AS n
      FROM case_hours_day d CROSS JOIN LATERAL unnest(d.buckets, d.counts) AS u(b, n)
      GROUP BY 1, 2, 3, 4) w
GROUP BY level, unit_code, week
ORDER BY level, unit_code, week;

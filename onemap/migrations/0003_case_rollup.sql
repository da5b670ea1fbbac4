-- Case aggregates per admin unit and local day, kept current by every case load (etl.rollup).
-- KPIs, trends and mixes read these instead of scanning case_event per request.
CREATE TABLE case_rollup (
    level            smallint NOT NULL,        -- level of unit_code (1 district … 4 grid)
    unit_code        text NOT NULL,
    parent_code      text,
    day              date NOT NULL,            -- local day of reported_at
    category_1       text NOT NULL,
    channel          text NOT NULL,
    total            integer NOT NULL,
    closed           integer NOT NULL,
    closed_on_time   integer NOT NULL,
    closed_late      integer NOT NULL,
    closed_same_day  integer NOT NULL,
    closed_3d        integer NOT NULL,
    hours_sum        double precision NOT NULL,
    hours_hist       integer[] NOT NULL,       -- closed cases per etl.rollup.HOUR_BUCKETS
    satisfaction_sum integer NOT NULL,
    satisfaction_n   integer NOT NULL,
    resolved         integer[] NOT NULL,       -- closed cases resolved at level 4, 3, 2, 1
    PRIMARY KEY (level, unit_code, day, category_1, channel)
);
CREATE INDEX case_rollup_parent_idx ON case_rollup (level, parent_code, day);
-- Open cases are few and their "overdue" depends on now: they are read live, by index.
CREATE INDEX case_event_open_idx ON case_event (street_code, community_code, grid_code, deadline)
    WHERE status = 'open';
CREATE INDEX case_event_category_idx ON case_event (category_1, category_2, reported_at);

-- onemap's schema as one baseline: the loads and their rejects, the admin units, the points
-- (facilities, IoT devices and their events, cases), the aggregates the case loads keep,
-- and the people who may read them. It replaced the migrations 0001-0023 that built it step
-- by step (onemap.migrate adopts a database those migrated). schema.sql, next to the
-- project's README, is this schema as the server dumps it.
-- All geometry is EPSG:4326 (WGS84; CGCS2000 coordinates are accepted as equal to within cm).
CREATE EXTENSION IF NOT EXISTS postgis;

-- == Loads ==================================================================================
-- One row per load; every input row ends up loaded or in rejected_row.
CREATE TABLE load_batch (
    id            bigserial PRIMARY KEY,
    kind          text NOT NULL,           -- admin, facilities, iot, iot-events, cases
    source        text NOT NULL,           -- the file(s) read
    file_hash     text,                    -- sha256 of the input
    mapping       jsonb NOT NULL DEFAULT '{}',
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    read_count    bigint NOT NULL DEFAULT 0,
    loaded_count  bigint NOT NULL DEFAULT 0,
    updated_count bigint NOT NULL DEFAULT 0,
    rejected_count bigint NOT NULL DEFAULT 0,
    status        text NOT NULL DEFAULT 'running'
                  CONSTRAINT load_batch_status_check
                  CHECK (status IN ('running', 'committed', 'failed', 'dry-run', 'interrupted')),
    message       text,
    report        jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE rejected_row (
    id          bigserial PRIMARY KEY,
    batch_id    bigint NOT NULL REFERENCES load_batch(id) ON DELETE CASCADE,
    source_file text NOT NULL,
    row_number  bigint NOT NULL,
    field       text,
    reason      text NOT NULL,
    raw         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX rejected_row_batch_idx ON rejected_row (batch_id, row_number);

-- A load's batch row is committed as 'running' before its work starts, and the load's
-- session holds an advisory lock on it until it ends: a 'running' batch whose lock is gone
-- was killed or lost its connection, and shows as 'interrupted' (the next load records it).
-- The lock's key, declared here alone: (class 7301, batch id).
CREATE FUNCTION load_batch_hold(batch bigint) RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_lock(7301, batch::int) $$;

CREATE FUNCTION load_batch_alive(batch bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.classid = 7301 AND l.objsubid = 2
          AND l.objid::bigint = batch AND l.granted
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
$$;

-- Batches as they stand now: a running one whose load is gone is interrupted.
CREATE VIEW load_batch_state AS
SELECT b.*, CASE WHEN b.status = 'running' AND NOT load_batch_alive(b.id)
                 THEN 'interrupted' ELSE b.status END AS state
FROM load_batch b;

-- == Admin units ============================================================================
-- District (1) → street (2) → community (3) → grid (4). Each row carries its ancestors'
-- codes (and its own at its level) so any level is one equality away.
CREATE TABLE admin_unit (
    code           text PRIMARY KEY,
    name           text NOT NULL,
    level          smallint NOT NULL CHECK (level BETWEEN 1 AND 4),
    parent_code    text REFERENCES admin_unit(code) DEFERRABLE INITIALLY DEFERRED,
    district_code  text,
    street_code    text,
    community_code text,
    grid_code      text,
    geom           geometry(MultiPolygon, 4326) NOT NULL,
    area_km2       double precision NOT NULL,
    properties     jsonb NOT NULL DEFAULT '{}',
    batch_id       bigint REFERENCES load_batch(id),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((level = 1) = (parent_code IS NULL))
);
CREATE INDEX admin_unit_geom_idx ON admin_unit USING gist (geom);
CREATE INDEX admin_unit_parent_idx ON admin_unit (parent_code);
CREATE INDEX admin_unit_level_idx ON admin_unit (level);

-- Grids cut into small pieces (ST_Subdivide): point-in-grid lookups on GiST touch a few
-- dozen vertices instead of whole polygons. Refreshed by every admin load.
CREATE TABLE grid_piece (
    grid_code text NOT NULL REFERENCES admin_unit(code) ON DELETE CASCADE,
    geom      geometry(Polygon, 4326) NOT NULL
);
CREATE INDEX grid_piece_geom_idx ON grid_piece USING gist (geom);

-- Grids that touch (queen contiguity), for Gi* hotspots; rebuilt by every admin load.
CREATE TABLE grid_neighbour (
    grid_code      text NOT NULL REFERENCES admin_unit(code) ON DELETE CASCADE,
    neighbour_code text NOT NULL REFERENCES admin_unit(code) ON DELETE CASCADE,
    PRIMARY KEY (grid_code, neighbour_code)
);

-- == Points =================================================================================
-- Every point row carries the codes of its units, assigned at load. h3 is the point's H3
-- cell (resolution 11, ~2,000 m²); coarser cells are its parents, derived in SQL by bit
-- operations (layers.hotspots), so hex bins aggregate in the database without the h3
-- extension. Facilities and devices are counted and listed per street or community on
-- every view: indexed by those codes.
CREATE TABLE facility (
    id             text PRIMARY KEY,
    kind           text NOT NULL,
    name           text NOT NULL,
    address        text,
    properties     jsonb NOT NULL DEFAULT '{}',
    geom           geometry(Point, 4326) NOT NULL,
    grid_code      text NOT NULL,
    community_code text NOT NULL,
    street_code    text NOT NULL,
    district_code  text NOT NULL,
    batch_id       bigint REFERENCES load_batch(id),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    h3             bigint
);
CREATE INDEX facility_geom_idx ON facility USING gist (geom);
CREATE INDEX facility_kind_idx ON facility (kind);
CREATE INDEX facility_grid_idx ON facility (grid_code);
CREATE INDEX facility_street_idx ON facility (street_code, kind);
CREATE INDEX facility_community_idx ON facility (community_code, kind);

CREATE TABLE iot_device (
    id             text PRIMARY KEY,
    kind           text NOT NULL,
    name           text,
    status         text NOT NULL CHECK (status IN ('online', 'offline', 'alarm')),
    last_seen      timestamptz,
    properties     jsonb NOT NULL DEFAULT '{}',
    geom           geometry(Point, 4326) NOT NULL,
    grid_code      text NOT NULL,
    community_code text NOT NULL,
    street_code    text NOT NULL,
    district_code  text NOT NULL,
    batch_id       bigint REFERENCES load_batch(id),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    h3             bigint
);
CREATE INDEX iot_device_geom_idx ON iot_device USING gist (geom);
CREATE INDEX iot_device_status_idx ON iot_device (status, kind);
CREATE INDEX iot_device_grid_idx ON iot_device (grid_code);
CREATE INDEX iot_device_street_idx ON iot_device (street_code, status);
CREATE INDEX iot_device_community_idx ON iot_device (community_code, status);

-- Status changes and readings over time; codes copied from the device at load.
CREATE TABLE iot_event (
    device_id      text NOT NULL REFERENCES iot_device(id),
    ts             timestamptz NOT NULL,
    event_type     text NOT NULL,          -- status, reading
    status         text CHECK (status IN ('online', 'offline', 'alarm')),
    metric         text NOT NULL DEFAULT '',
    value          double precision,
    properties     jsonb NOT NULL DEFAULT '{}',
    grid_code      text NOT NULL,
    community_code text NOT NULL,
    street_code    text NOT NULL,
    district_code  text NOT NULL,
    batch_id       bigint REFERENCES load_batch(id),
    PRIMARY KEY (device_id, ts, event_type, metric)
);
CREATE INDEX iot_event_ts_idx ON iot_event (ts);

-- 民生诉求 / 12345 cases: 受理 → 分拨 → 处置 → 反馈 → 评价. A case is closed when its status
-- says so (etl.places.DERIVED): a closed case may have no closing time, and a closing time
-- on an open case neither closes it nor makes it on time or late. Cases may be placed at
-- any level, the district included (a row naming only its borough), so street_code may be
-- empty; placed_level is the level of the finest unit a case was placed in.
CREATE TABLE case_event (
    id              text PRIMARY KEY,
    channel         text NOT NULL,
    case_type       text,                  -- 投诉, 咨询, 建议, 求助…
    category_1      text NOT NULL,
    category_2      text,
    category_3      text,
    category_4      text,
    title           text,
    description     text,
    address         text,
    reported_at     timestamptz NOT NULL,
    accepted_at     timestamptz,           -- 受理
    dispatched_at   timestamptz,           -- 分拨
    handled_at      timestamptz,           -- 处置
    feedback_at     timestamptz,           -- 反馈
    closed_at       timestamptz,
    evaluated_at    timestamptz,           -- 评价
    deadline        timestamptz,
    handling_unit   text,
    status          text NOT NULL,         -- open, closed (after the mapping's value map)
    satisfaction    smallint CHECK (satisfaction BETWEEN 1 AND 5),
    resolved_level  smallint CHECK (resolved_level BETWEEN 1 AND 4),
    on_time         boolean,               -- derived, closed cases only: closed_at <= deadline
    handling_hours  double precision,      -- derived, closed cases only: closed_at - reported_at
    reporter_name   text,                  -- personal: never shown unless entitled
    reporter_phone  text,                  -- personal
    located_by      text NOT NULL CHECK (located_by IN ('point', 'code')),
    geom            geometry(Point, 4326),
    grid_code       text,
    community_code  text,
    street_code     text,
    district_code   text NOT NULL,
    properties      jsonb NOT NULL DEFAULT '{}',
    batch_id        bigint REFERENCES load_batch(id),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    h3              bigint,
    placed_level    smallint GENERATED ALWAYS AS (
        CASE WHEN grid_code IS NOT NULL THEN 4 WHEN community_code IS NOT NULL THEN 3
             WHEN street_code IS NOT NULL THEN 2 ELSE 1 END) STORED,
    CHECK ((located_by = 'point') = (geom IS NOT NULL))
);
CREATE INDEX case_event_geom_idx ON case_event USING gist (geom);
CREATE INDEX case_event_reported_idx ON case_event (reported_at);
CREATE INDEX case_event_grid_idx ON case_event (grid_code, reported_at);
CREATE INDEX case_event_community_idx ON case_event (community_code, reported_at);
CREATE INDEX case_event_street_idx ON case_event (street_code, reported_at);
CREATE INDEX case_event_category_idx ON case_event (category_1, category_2, reported_at);
-- Open cases are counted live (overdue depends on the clock). One partial index, led by the
-- scope's codes from the street down and then the report time: a street, community or grid
-- seeks its own open cases of the period (layers.backlog), the district reads it whole (at
-- L a community's count 2 ms, a grid's 0.2 ms).
CREATE INDEX case_event_open_idx ON case_event (street_code, community_code, grid_code, reported_at)
    INCLUDE (deadline, district_code)
    WHERE status = 'open';

-- == Aggregates =============================================================================
-- Declared in onemap.aggregates (what each column counts, how it sums, which statements
-- refresh and read them); tests/test_aggregates.py holds these tables to it. Every case
-- load refreshes them (etl.rollup). Rows per unit and local day (a weekly table: per unit
-- and week, keyed by its Monday); a view reads a range's whole weeks from the weekly tables
-- and the days around them from the daily ones. The keys carry the count, so a view's mixes
-- and hotspot counts are answered by the key index alone; a unit's rows are looked up by
-- its own code (a parent's children by theirs, from admin_unit).

-- The time zone whose local days the aggregates count. One row; a load in another zone
-- recomputes every day.
CREATE TABLE rollup_zone (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    zone text NOT NULL
);

-- Every measure, by category, channel and status.
CREATE TABLE case_rollup (
    level            smallint NOT NULL,        -- of unit_code: 1 district … 4 grid
    unit_code        text NOT NULL,
    day              date NOT NULL,            -- local day of reported_at
    category_1       text NOT NULL,
    channel          text NOT NULL,
    status           text NOT NULL,
    total            integer NOT NULL,
    closed           integer NOT NULL,
    closed_on_time   integer NOT NULL,
    closed_late      integer NOT NULL,
    closed_same_day  integer NOT NULL,
    closed_3d        integer NOT NULL,
    -- closed cases per handling-time bucket (onemap.aggregates.HOUR_BUCKETS)
    h0 integer NOT NULL, h1 integer NOT NULL, h2 integer NOT NULL, h3 integer NOT NULL,
    h4 integer NOT NULL, h5 integer NOT NULL, h6 integer NOT NULL, h7 integer NOT NULL,
    h8 integer NOT NULL, h9 integer NOT NULL, h10 integer NOT NULL, h11 integer NOT NULL,
    h12 integer NOT NULL, h13 integer NOT NULL, h14 integer NOT NULL, h15 integer NOT NULL,
    h16 integer NOT NULL,
    satisfaction_sum integer NOT NULL,
    satisfaction_n   integer NOT NULL,
    -- closed cases resolved at each level (琐事不出网格…)
    res_grid integer NOT NULL, res_community integer NOT NULL,
    res_street integer NOT NULL, res_district integer NOT NULL,
    above_grid       integer NOT NULL,         -- cases placed above the grid
    CONSTRAINT case_rollup_pkey
        PRIMARY KEY (level, unit_code, day, category_1, channel, status) INCLUDE (total)
);

-- The same summed over categories and channels: views without those filters read one row
-- per unit, day and status.
CREATE TABLE case_unit_day (
    level            smallint NOT NULL,
    unit_code        text NOT NULL,
    day              date NOT NULL,
    status           text NOT NULL,
    total            integer NOT NULL,
    closed           integer NOT NULL,
    closed_on_time   integer NOT NULL,
    closed_late      integer NOT NULL,
    closed_same_day  integer NOT NULL,
    closed_3d        integer NOT NULL,
    h0 integer NOT NULL, h1 integer NOT NULL, h2 integer NOT NULL, h3 integer NOT NULL,
    h4 integer NOT NULL, h5 integer NOT NULL, h6 integer NOT NULL, h7 integer NOT NULL,
    h8 integer NOT NULL, h9 integer NOT NULL, h10 integer NOT NULL, h11 integer NOT NULL,
    h12 integer NOT NULL, h13 integer NOT NULL, h14 integer NOT NULL, h15 integer NOT NULL,
    h16 integer NOT NULL,
    satisfaction_sum integer NOT NULL,
    satisfaction_n   integer NOT NULL,
    res_grid integer NOT NULL, res_community integer NOT NULL,
    res_street integer NOT NULL, res_district integer NOT NULL,
    above_grid       integer NOT NULL,
    CONSTRAINT case_unit_day_pkey PRIMARY KEY (level, unit_code, day, status) INCLUDE (total)
);

-- case_rollup by week: the counts only (what mixes, trends and hotspots read).
CREATE TABLE case_rollup_week (
    level      smallint NOT NULL,
    unit_code  text NOT NULL,
    week       date NOT NULL,           -- the week's Monday
    category_1 text NOT NULL,
    channel    text NOT NULL,
    status     text NOT NULL,
    total      integer NOT NULL,
    CONSTRAINT case_rollup_week_pkey
        PRIMARY KEY (level, unit_code, week, category_1, channel, status) INCLUDE (total)
);

-- case_unit_day by week: every measure.
CREATE TABLE case_unit_week (
    level            smallint NOT NULL,
    unit_code        text NOT NULL,
    week             date NOT NULL,     -- the week's Monday
    status           text NOT NULL,
    total            integer NOT NULL,
    closed           integer NOT NULL,
    closed_on_time   integer NOT NULL,
    closed_late      integer NOT NULL,
    closed_same_day  integer NOT NULL,
    closed_3d        integer NOT NULL,
    h0 integer NOT NULL, h1 integer NOT NULL, h2 integer NOT NULL, h3 integer NOT NULL,
    h4 integer NOT NULL, h5 integer NOT NULL, h6 integer NOT NULL, h7 integer NOT NULL,
    h8 integer NOT NULL, h9 integer NOT NULL, h10 integer NOT NULL, h11 integer NOT NULL,
    h12 integer NOT NULL, h13 integer NOT NULL, h14 integer NOT NULL, h15 integer NOT NULL,
    h16 integer NOT NULL,
    satisfaction_sum integer NOT NULL,
    satisfaction_n   integer NOT NULL,
    res_grid integer NOT NULL, res_community integer NOT NULL,
    res_street integer NOT NULL, res_district integer NOT NULL,
    above_grid       integer NOT NULL,
    CONSTRAINT case_unit_week_pkey PRIMARY KEY (level, unit_code, week, status) INCLUDE (total)
);

-- The handling time of closed cases in fine buckets (onemap.aggregates.FINE_*), for the
-- district, streets and communities: a view's median within 2.5 minutes or 1 %. Only the
-- buckets holding cases, as two arrays.
CREATE TABLE case_hours_day (
    level     smallint NOT NULL,
    unit_code text NOT NULL,
    day       date NOT NULL,
    buckets   smallint[] NOT NULL,
    counts    integer[] NOT NULL,
    CONSTRAINT case_hours_day_pkey PRIMARY KEY (level, unit_code, day)
);

CREATE TABLE case_hours_week (
    level     smallint NOT NULL,
    unit_code text NOT NULL,
    week      date NOT NULL,            -- the week's Monday
    buckets   smallint[] NOT NULL,
    counts    integer[] NOT NULL,
    CONSTRAINT case_hours_week_pkey PRIMARY KEY (level, unit_code, week)
);

-- == People =================================================================================
-- People and kiosks who may read the data, failed-login tracking, sessions and the audit log.
CREATE TABLE app_user (
    name            text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    role            text NOT NULL CHECK (role IN
                        ('admin', 'command_center', 'street_official', 'analyst', 'kiosk')),
    scope_code      text,                       -- NULL: the whole district
    personal_grant  boolean NOT NULL DEFAULT false,
    password_hash   text,                       -- scrypt; kiosks have a token instead
    token_hash      text UNIQUE,                -- sha256 of a kiosk's token
    disabled        boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    changed_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (role <> 'street_official' OR scope_code IS NOT NULL),
    CHECK ((role = 'kiosk') = (token_hash IS NOT NULL))
);

-- Keyed by the name typed, known or not, so guessing names is slowed down the same way;
-- only names a user could have are counted (anything else is refused before the database
-- is asked), so a failure row is as small as a user name.
CREATE TABLE login_failure (
    name        text PRIMARY KEY
                CONSTRAINT login_failure_name_check CHECK (name ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    failures    integer NOT NULL,
    last_at     timestamptz NOT NULL
);

-- Sessions kept on the server: the browser's cookie holds only a random id, whose SHA-256
-- is the key here. Signing out, a new password or kiosk token, and disabling a user delete
-- the rows, which ends those sessions at once on every worker.
CREATE TABLE app_session (
    id_hash     text PRIMARY KEY,                   -- sha256 of the cookie's random id
    user_name   text NOT NULL REFERENCES app_user (name) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX app_session_user_idx ON app_session (user_name);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    user_name   text NOT NULL,
    role        text NOT NULL,
    action      text NOT NULL,              -- login, export, denied, …
    allowed     boolean NOT NULL,
    target      text,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- onemap schema, version 1: admin units, points, cases, batches and rejects.
-- All geometry is EPSG:4326 (WGS84; CGCS2000 coordinates are accepted as equal to within cm).
CREATE EXTENSION IF NOT EXISTS postgis;

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
                  CHECK (status IN ('running', 'committed', 'failed', 'dry-run')),
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
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX facility_geom_idx ON facility USING gist (geom);
CREATE INDEX facility_kind_idx ON facility (kind);
CREATE INDEX facility_grid_idx ON facility (grid_code);

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
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX iot_device_geom_idx ON iot_device USING gist (geom);
CREATE INDEX iot_device_status_idx ON iot_device (status, kind);
CREATE INDEX iot_device_grid_idx ON iot_device (grid_code);

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

-- 民生诉求 / 12345 cases: 受理 → 分拨 → 处置 → 反馈 → 评价.
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
    on_time         boolean,               -- derived: closed_at <= deadline
    handling_hours  double precision,      -- derived: closed_at - reported_at
    reporter_name   text,                  -- personal: never shown unless entitled
    reporter_phone  text,                  -- personal
    located_by      text NOT NULL CHECK (located_by IN ('point', 'code')),
    geom            geometry(Point, 4326),
    grid_code       text,
    community_code  text,
    street_code     text NOT NULL,
    district_code   text NOT NULL,
    properties      jsonb NOT NULL DEFAULT '{}',
    batch_id        bigint REFERENCES load_batch(id),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((located_by = 'point') = (geom IS NOT NULL))
);
CREATE INDEX case_event_geom_idx ON case_event USING gist (geom);
CREATE INDEX case_event_reported_idx ON case_event (reported_at);
CREATE INDEX case_event_grid_idx ON case_event (grid_code, reported_at);
CREATE INDEX case_event_community_idx ON case_event (community_code, reported_at);
CREATE INDEX case_event_street_idx ON case_event (street_code, reported_at);

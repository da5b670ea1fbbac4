-- Grid workers (网格员): the roster, loaded like any other source (`onemap load roster`,
-- etl/targets.py). A row is one worker's assignment to one grid: a station head (站长) who
-- covers the grids of a community has a row for each. The grid's code must be a loaded
-- grid; its community, street and district codes are the grid's, so every level scopes the
-- roster with one equality, as it does the point tables. The phone is served masked unless
-- the viewer may see personal fields (layers/roster.py).
-- Cases name their handler (处置人): the roster's worker id, as the source writes it; the
-- per-worker figures count the cases of each id. (IF NOT EXISTS: a database whose ledger is
-- rewritten to the baseline, as tests do, meets it again.)
CREATE TABLE IF NOT EXISTS grid_worker (
    id             text NOT NULL,          -- the worker's id (工号)
    grid_code      text NOT NULL REFERENCES admin_unit(code) ON DELETE CASCADE,
    name           text NOT NULL,
    role           text NOT NULL CHECK (role IN ('full_time', 'part_time', 'station_head')),
    phone          text,                   -- personal: masked unless entitled
    properties     jsonb NOT NULL DEFAULT '{}',
    community_code text NOT NULL,
    street_code    text NOT NULL,
    district_code  text NOT NULL,
    batch_id       bigint REFERENCES load_batch(id),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, grid_code)
);
CREATE INDEX IF NOT EXISTS grid_worker_grid_idx ON grid_worker (grid_code);
CREATE INDEX IF NOT EXISTS grid_worker_community_idx ON grid_worker (community_code);
CREATE INDEX IF NOT EXISTS grid_worker_street_idx ON grid_worker (street_code);

ALTER TABLE case_event ADD COLUMN IF NOT EXISTS handler text;   -- 处置人: a grid_worker id
CREATE INDEX IF NOT EXISTS case_event_handler_idx ON case_event (handler, reported_at)
    WHERE handler IS NOT NULL;

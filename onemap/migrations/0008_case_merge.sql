-- 并案: a person's decision on cases proposed as one event (layers.merging). A decision is a
-- row, never changed or deleted: who decided, as what role, when, with a note; confirmed
-- (the cases are one event, counted once: as ``event_id``, the first report) or rejected
-- (not one event: the same cases are not proposed together again). ``case_merge_member``
-- names the cases of each decision: ``duplicate`` marks the cases a confirmed merge counts
-- in its first report's stead (what the count without merged duplicates leaves out), and a
-- case is in at most one confirmed merge. No key references case_event: a city loaded again
-- replaces its cases, and the decisions stay on record. (IF NOT EXISTS: a database whose
-- ledger is rewritten to the baseline, as tests do, meets it again.)
CREATE TABLE IF NOT EXISTS case_merge (
    id         bigserial PRIMARY KEY,
    decision   text NOT NULL CHECK (decision IN ('confirmed', 'rejected')),
    event_id   text NOT NULL,
    case_ids   text[] NOT NULL CHECK (cardinality(case_ids) >= 2),
    decided_by text NOT NULL,
    role       text NOT NULL,
    scope_code text,
    decided_at timestamptz NOT NULL DEFAULT now(),
    note       text NOT NULL DEFAULT '',
    CHECK (event_id = ANY (case_ids))
);
CREATE TABLE IF NOT EXISTS case_merge_member (
    merge_id  bigint NOT NULL REFERENCES case_merge (id),
    case_id   text NOT NULL,
    confirmed boolean NOT NULL,
    duplicate boolean NOT NULL,
    PRIMARY KEY (merge_id, case_id),
    CHECK (confirmed OR NOT duplicate)
);
CREATE INDEX IF NOT EXISTS case_merge_member_case_idx ON case_merge_member (case_id)
    INCLUDE (duplicate);
CREATE UNIQUE INDEX IF NOT EXISTS case_merge_member_once_idx ON case_merge_member (case_id)
    WHERE confirmed;

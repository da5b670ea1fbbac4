-- 督办 / 提醒: a person urges a handling unit, on one case or on the unit as a whole, from
-- the workbench or POST /api/supervision (onemap/supervision.py writes it, with its row of
-- audit_log in the same transaction). The case's detail lists its rows; the workbench's
-- ranking counts them per unit. Each row carries the admin codes of where it was done (a
-- case's own codes; for a unit, the scope it was urged in), so a scope reads its own by
-- the same code columns as the cases. A case is named, not referenced: a reload may
-- replace its row, the record of who urged it stays. (IF NOT EXISTS: a database whose
-- ledger is rewritten to the baseline, as tests do, meets it again.)
CREATE TABLE IF NOT EXISTS case_supervision (
    id             bigserial PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    user_name      text NOT NULL,
    role           text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('supervise', 'remind')),
    case_id        text,
    handling_unit  text,
    note           text NOT NULL DEFAULT '',
    district_code  text,
    street_code    text,
    community_code text,
    grid_code      text,
    CHECK (case_id IS NOT NULL OR handling_unit IS NOT NULL),
    CHECK (char_length(note) <= 500)
);
CREATE INDEX IF NOT EXISTS case_supervision_case_idx ON case_supervision (case_id, at);
CREATE INDEX IF NOT EXISTS case_supervision_unit_idx ON case_supervision (handling_unit);

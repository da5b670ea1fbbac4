-- The time zone whose local days case_rollup counts in. One row; a load in another zone
-- recomputes every day (etl.rollup), and the read side reads its days in this zone.
CREATE TABLE rollup_zone (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    zone text NOT NULL
);

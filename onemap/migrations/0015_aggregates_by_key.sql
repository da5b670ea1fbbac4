-- The aggregates are read by unit code through their primary keys only: a parent's children
-- are looked up by their own codes (layers.cases.rollup_where), hotspot counts by the grids'
-- codes. The indexes by parent and by day go; a large load builds three indexes fewer.
DROP INDEX IF EXISTS case_rollup_parent_idx;
DROP INDEX IF EXISTS case_unit_day_parent_idx;
DROP INDEX IF EXISTS case_unit_day_level_day_idx;

-- The last of the migrations the baseline replaced, kept for the databases they made up to
-- 0022 (all of them before it was written): onemap.migrate runs it before it adopts them.
-- The aggregates as onemap.aggregates declares them: parent_code and hours_sum were written
-- and never read (a view finds a unit's children by admin_unit, and its median from the
-- histograms), a weekly table's key is its week's Monday, named week, and every column is
-- written by the refresh (no default).
ALTER TABLE case_rollup DROP COLUMN parent_code, DROP COLUMN hours_sum,
    ALTER COLUMN above_grid DROP DEFAULT;
ALTER TABLE case_unit_day DROP COLUMN parent_code, DROP COLUMN hours_sum,
    ALTER COLUMN above_grid DROP DEFAULT;
ALTER TABLE case_unit_week DROP COLUMN parent_code, DROP COLUMN hours_sum,
    ALTER COLUMN above_grid DROP DEFAULT;
ALTER TABLE case_rollup_week DROP COLUMN parent_code;
ALTER TABLE case_rollup_week RENAME COLUMN day TO week;
ALTER TABLE case_unit_week RENAME COLUMN day TO week;
ALTER TABLE case_hours_week RENAME COLUMN day TO week;

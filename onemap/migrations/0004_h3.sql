-- The H3 cell (resolution 11, ~2,000 m²) of every point, computed at load time. Coarser
-- cells are its parents, derived in SQL by bit operations (layers.hexbins), so hex bins
-- aggregate in the database without the h3 extension.
ALTER TABLE facility ADD COLUMN h3 bigint;
ALTER TABLE iot_device ADD COLUMN h3 bigint;
ALTER TABLE case_event ADD COLUMN h3 bigint;

-- A load's batch row is committed as 'running' before its work starts, and the load's
-- session holds an advisory lock on it until it ends: a 'running' batch whose lock is gone
-- was killed or lost its connection, and shows as 'interrupted' (the next load records it).
ALTER TABLE load_batch DROP CONSTRAINT load_batch_status_check;
ALTER TABLE load_batch ADD CONSTRAINT load_batch_status_check
    CHECK (status IN ('running', 'committed', 'failed', 'dry-run', 'interrupted'));

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

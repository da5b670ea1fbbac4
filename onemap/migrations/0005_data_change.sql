-- What changed last, for the screens: a row per feed whose version moves, in the writing
-- transaction, with every write the desk and the wall show. A screen polls the versions
-- (one read of three rows) and redraws only when they moved; the view cache keys on them,
-- so no view older than the newest change is served. Cases: every statement on case_event
-- (a load, an API write), by trigger. Loads: every statement on load_batch (a batch begun,
-- committed, failed). IoT: the listener bumps it itself, in a batch's own statement, when
-- the batch holds a status event (an alarm raised or cleared, a device offline or online);
-- routine readings leave it alone. (IF NOT EXISTS, OR REPLACE: a database whose ledger is
-- rewritten to the baseline, as tests do, meets it again.)
CREATE TABLE IF NOT EXISTS data_change (
    feed       text PRIMARY KEY,
    version    bigint NOT NULL DEFAULT 0,
    changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO data_change (feed) VALUES ('cases'), ('iot'), ('loads') ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION data_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE data_change SET version = version + 1, changed_at = now() WHERE feed = TG_ARGV[0];
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER case_event_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON case_event
    FOR EACH STATEMENT EXECUTE FUNCTION data_changed('cases');
CREATE OR REPLACE TRIGGER load_batch_changed AFTER INSERT OR UPDATE OR DELETE ON load_batch
    FOR EACH STATEMENT EXECUTE FUNCTION data_changed('loads');

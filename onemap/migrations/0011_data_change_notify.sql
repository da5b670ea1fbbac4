-- The screens hear of a change instead of asking for it: every move of a feed's version
-- (data_change, migration 0005, whoever bumps it) notifies the channel data_change with
-- the feed's new version ('iot.346'). A notification is delivered when the writing
-- transaction commits, so a listener told of it reads the data it stands for; the app's
-- server listens and answers the screens' held asks at once (layers.changes.Latest).
CREATE OR REPLACE FUNCTION data_change_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('data_change', NEW.feed || '.' || NEW.version);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER data_change_notify AFTER INSERT OR UPDATE OF version ON data_change
    FOR EACH ROW EXECUTE FUNCTION data_change_notify();

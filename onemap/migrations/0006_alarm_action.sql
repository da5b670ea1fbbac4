-- What people did about an alarm: acknowledged it (who, when, a note) and turned it into a
-- case dispatched to its grid (the case's id; the case names the alarm in its properties).
-- An alarm is a device's run of alarm status from its start (layers.alarms: the first alarm
-- event after its last other status), so it is keyed by its device and that start;
-- '-infinity' stands for an alarm whose start is unknown (a device loaded in alarm without
-- its history). Every statement on it moves the screens' 'iot' version (data_change), in the
-- writing transaction, so every screen shows the acknowledgement at its next look.
CREATE TABLE IF NOT EXISTS alarm_action (
    device_id       text NOT NULL,
    began_at        timestamptz NOT NULL,
    acknowledged_by text NOT NULL,
    acknowledged_at timestamptz NOT NULL DEFAULT now(),
    note            text,
    case_id         text,
    dispatched_by   text,
    dispatched_at   timestamptz,
    PRIMARY KEY (device_id, began_at),
    CHECK ((case_id IS NULL) = (dispatched_at IS NULL))
);
CREATE INDEX IF NOT EXISTS alarm_action_case_idx ON alarm_action (case_id)
    WHERE case_id IS NOT NULL;

CREATE OR REPLACE TRIGGER alarm_action_changed AFTER INSERT OR UPDATE OR DELETE ON alarm_action
    FOR EACH STATEMENT EXECUTE FUNCTION data_changed('iot');

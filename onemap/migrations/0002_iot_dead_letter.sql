-- The live IoT feed (onemap listen, etl/listen.py): a message that cannot be an IoT event is
-- kept here with its topic, its payload as received, the field at fault and the reason, in
-- place of a rejected row (a message has no batch, file or row number). A message the broker
-- delivers again is kept once: its topic and payload are its identity. (IF NOT EXISTS: a
-- database whose ledger is rewritten to the baseline, as tests do, meets it again.)
CREATE TABLE IF NOT EXISTS iot_dead_letter (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text NOT NULL,
    payload     text NOT NULL,      -- bytes that are not UTF-8 as \xNN, NUL as \x00
    field       text,               -- the payload's field at fault (topic, payload: the whole)
    reason      text NOT NULL,
    digest      text GENERATED ALWAYS AS (md5(topic || E'\n' || payload)) STORED NOT NULL,
    CONSTRAINT iot_dead_letter_once UNIQUE (digest)
);
CREATE INDEX IF NOT EXISTS iot_dead_letter_received_idx ON iot_dead_letter (received_at);

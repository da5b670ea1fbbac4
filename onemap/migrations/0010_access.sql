-- People and kiosks who may read the data, failed-login tracking and the audit log.
CREATE TABLE app_user (
    name            text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    role            text NOT NULL CHECK (role IN
                        ('admin', 'command_center', 'street_official', 'analyst', 'kiosk')),
    scope_code      text,                       -- NULL: the whole district
    personal_grant  boolean NOT NULL DEFAULT false,
    password_hash   text,                       -- scrypt; kiosks have a token instead
    token_hash      text UNIQUE,                -- sha256 of a kiosk's token
    disabled        boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    changed_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (role <> 'street_official' OR scope_code IS NOT NULL),
    CHECK ((role = 'kiosk') = (token_hash IS NOT NULL))
);

-- Keyed by the name typed, known or not, so guessing names is slowed down the same way.
CREATE TABLE login_failure (
    name        text PRIMARY KEY,
    failures    integer NOT NULL,
    last_at     timestamptz NOT NULL
);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    user_name   text NOT NULL,
    role        text NOT NULL,
    action      text NOT NULL,              -- login, export, denied, …
    allowed     boolean NOT NULL,
    target      text,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON audit_log (at);

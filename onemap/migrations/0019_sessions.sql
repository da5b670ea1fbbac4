-- Sessions kept on the server: the browser's cookie holds only a random id, whose SHA-256
-- is the key here. Signing out, a new password or kiosk token, and disabling a user delete
-- the rows, which ends those sessions at once on every worker.
CREATE TABLE app_session (
    id_hash     text PRIMARY KEY,                   -- sha256 of the cookie's random id
    user_name   text NOT NULL REFERENCES app_user (name) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX app_session_user_idx ON app_session (user_name);

-- Only names a user could have are counted (anything else is refused before the database
-- is asked), so a failure row is as small as a user name.
DELETE FROM login_failure WHERE name !~ '^[A-Za-z0-9_.@-]{1,64}$';
ALTER TABLE login_failure
    ADD CONSTRAINT login_failure_name_check CHECK (name ~ '^[A-Za-z0-9_.@-]{1,64}$');

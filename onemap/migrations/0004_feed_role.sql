-- The case feed (POST /api/cases, etl/feed.py): a 12345 system posts case events as a user
-- of its own role, 'feed', which signs in by a bearer token as a kiosk does (a SHA-256 of
-- the token kept, never a password) and may do nothing else. (DROP … IF EXISTS: a database
-- whose ledger is rewritten to the baseline, as tests do, meets it again.)
ALTER TABLE app_user DROP CONSTRAINT IF EXISTS app_user_role_check;
ALTER TABLE app_user ADD CONSTRAINT app_user_role_check CHECK (role IN
    ('admin', 'command_center', 'street_official', 'analyst', 'kiosk', 'feed'));
ALTER TABLE app_user DROP CONSTRAINT IF EXISTS app_user_check1;
ALTER TABLE app_user DROP CONSTRAINT IF EXISTS app_user_token_check;
ALTER TABLE app_user ADD CONSTRAINT app_user_token_check
    CHECK ((role IN ('kiosk', 'feed')) = (token_hash IS NOT NULL));

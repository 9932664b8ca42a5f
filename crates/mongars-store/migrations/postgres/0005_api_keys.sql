-- Per-user API keys. Only the SHA-256 of a key is kept; `prefix` is its
-- first characters, for people to recognise it. A key is usable while not
-- revoked, not expired, and while its owner's token version is the one it
-- was made at (a password change or disabling revokes it).
CREATE TABLE api_keys (
    id            TEXT        PRIMARY KEY,
    user_id       BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT        NOT NULL,
    prefix        TEXT        NOT NULL,
    key_hash      TEXT        NOT NULL UNIQUE,
    token_version BIGINT      NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ,
    expires_at    TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at);

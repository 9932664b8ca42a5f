-- Accounts, login throttling and one-time markers.
CREATE TABLE users (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       TEXT        NOT NULL,
    -- lower-cased username: uniqueness and lookups are case-insensitive
    username_key   TEXT        NOT NULL UNIQUE,
    password_hash  TEXT        NOT NULL,
    role           TEXT        NOT NULL CHECK (role IN ('admin', 'user')),
    disabled       BOOLEAN     NOT NULL DEFAULT FALSE,
    -- bumped on password change and disable; tokens carry it as `ver`
    token_version  BIGINT      NOT NULL DEFAULT 0,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    last_login_at  TIMESTAMPTZ
);
CREATE INDEX users_role ON users (role);

CREATE TABLE login_throttle (
    -- "user:<name>" or "addr:<ip>"
    key                TEXT   PRIMARY KEY,
    failures           BIGINT NOT NULL,
    -- unix milliseconds
    window_started_at  BIGINT NOT NULL
);
CREATE INDEX login_throttle_window ON login_throttle (window_started_at);

-- Things that happen once per installation (e.g. first-admin bootstrap).
CREATE TABLE app_markers (
    name        TEXT        PRIMARY KEY,
    created_at  TIMESTAMPTZ NOT NULL
);

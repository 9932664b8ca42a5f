-- Peers of this installation: the URL of each one's peer listener and the
-- fingerprint (SHA-256 of the public key) its certificate must carry.
-- Shared by every replica; load and state are kept in memory per node.
CREATE TABLE peers (
    url          TEXT PRIMARY KEY,
    fingerprint  TEXT NOT NULL CHECK (length(fingerprint) = 64),
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

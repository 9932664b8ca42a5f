-- Learning on the device: consent, feedback, curated samples, immutable
-- dataset versions, training runs and the adapter registry.

-- Nothing of a user enters a dataset without it.
ALTER TABLE users ADD COLUMN training_consent BOOLEAN NOT NULL DEFAULT 0;

-- A rating per turn (the latest wins), with an optional better answer.
CREATE TABLE turn_feedback (
    turn_id     TEXT    PRIMARY KEY REFERENCES conversation_turns (id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    rating      TEXT    NOT NULL CHECK (rating IN ('up', 'down')),
    correction  TEXT,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);
CREATE INDEX turn_feedback_user ON turn_feedback (user_id, created_at);

-- Supervised examples, personal data already replaced by placeholders.
-- `held` samples wait for an operator; only `ready` ones enter datasets.
CREATE TABLE training_samples (
    id           TEXT    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source       TEXT    NOT NULL CHECK (source IN ('feedback', 'example')),
    turn_id      TEXT,
    prompt       TEXT    NOT NULL,
    response     TEXT    NOT NULL,
    -- kinds of personal data replaced, comma-separated ('' when none)
    pii          TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('ready', 'held', 'dropped')),
    created_at   TEXT    NOT NULL,
    reviewed_at  TEXT,
    reviewed_by  INTEGER
);
CREATE INDEX training_samples_status ON training_samples (status, created_at);
CREATE INDEX training_samples_user ON training_samples (user_id);
CREATE UNIQUE INDEX training_samples_turn ON training_samples (turn_id);

-- Dataset versions never change once built; their items are copies.
CREATE TABLE training_datasets (
    id              TEXT    PRIMARY KEY,
    version         INTEGER NOT NULL UNIQUE,
    content_hash    TEXT    NOT NULL,
    seed            INTEGER NOT NULL,
    held_out_share  REAL    NOT NULL,
    samples         INTEGER NOT NULL,
    train           INTEGER NOT NULL,
    held_out        INTEGER NOT NULL,
    created_at      TEXT    NOT NULL,
    created_by      INTEGER
);
CREATE TABLE training_dataset_items (
    dataset_id  TEXT    NOT NULL REFERENCES training_datasets (id) ON DELETE CASCADE,
    sample_id   TEXT    NOT NULL,
    user_id     INTEGER NOT NULL,
    split       TEXT    NOT NULL CHECK (split IN ('train', 'held_out')),
    prompt      TEXT    NOT NULL,
    response    TEXT    NOT NULL,
    PRIMARY KEY (dataset_id, sample_id)
);
CREATE INDEX training_dataset_items_user ON training_dataset_items (user_id);

CREATE TABLE training_runs (
    id           TEXT    PRIMARY KEY,
    dataset_id   TEXT    NOT NULL REFERENCES training_datasets (id),
    objective    TEXT    NOT NULL CHECK (objective IN ('supervised', 'mntp')),
    status       TEXT    NOT NULL CHECK (status IN
                     ('queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled')),
    steps_total  INTEGER NOT NULL,
    steps_done   INTEGER NOT NULL DEFAULT 0,
    tokens       INTEGER NOT NULL DEFAULT 0,
    loss         REAL,
    pauses       INTEGER NOT NULL DEFAULT 0,
    cpu_seconds  REAL    NOT NULL DEFAULT 0,
    energy_wh    REAL    NOT NULL DEFAULT 0,
    -- JSON: perplexities before and after, the gate's verdict
    figures      TEXT,
    error_code   TEXT,
    adapter_id   TEXT,
    created_by   INTEGER,
    created_at   TEXT    NOT NULL,
    started_at   TEXT,
    updated_at   TEXT    NOT NULL,
    finished_at  TEXT
);
CREATE INDEX training_runs_status ON training_runs (status, created_at);

CREATE TABLE adapters (
    id                 TEXT    PRIMARY KEY,
    version            INTEGER NOT NULL UNIQUE,
    status             TEXT    NOT NULL CHECK (status IN
                           ('candidate', 'approved', 'active', 'retired', 'rejected')),
    -- file name in the adapters folder
    file               TEXT    NOT NULL,
    sha256             TEXT    NOT NULL,
    base_model_sha256  TEXT    NOT NULL,
    dataset_hash       TEXT    NOT NULL,
    run_id             TEXT,
    -- JSON: the run's figures
    metrics            TEXT    NOT NULL,
    created_at         TEXT    NOT NULL,
    approved_at        TEXT,
    approved_by        INTEGER,
    activated_at       TEXT
);

-- Every activation, newest last; a rollback marks the newest as undone and
-- the one before it (or the bare model) is active again.
CREATE TABLE adapter_activations (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    adapter_id  TEXT    REFERENCES adapters (id),
    at          TEXT    NOT NULL,
    by_user     INTEGER,
    undone_at   TEXT
);

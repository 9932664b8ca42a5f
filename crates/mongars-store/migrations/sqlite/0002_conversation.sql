-- Conversation turns: the user's message is written first (pending), the reply
-- and its figures when generation completes (or the error code when it fails).
CREATE TABLE conversation_turns (
    id                 TEXT    PRIMARY KEY,
    user_id            INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id         TEXT,
    query              TEXT    NOT NULL,
    response           TEXT,
    status             TEXT    NOT NULL CHECK (status IN ('pending', 'complete', 'failed')),
    error_code         TEXT,
    model              TEXT,
    prompt_tokens      INTEGER,
    completion_tokens  INTEGER,
    confidence         REAL,
    ttft_ms            INTEGER,
    generation_ms      INTEGER,
    total_ms           INTEGER,
    -- speech pacing plan, JSON
    speech_turn        TEXT,
    created_at         TEXT    NOT NULL,
    completed_at       TEXT
);
CREATE INDEX conversation_turns_user ON conversation_turns (user_id, status, created_at);
CREATE INDEX conversation_turns_session ON conversation_turns (user_id, session_id, status, created_at);

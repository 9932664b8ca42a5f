-- Long-term memory: durable facts about the user ('fact') and the embeddings
-- of past turns ('turn'). A fact replaced by a contradicting one keeps its row
-- with superseded_by set, so the history of what was believed stays.
CREATE TABLE memories (
    id             TEXT    PRIMARY KEY,
    user_id        BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL CHECK (kind IN ('fact', 'turn')),
    text           TEXT    NOT NULL,
    -- what a fact is about ("name", "project", "likes:tea"); NULL for free text
    slot           TEXT,
    -- conversation turn id, or 'user' for memories written through the API
    source         TEXT    NOT NULL,
    -- little-endian f32 vector
    embedding      BYTEA   NOT NULL,
    mentions       BIGINT  NOT NULL DEFAULT 1,
    created_at     TIMESTAMPTZ   NOT NULL,
    updated_at     TIMESTAMPTZ   NOT NULL,
    expires_at     TIMESTAMPTZ,
    superseded_by  TEXT,
    superseded_at  TIMESTAMPTZ
);
CREATE INDEX memories_user ON memories (user_id, kind, superseded_by);

-- Bumped on every change to a user's memories, so that a replica holding a
-- vector index of them knows when to reload it.
CREATE TABLE memory_revisions (
    user_id   BIGINT  PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    revision  BIGINT  NOT NULL
);

-- The style profile learned from a user's messages (JSON).
CREATE TABLE user_profiles (
    user_id     BIGINT  PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    profile     TEXT    NOT NULL,
    updated_at  TIMESTAMPTZ   NOT NULL
);

-- Working memory: a complete turn stays in it until wm_expires_at; a
-- background task clears the column once it has passed.
ALTER TABLE conversation_turns ADD COLUMN wm_expires_at TIMESTAMPTZ;
-- What recall and research put into the turn's prompt (JSON), and the note
-- placed before the message, repeated in later prompts as history.
ALTER TABLE conversation_turns ADD COLUMN context_trace TEXT;
ALTER TABLE conversation_turns ADD COLUMN prompt_note TEXT;
CREATE INDEX conversation_turns_working ON conversation_turns (user_id, wm_expires_at);
-- Turns completed before this migration stay in working memory for the
-- default 24 hours after their completion.
UPDATE conversation_turns
   SET wm_expires_at = completed_at + INTERVAL '1 day'
 WHERE status = 'complete' AND completed_at IS NOT NULL;

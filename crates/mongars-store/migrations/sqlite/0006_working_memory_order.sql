-- Working memory is read newest first, counted and trimmed per user on
-- every turn. An index over the working rows only, in the order those
-- reads want and holding the columns they filter on: counting touches the
-- user's working rows in the index alone, the newest-first read stops after
-- the rows it returns, and nothing is sorted, however long the history.
CREATE INDEX conversation_turns_working_order
    ON conversation_turns (user_id, created_at, id, wm_expires_at, status, session_id)
    WHERE wm_expires_at IS NOT NULL;
-- The expiry sweep runs across users, by time alone.
CREATE INDEX conversation_turns_working_expiry
    ON conversation_turns (wm_expires_at)
    WHERE wm_expires_at IS NOT NULL;
DROP INDEX conversation_turns_working;

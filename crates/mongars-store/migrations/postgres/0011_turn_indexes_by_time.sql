-- A turn's completion changes its status from 'pending'. The user's and
-- the session's indexes held the status as a key, so completing a turn
-- moved its entry in both (a delete and an insert in each B-tree, under
-- the write lock). They now order a user's turns by time alone: a turn's
-- entries are written once, when it starts, and completion leaves them.
-- The newest complete turn is still one step down the index (past the few
-- turns still pending or failed after it).
DROP INDEX conversation_turns_user;
DROP INDEX conversation_turns_session;
CREATE INDEX conversation_turns_user ON conversation_turns (user_id, created_at);
CREATE INDEX conversation_turns_session ON conversation_turns (user_id, session_id, created_at);

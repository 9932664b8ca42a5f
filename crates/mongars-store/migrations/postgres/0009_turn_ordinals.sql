-- Where each turn stands in its user's history (complete turns before it)
-- and in its session's. The next turn's place is the newest complete
-- turn's plus one, read through the (user_id, status, created_at) and
-- session indexes: one row, however long the history, where counting
-- every complete turn grew with it. Turns stored before this have none;
-- the first turn after it counts once and stores what it found.
ALTER TABLE conversation_turns ADD COLUMN ordinal BIGINT;
ALTER TABLE conversation_turns ADD COLUMN session_ordinal BIGINT;

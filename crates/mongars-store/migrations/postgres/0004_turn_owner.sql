-- The process running a turn, so that turns left pending by a process that
-- died can be failed as interrupted (and those of live replicas left alone).
ALTER TABLE conversation_turns ADD COLUMN owner TEXT;
CREATE INDEX conversation_turns_pending ON conversation_turns (owner, created_at)
    WHERE status = 'pending';

-- A version per style profile, raised by every save. A save names the
-- version it read and changes nothing when another process saved in
-- between, so two replicas learning from one user's messages at once
-- cannot lose an update: the one that lost reads again and retries.
ALTER TABLE user_profiles ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

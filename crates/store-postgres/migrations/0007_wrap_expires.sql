-- When the job's wrapping token expires (ms since the epoch, 0 = unknown), from Vault's
-- sys/wrapping/lookup at submission: a token that lapses while the job is queued is then
-- reported as such, not as a possible interception.
ALTER TABLE jobs ADD COLUMN wrap_expires BIGINT NOT NULL DEFAULT 0;

-- Queued jobs oldest first, for the claim's fast path.
CREATE INDEX jobs_queued_order ON jobs (submitted, seq) WHERE status = 'queued';

-- gostint's job table: one row per job, the queues are the distinct `qname` values.
CREATE TABLE jobs (
    -- Insertion order: the FIFO tie-break when two jobs of a queue share `submitted`.
    seq             INTEGER PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE CHECK (length(id) = 24),
    qname           TEXT    NOT NULL,
    owner           TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN
                        ('queued', 'running', 'stopping', 'success', 'failed', 'notauthorised', 'unknown')),
    node_uuid       TEXT    NOT NULL DEFAULT '',
    -- Milliseconds since the Unix epoch; 0 = unset.
    submitted       INTEGER NOT NULL,
    started         INTEGER NOT NULL DEFAULT 0,
    ended           INTEGER NOT NULL DEFAULT 0,
    output          TEXT    NOT NULL DEFAULT '',
    stderr          TEXT    NOT NULL DEFAULT '',
    return_code     INTEGER NOT NULL DEFAULT 0,
    tty             INTEGER NOT NULL DEFAULT 0 CHECK (tty IN (0, 1)),
    container_id    TEXT    NOT NULL DEFAULT '',
    container_image TEXT    NOT NULL DEFAULT '',
    kill_requested  INTEGER NOT NULL DEFAULT 0 CHECK (kill_requested IN (0, 1)),
    -- JSON of gostint_core::JobDefinition (the outer job fields).
    definition      TEXT    NOT NULL CHECK (json_valid(definition)),
    wrap_secret_id  TEXT    NOT NULL DEFAULT '',
    -- Transit ciphertext until the job ends; never the plaintext.
    payload         TEXT
) STRICT;

-- At most one active job per queue, whatever the code above it does (SPEC §5.2).
CREATE UNIQUE INDEX jobs_one_active_per_queue ON jobs (qname) WHERE status IN ('running', 'stopping');

-- Claim: walk the distinct queued qnames, then each queue's head by (submitted, seq).
CREATE INDEX jobs_claim ON jobs (status, qname, submitted, seq);

-- Listing, newest first (an admin sees all, anyone else their own).
CREATE INDEX jobs_by_submitted ON jobs (submitted, seq);
CREATE INDEX jobs_by_owner ON jobs (owner, submitted, seq);

-- A node's own jobs: kill scan, node_running_jobs, stale-node sweep.
CREATE INDEX jobs_by_node ON jobs (node_uuid, status);

-- Retention purge of ended jobs.
CREATE INDEX jobs_ended ON jobs (ended) WHERE status IN ('success', 'failed', 'notauthorised', 'unknown');

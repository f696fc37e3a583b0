-- gostint's job table on PostgreSQL: one row per job, the queues are the distinct `qname`
-- values. Several nodes share it; the indexes below carry the queue rules (SPEC §5.2).
CREATE TABLE jobs (
    -- Insertion order: the FIFO tie-break when two jobs of a queue share `submitted`.
    seq             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE CHECK (length(id) = 24),
    qname           TEXT    NOT NULL,
    owner           TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN
                        ('queued', 'running', 'stopping', 'success', 'failed', 'notauthorised', 'unknown')),
    node_uuid       TEXT    NOT NULL DEFAULT '',
    -- Milliseconds since the Unix epoch; 0 = unset.
    submitted       BIGINT  NOT NULL,
    started         BIGINT  NOT NULL DEFAULT 0,
    ended           BIGINT  NOT NULL DEFAULT 0,
    output          TEXT    NOT NULL DEFAULT '',
    stderr          TEXT    NOT NULL DEFAULT '',
    return_code     BIGINT  NOT NULL DEFAULT 0,
    tty             BOOLEAN NOT NULL DEFAULT FALSE,
    container_id    TEXT    NOT NULL DEFAULT '',
    container_image TEXT    NOT NULL DEFAULT '',
    kill_requested  BOOLEAN NOT NULL DEFAULT FALSE,
    -- JSON (serde's text, so NUL characters stay escaped) of gostint_core::JobDefinition
    -- with `content` and `env_vars` left empty ...
    definition      TEXT    NOT NULL,
    -- ... which live here, as JSON `{"content": …, "env_vars": […]}`, until the job ends:
    -- blanking them (SPEC §9 item 37) is then `definition_secrets = NULL`.
    definition_secrets TEXT,
    wrap_secret_id  TEXT    NOT NULL DEFAULT '',
    -- Transit ciphertext until the job ends; never the plaintext.
    payload         TEXT
);

-- At most one active job per queue over all nodes, whatever the code above it does
-- (SPEC §5.2): a claim that would break it fails with a unique violation instead.
CREATE UNIQUE INDEX jobs_one_active_per_queue ON jobs (qname) WHERE status IN ('running', 'stopping');

-- Claim: only queued rows, so queues holding nothing but ended jobs cost nothing. The claim
-- skips from one queued qname to the next, then takes each free queue's head by
-- (submitted, seq).
CREATE INDEX jobs_queued ON jobs (qname, submitted, seq) WHERE status = 'queued';

-- Listing, newest first (an admin sees all, anyone else their own).
CREATE INDEX jobs_by_submitted ON jobs (submitted, seq);
CREATE INDEX jobs_by_owner ON jobs (owner, submitted, seq);

-- A node's own active jobs: kill scan, node_running_jobs, stale-node sweep, orphan owners.
CREATE INDEX jobs_active_by_node ON jobs (node_uuid) WHERE status IN ('running', 'stopping');

-- Retention purge of ended jobs.
CREATE INDEX jobs_ended ON jobs (ended) WHERE status IN ('success', 'failed', 'notauthorised', 'unknown');

-- Nodes and their heartbeats (SPEC §5.6).
CREATE TABLE nodes (
    node_uuid TEXT   PRIMARY KEY,
    last_seen BIGINT NOT NULL
);

-- Tenants (SPEC §10): the queue key becomes (tenant, qname). Rows from before tenants have
-- tenant '' (the single tenant of that deployment; the worker maps '' to it).
ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT '';

-- One active job per (tenant, qname) over all nodes; its `tenant` prefix also counts a
-- tenant's active jobs (GOSTINT_TENANT_MAX_RUNNING).
DROP INDEX jobs_one_active_per_queue;
CREATE UNIQUE INDEX jobs_one_active_per_queue ON jobs (tenant, qname) WHERE status IN ('running', 'stopping');

-- Claim: the loose index scan walks (tenant, qname) keys; also counts a tenant's queued jobs.
DROP INDEX jobs_queued;
CREATE INDEX jobs_queued ON jobs (tenant, qname, submitted, seq) WHERE status = 'queued';

DROP INDEX jobs_queue_ended;
CREATE INDEX jobs_queue_ended ON jobs (tenant, qname, ended);

-- Fair claiming: when a tenant last had a job started.
CREATE INDEX jobs_tenant_started ON jobs (tenant, started);

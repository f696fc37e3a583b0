-- Tenants (SPEC §10): the queue key becomes (tenant, qname). Rows from before tenants have
-- tenant '' (the single tenant of that deployment; the worker maps '' to it).
ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT '';

-- One active job per (tenant, qname): two tenants with the same qname never wait for each
-- other. Its `tenant` prefix also counts a tenant's active jobs for GOSTINT_TENANT_MAX_RUNNING.
DROP INDEX jobs_one_active_per_queue;
CREATE UNIQUE INDEX jobs_one_active_per_queue ON jobs (tenant, qname) WHERE status IN ('running', 'stopping');

-- Claim: walk the distinct queued (tenant, qname) keys, then each queue's head; also counts
-- a tenant's queued jobs (GOSTINT_TENANT_MAX_QUEUED).
DROP INDEX jobs_claim;
CREATE INDEX jobs_claim ON jobs (status, tenant, qname, submitted, seq);

DROP INDEX jobs_queue_ended;
CREATE INDEX jobs_queue_ended ON jobs (tenant, qname, ended);

-- Fair claiming: when a tenant last had a job started.
CREATE INDEX jobs_tenant_started ON jobs (tenant, started);

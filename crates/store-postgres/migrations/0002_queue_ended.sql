-- The latest `ended` of a queue, read by each claim so a job never starts (on record) before
-- its predecessor in the queue ended.
CREATE INDEX jobs_queue_ended ON jobs (qname, ended);

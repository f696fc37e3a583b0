-- Live output (SPEC §12): every status change of a job wakes the nodes whose streams and
-- long-polls follow it (NOTIFY 'job:<id>' on the channel every node listens on). Output
-- appends notify from their own statement.
CREATE FUNCTION gostint_job_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gostint_events', 'job:' || NEW.id);
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_status_changed AFTER UPDATE OF status ON jobs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION gostint_job_changed();

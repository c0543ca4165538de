-- What the scheduler needs besides what the plan stored.
-- A run's priority (dispatch and re-runs may raise it); its jobs share it.
ALTER TABLE runs ADD COLUMN priority BIGINT NOT NULL DEFAULT 0;
-- The workflow's concurrency group (top-level `concurrency`): the whole run holds it.
ALTER TABLE runs ADD COLUMN concurrency TEXT;
ALTER TABLE runs ADD COLUMN cancel_in_progress BIGINT NOT NULL DEFAULT 0 CHECK (cancel_in_progress IN (0, 1));
-- A job's concurrency group cancels the group's running job when a newer one comes.
ALTER TABLE jobs ADD COLUMN cancel_in_progress BIGINT NOT NULL DEFAULT 0 CHECK (cancel_in_progress IN (0, 1));
-- A matrix job's strategy: fail_fast is NULL for a job without a matrix.
ALTER TABLE jobs ADD COLUMN fail_fast BIGINT CHECK (fail_fast IN (0, 1));
ALTER TABLE jobs ADD COLUMN max_parallel BIGINT;
-- What the job's check run last said it waits for, so it is told only when that changes.
ALTER TABLE jobs ADD COLUMN waiting_reason TEXT;
CREATE INDEX jobs_unfinished ON jobs (run_id) WHERE status <> 'completed';

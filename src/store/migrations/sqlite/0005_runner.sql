-- What the job runner needs besides what the scheduler stored.
-- The workflow file's text when the run started: its jobs run what was pushed, even if
-- the file changes (or a farm-side file is edited) while they wait for a host.
ALTER TABLE runs ADD COLUMN workflow_source TEXT;
-- A finished job's `outputs`, a JSON object, for the `needs` context of later jobs.
ALTER TABLE jobs ADD COLUMN outputs TEXT;
-- How often the job was retried on another host after an infrastructure failure.
ALTER TABLE jobs ADD COLUMN infra_attempts BIGINT NOT NULL DEFAULT 0;
-- The host's SSH key (OpenSSH text), pinned at first contact and at each reinstall.
ALTER TABLE hosts ADD COLUMN host_key TEXT;
-- A step's outcome before continue-on-error (GitHub's steps.<id>.outcome).
ALTER TABLE steps ADD COLUMN outcome TEXT;

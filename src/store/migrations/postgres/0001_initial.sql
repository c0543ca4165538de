-- Deliveries are stored raw before the webhook is answered; processing happens later.
CREATE TABLE deliveries (
    id           TEXT PRIMARY KEY,      -- X-GitHub-Delivery
    event        TEXT NOT NULL,         -- X-GitHub-Event
    body         TEXT NOT NULL,
    received_at  BIGINT NOT NULL,       -- unix milliseconds
    processed_at BIGINT,
    outcome      TEXT
);
CREATE INDEX deliveries_unprocessed ON deliveries (received_at) WHERE processed_at IS NULL;

-- Run numbers count per repository and workflow, as on GitHub.
CREATE TABLE run_numbers (
    repo     TEXT NOT NULL,
    workflow TEXT NOT NULL,
    last     BIGINT NOT NULL,
    PRIMARY KEY (repo, workflow)
);

CREATE TABLE runs (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repo          TEXT NOT NULL,
    workflow      TEXT NOT NULL,        -- workflow file path
    workflow_name TEXT NOT NULL,
    run_number    BIGINT NOT NULL,
    run_attempt   BIGINT NOT NULL,
    event         TEXT NOT NULL,
    delivery_id   TEXT REFERENCES deliveries (id),
    installation_id BIGINT,               -- the GitHub App installation reporting for it
    head_sha      TEXT NOT NULL,        -- the commit the run runs on (github.sha)
    check_sha     TEXT NOT NULL,        -- the commit its check runs are on (a PR's head)
    git_ref       TEXT NOT NULL,
    run_name      TEXT NOT NULL,
    status        TEXT NOT NULL,
    conclusion    TEXT,
    -- 1: from a fork, its jobs never get secrets (an integer: the Any driver reads no SQLite booleans).
    fork          BIGINT NOT NULL DEFAULT 0 CHECK (fork IN (0, 1)),
    -- A fork's run whose author lacks write access waits until a maintainer approves it.
    approval      TEXT NOT NULL DEFAULT 'none' CHECK (approval IN ('none', 'required', 'approved')),
    created_at    BIGINT NOT NULL,
    UNIQUE (repo, workflow, run_number, run_attempt)
);

CREATE TABLE jobs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id       BIGINT NOT NULL REFERENCES runs (id),
    job_key      TEXT NOT NULL,          -- workflow job id
    name         TEXT NOT NULL,          -- display name, matrix values included
    runs_on      TEXT NOT NULL,          -- JSON array of labels
    needs        TEXT NOT NULL,          -- JSON array of job ids
    matrix       TEXT,                   -- JSON object or NULL
    condition    TEXT NOT NULL,          -- the `if` left for run time
    concurrency  TEXT,                   -- evaluated group, or NULL
    status       TEXT NOT NULL,          -- waiting (for approval), queued, in_progress, completed
    conclusion   TEXT,
    check_run_id BIGINT,
    host         TEXT,
    created_at   BIGINT NOT NULL,
    started_at   BIGINT,
    completed_at BIGINT
);
CREATE INDEX jobs_by_run ON jobs (run_id);

CREATE TABLE steps (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id       BIGINT NOT NULL REFERENCES jobs (id),
    number       BIGINT NOT NULL,
    name         TEXT NOT NULL,
    status       TEXT NOT NULL,
    conclusion   TEXT,
    started_at   BIGINT,
    completed_at BIGINT,
    UNIQUE (job_id, number)
);

-- One check run on the forge per job (or per broken workflow file).
CREATE TABLE check_runs (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id          BIGINT NOT NULL REFERENCES runs (id),
    job_id          BIGINT REFERENCES jobs (id),
    repo            TEXT NOT NULL,
    installation_id BIGINT,
    forge_id        BIGINT,             -- the forge's check run id, once created
    created_at      BIGINT NOT NULL
);
-- A requested action names its check run by the forge's id.
CREATE INDEX check_runs_by_forge_id ON check_runs (forge_id) WHERE forge_id IS NOT NULL;

-- What the forge must hear about, written in the same transaction as the change: the
-- check run's whole wanted state, so a later row supersedes an earlier one.
CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    check_run_id    BIGINT NOT NULL REFERENCES check_runs (id),
    payload         TEXT NOT NULL,      -- JSON body of the check-run request
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at    BIGINT,
    last_error      TEXT
);
CREATE INDEX outbox_pending ON outbox (check_run_id, id) WHERE delivered_at IS NULL;

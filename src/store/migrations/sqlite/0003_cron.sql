-- `schedule` triggers. A tick is one (repository, workflow file, cron entry, UTC minute);
-- it is recorded in the transaction that records its runs, so it runs at most once,
-- across restarts and across farms sharing a database.
CREATE TABLE cron_ticks (
    repo        TEXT NOT NULL,
    workflow    TEXT NOT NULL,          -- workflow file path
    cron        TEXT NOT NULL,          -- the `cron:` entry as written
    tick_at     BIGINT NOT NULL,        -- the minute it is for, unix milliseconds
    -- The event the runs were started from (event `schedule`), kept as a delivery so a
    -- re-run reads it as it reads any other event.
    delivery_id TEXT NOT NULL REFERENCES deliveries (id),
    fired_at    BIGINT NOT NULL,        -- unix milliseconds; after tick_at when run late
    PRIMARY KEY (repo, workflow, cron, tick_at)
);
CREATE INDEX cron_ticks_by_time ON cron_ticks (tick_at);

-- When the farm first saw each schedule: a tick before that was never missed, so it is
-- never run late.
CREATE TABLE cron_schedules (
    repo          TEXT NOT NULL,
    workflow      TEXT NOT NULL,
    cron          TEXT NOT NULL,
    first_seen_at BIGINT NOT NULL,      -- unix milliseconds of a minute
    PRIMARY KEY (repo, workflow, cron)
);

-- The last minute the cron looked at (one row): at the next tick, the ticks between it
-- and an hour ago were missed too long ago, and are logged as skipped.
CREATE TABLE cron_state (
    id           BIGINT PRIMARY KEY CHECK (id = 1),
    last_tick_at BIGINT NOT NULL        -- unix milliseconds of a minute
);

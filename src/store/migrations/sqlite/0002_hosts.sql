-- The inventory: hosts from the config file (`[[host]]`, source 'config') and from the
-- API (source 'api'), with their state and lease.
CREATE TABLE hosts (
    name             TEXT PRIMARY KEY,
    address          TEXT NOT NULL,
    port             BIGINT NOT NULL,
    cobbler_system   TEXT NOT NULL,
    arch             TEXT NOT NULL CHECK (arch IN ('x64', 'arm64')),
    labels           TEXT NOT NULL,         -- JSON array of its own labels, lowercase; the implicit ones are not stored
    source           TEXT NOT NULL CHECK (source IN ('config', 'api')),
    state            TEXT NOT NULL CHECK (state IN ('ready', 'leased', 'repairing', 'broken', 'maintenance')),
    state_reason     TEXT NOT NULL,
    -- An admin lock asked for while the host was leased: it goes to maintenance with
    -- this reason when the job ends.
    pending_lock     TEXT,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    job_id           BIGINT REFERENCES jobs (id),   -- the current lease
    lease_expires_at BIGINT,                        -- unix milliseconds; renewed by the lease's heartbeat
    version          BIGINT NOT NULL DEFAULT 0,     -- bumped by every change: changes are compare-and-set
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

-- Every change of state, and every admin action, with who did it and why.
CREATE TABLE host_history (
    id         INTEGER PRIMARY KEY,
    host       TEXT NOT NULL REFERENCES hosts (name) ON DELETE CASCADE,
    at         BIGINT NOT NULL,
    from_state TEXT,                        -- NULL: the host was added
    to_state   TEXT NOT NULL,
    reason     TEXT NOT NULL,
    actor      TEXT NOT NULL                -- admin, config, farm
);
CREATE INDEX host_history_by_host ON host_history (host, id);

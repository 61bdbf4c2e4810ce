-- Per-organization data generation: bumped in the same transaction as every change of an
-- organization's lines, read models or suppliers. API nodes key their caches by it, so a
-- write (from any process) makes older cache entries unreachable.
ALTER TABLE organizations ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;

-- Background jobs (CSV imports, reports), persisted so that a restart neither loses a queued
-- job nor runs it twice. `uploading` jobs are not visible through the API until their input
-- is complete; `running` jobs refresh `heartbeat_at`, and one whose heartbeat stops (its node
-- died) is queued again and re-run; imports are idempotent, so a re-run duplicates nothing.
CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    org_id       INTEGER NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('import', 'report')),
    status       TEXT NOT NULL CHECK (status IN ('uploading', 'queued', 'running', 'succeeded', 'failed')),
    params       TEXT NOT NULL,
    processed    INTEGER NOT NULL DEFAULT 0,
    total        INTEGER,
    bytes_read   INTEGER NOT NULL DEFAULT 0,
    bytes_total  INTEGER,
    result       TEXT,
    errors       TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    claimed_by   TEXT,
    created_at   TEXT NOT NULL,
    started_at   TEXT,
    finished_at  TEXT,
    heartbeat_at INTEGER NOT NULL
);

CREATE INDEX jobs_queue ON jobs (status, created_at);
CREATE INDEX jobs_org ON jobs (org_id, created_at);

-- Files of a job (the uploaded CSV, the rejects, a report's output) in 1 MiB chunks, in the
-- database so that any node can run or serve them.
CREATE TABLE job_files (
    job_id TEXT NOT NULL,
    name   TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    data   BLOB NOT NULL,
    PRIMARY KEY (job_id, name, seq)
) WITHOUT ROWID;

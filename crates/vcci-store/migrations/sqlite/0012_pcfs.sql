-- Product carbon footprints (PACT Tech Specs v3) received from suppliers. Each is stored as
-- received (`document`) and never changed but for its status: a host deprecates a footprint
-- by serving it again as Deprecated, and a footprint listing another in precedingPfIds
-- supersedes it (`superseded_by`). Only Active, unsuperseded footprints are calculated with.
CREATE TABLE pcfs (
    org_id        INTEGER NOT NULL,
    id            TEXT NOT NULL,
    supplier_id   TEXT NOT NULL,
    status        TEXT NOT NULL,
    superseded_by TEXT,
    created       TEXT NOT NULL,
    company_name  TEXT NOT NULL,
    product_ids   TEXT NOT NULL,
    preceding     TEXT NOT NULL,
    document      TEXT NOT NULL,
    source        TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (org_id, id)
) WITHOUT ROWID;
CREATE INDEX pcfs_supplier ON pcfs (org_id, supplier_id);
-- The products each footprint is of, for lookups by product.
CREATE TABLE pcf_products (
    org_id     INTEGER NOT NULL,
    product_id TEXT NOT NULL,
    pcf_id     TEXT NOT NULL,
    PRIMARY KEY (org_id, product_id, pcf_id)
) WITHOUT ROWID;
-- The organization's own footprints, published to its customers over PACT (/3/footprints).
-- Immutable but for their status: a new version has a new id, lists the old one in
-- precedingPfIds, and the old one becomes Deprecated (its document says so).
CREATE TABLE published_pcfs (
    org_id       INTEGER NOT NULL,
    id           TEXT NOT NULL,
    status       TEXT NOT NULL,
    created      TEXT NOT NULL,
    product_ids  TEXT NOT NULL,
    preceding    TEXT NOT NULL,
    document     TEXT NOT NULL,
    published_at TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (org_id, id)
) WITHOUT ROWID;
-- The PACT API clients of the organization's customers: an id and the SHA-256 of a random
-- 256-bit secret (shown once).
CREATE TABLE pact_clients (
    client_id   TEXT PRIMARY KEY,
    org_id      INTEGER NOT NULL,
    name        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX pact_clients_org ON pact_clients (org_id);
-- Connections to suppliers' PACT hosts: where (base URL, auth base URL or discovery), who
-- (client id) and the client secret, encrypted at rest (AES-256-GCM, key from
-- configuration; never returned). The last sync's state is kept with it. The same table
-- holds connections to customers' hosts (to answer their requests, and to notify them).
CREATE TABLE pact_connections (
    org_id        INTEGER NOT NULL,
    id            TEXT NOT NULL,
    supplier_id   TEXT NOT NULL,
    base_url      TEXT NOT NULL,
    auth_base_url TEXT,
    client_id     TEXT NOT NULL,
    secret_sealed BLOB NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    last_sync     TEXT,
    -- A customer's host: our PublishedEvents go to it when we publish.
    notify_published INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, id)
);
-- Jobs of new kinds: pact_sync, pact_answer, pact_notify. SQLite cannot change a CHECK constraint in place, so the
-- table is rebuilt with the same columns and rows.
CREATE TABLE jobs_new (
    id           TEXT PRIMARY KEY,
    org_id       INTEGER NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('import', 'report', 'pact_sync', 'pact_answer', 'pact_notify')),
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
INSERT INTO jobs_new (id, org_id, kind, status, params, processed, total, bytes_read, bytes_total,
    result, errors, attempts, claimed_by, created_at, started_at, finished_at, heartbeat_at)
SELECT id, org_id, kind, status, params, processed, total, bytes_read, bytes_total,
    result, errors, attempts, claimed_by, created_at, started_at, finished_at, heartbeat_at
FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE INDEX jobs_queue ON jobs (status, created_at);
CREATE INDEX jobs_org ON jobs (org_id, created_at);
-- Lineage of received footprints: which footprint lists which in precedingPfIds.
CREATE TABLE pcf_lineage (
    org_id       INTEGER NOT NULL,
    preceding_id TEXT NOT NULL,
    pcf_id       TEXT NOT NULL,
    PRIMARY KEY (org_id, preceding_id, pcf_id)
) WITHOUT ROWID;
-- PACT requests for footprints (CloudEvents): ours to suppliers (`outgoing`, through a
-- connection, answered at our /3/events) and our customers' to us (`incoming`, from one of our
-- clients, answered to the requester's /3/events through our connection to it).
CREATE TABLE pact_requests (
    org_id        INTEGER NOT NULL,
    id            TEXT NOT NULL,
    direction     TEXT NOT NULL CHECK (direction IN ('outgoing', 'incoming')),
    connection_id TEXT,
    client_id     TEXT,
    source        TEXT,
    criteria      TEXT NOT NULL,
    status        TEXT NOT NULL,
    answer        TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (org_id, id)
);

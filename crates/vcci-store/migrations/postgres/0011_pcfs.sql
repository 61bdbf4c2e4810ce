-- Product carbon footprints (PACT Tech Specs v3) received from suppliers. Each is stored as
-- received (`document`) and never changed but for its status: a host deprecates a footprint
-- by serving it again as Deprecated, and a footprint listing another in precedingPfIds
-- supersedes it (`superseded_by`). Only Active, unsuperseded footprints are calculated with.
CREATE TABLE pcfs (
    org_id        BIGINT NOT NULL,
    id            TEXT COLLATE "C" NOT NULL,
    supplier_id   TEXT COLLATE "C" NOT NULL,
    status        TEXT COLLATE "C" NOT NULL,
    superseded_by TEXT COLLATE "C",
    created       TEXT COLLATE "C" NOT NULL,
    company_name  TEXT NOT NULL,
    product_ids   TEXT NOT NULL,
    preceding     TEXT NOT NULL,
    document      TEXT NOT NULL,
    source        TEXT NOT NULL,
    received_at   TEXT COLLATE "C" NOT NULL,
    updated_at    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX pcfs_supplier ON pcfs (org_id, supplier_id);
-- The products each footprint is of, for lookups by product.
CREATE TABLE pcf_products (
    org_id     BIGINT NOT NULL,
    product_id TEXT COLLATE "C" NOT NULL,
    pcf_id     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (org_id, product_id, pcf_id)
);
-- The organization's own footprints, published to its customers over PACT (/3/footprints).
-- Immutable but for their status: a new version has a new id, lists the old one in
-- precedingPfIds, and the old one becomes Deprecated (its document says so).
CREATE TABLE published_pcfs (
    org_id       BIGINT NOT NULL,
    id           TEXT COLLATE "C" NOT NULL,
    status       TEXT COLLATE "C" NOT NULL,
    created      TEXT COLLATE "C" NOT NULL,
    product_ids  TEXT NOT NULL,
    preceding    TEXT NOT NULL,
    document     TEXT NOT NULL,
    published_at TEXT COLLATE "C" NOT NULL,
    updated_at   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (org_id, id)
);
-- The PACT API clients of the organization's customers: an id and the SHA-256 of a random
-- 256-bit secret (shown once).
CREATE TABLE pact_clients (
    client_id   TEXT COLLATE "C" PRIMARY KEY,
    org_id      BIGINT NOT NULL,
    name        TEXT NOT NULL,
    secret_hash TEXT COLLATE "C" NOT NULL,
    created_at  TEXT COLLATE "C" NOT NULL,
    revoked_at  TEXT COLLATE "C"
);
CREATE INDEX pact_clients_org ON pact_clients (org_id);
-- Connections to suppliers' PACT hosts: where (base URL, auth base URL or discovery), who
-- (client id) and the client secret, encrypted at rest (AES-256-GCM, key from
-- configuration; never returned). The last sync's state is kept with it. The same table
-- holds connections to customers' hosts (to answer their requests, and to notify them).
CREATE TABLE pact_connections (
    org_id        BIGINT NOT NULL,
    id            TEXT COLLATE "C" NOT NULL,
    supplier_id   TEXT COLLATE "C" NOT NULL,
    base_url      TEXT NOT NULL,
    auth_base_url TEXT,
    client_id     TEXT NOT NULL,
    secret_sealed BYTEA NOT NULL,
    created_at    TEXT COLLATE "C" NOT NULL,
    updated_at    TEXT COLLATE "C" NOT NULL,
    last_sync     TEXT,
    -- A customer's host: our PublishedEvents go to it when we publish.
    notify_published BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, id)
);
-- Jobs of new kinds: pact_sync, pact_answer, pact_notify.
ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_kind_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN ('import', 'report', 'pact_sync', 'pact_answer', 'pact_notify'));
-- Lineage of received footprints: which footprint lists which in precedingPfIds.
CREATE TABLE pcf_lineage (
    org_id       BIGINT NOT NULL,
    preceding_id TEXT COLLATE "C" NOT NULL,
    pcf_id       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (org_id, preceding_id, pcf_id)
);
-- PACT requests for footprints (CloudEvents): ours to suppliers (`outgoing`, through a
-- connection, answered at our /3/events) and our customers' to us (`incoming`, from one of our
-- clients, answered to the requester's /3/events through our connection to it).
CREATE TABLE pact_requests (
    org_id        BIGINT NOT NULL,
    id            TEXT COLLATE "C" NOT NULL,
    direction     TEXT COLLATE "C" NOT NULL CHECK (direction IN ('outgoing', 'incoming')),
    connection_id TEXT COLLATE "C",
    client_id     TEXT COLLATE "C",
    source        TEXT,
    criteria      TEXT NOT NULL,
    status        TEXT COLLATE "C" NOT NULL,
    answer        TEXT,
    created_at    TEXT COLLATE "C" NOT NULL,
    updated_at    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (org_id, id)
);

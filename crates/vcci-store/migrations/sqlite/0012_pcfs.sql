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

-- vcci schema v1 (SQLite). Every tenant table leads with org_id.
--
-- The lines table is a rowid table (rows append) with two indexes: the unique key and the date.
-- Each further index on randomly ordered keys costs ~2-4 µs per imported line on this
-- machine class (measured), which the import's throughput target cannot afford; filters
-- other than date and id are served by the read models or by scans of a date range.
-- Only what SQL filters, sorts or sums on is a column (dates as integers yyyymmdd, enums as
-- small integers); the rest of a line and its audit trail is one compact blob (codec.rs).
-- Read-model sums are integers (milligrams CO2e, milli-USD) so that incremental updates
-- agree exactly with a recomputation.

CREATE TABLE organizations (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    epa_version TEXT NOT NULL DEFAULT '1.3.0',
    created_at  TEXT NOT NULL
);

CREATE TABLE api_keys (
    id         INTEGER PRIMARY KEY,
    org_id     INTEGER NOT NULL REFERENCES organizations(id),
    key_hash   BLOB NOT NULL UNIQUE,
    prefix     TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'analyst', 'viewer')),
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE suppliers (
    org_id               INTEGER NOT NULL,
    supplier_id          TEXT NOT NULL,
    name                 TEXT NOT NULL,
    country              TEXT,
    naics_code           INTEGER,
    intensity_kg_per_usd REAL,
    intensity_year       INTEGER,
    intensity_source     TEXT,
    updated_at           TEXT NOT NULL,
    PRIMARY KEY (org_id, supplier_id)
) WITHOUT ROWID;

CREATE TABLE transactions (
    id             INTEGER PRIMARY KEY,
    org_id         INTEGER NOT NULL,
    transaction_id TEXT NOT NULL,
    day            INTEGER NOT NULL,
    supplier_id    TEXT,
    co2e_kg        REAL NOT NULL,
    spend_usd      REAL,
    category       INTEGER NOT NULL,
    method         INTEGER NOT NULL,
    data_quality   INTEGER NOT NULL,
    content_hash   INTEGER NOT NULL,
    import_id      INTEGER,
    source_line    INTEGER,
    -- Every other field of the line and of its audit trail, encoded by codec.rs.
    body           BLOB NOT NULL
);

CREATE UNIQUE INDEX transactions_key ON transactions (org_id, transaction_id);

CREATE INDEX transactions_day ON transactions (org_id, day, transaction_id);

-- Read model: one row per organization, day, category, method and data-quality score.
CREATE TABLE summary_daily (
    org_id       INTEGER NOT NULL,
    day          INTEGER NOT NULL,
    category     INTEGER NOT NULL,
    method       INTEGER NOT NULL,
    data_quality INTEGER NOT NULL,
    co2e_mg      INTEGER NOT NULL,
    spend_musd   INTEGER NOT NULL,
    line_count   INTEGER NOT NULL,
    PRIMARY KEY (org_id, day, category, method, data_quality)
) WITHOUT ROWID;

-- Read model: one row per organization, supplier ('' = none) and month (yyyymm).
CREATE TABLE summary_supplier_month (
    org_id      INTEGER NOT NULL,
    supplier_id TEXT NOT NULL,
    month       INTEGER NOT NULL,
    co2e_mg     INTEGER NOT NULL,
    spend_musd  INTEGER NOT NULL,
    line_count  INTEGER NOT NULL,
    PRIMARY KEY (org_id, supplier_id, month)
) WITHOUT ROWID;

CREATE TABLE imports (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    source      TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    lines_read  INTEGER NOT NULL DEFAULT 0,
    accepted    INTEGER NOT NULL DEFAULT 0,
    unchanged   INTEGER NOT NULL DEFAULT 0,
    rejected    INTEGER NOT NULL DEFAULT 0
);

-- Reporting periods. A year of an organization is open until it is closed; closing freezes
-- its results as an inventory version (the year's inventory as reported, and every line's
-- result and audit trail as stored), and the write path then refuses changes to that year.
-- An admin may reopen it with a reason; closing it again makes the next version.
-- closed_by / reopened_by: who (an API key's id and role, or the command line).
CREATE TABLE periods (
    org_id        BIGINT NOT NULL,
    year          BIGINT NOT NULL,
    closed        BIGINT NOT NULL,
    version       BIGINT NOT NULL,
    closed_at     TEXT COLLATE "C" NOT NULL,
    closed_by     TEXT COLLATE "C" NOT NULL,
    reopened_at   TEXT,
    reopened_by   TEXT,
    reopen_reason TEXT,
    PRIMARY KEY (org_id, year)
);
CREATE TABLE inventory_versions (
    org_id     BIGINT NOT NULL,
    year       BIGINT NOT NULL,
    version    BIGINT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    created_by TEXT COLLATE "C" NOT NULL,
    reason     TEXT COLLATE "C" NOT NULL,
    line_count BIGINT NOT NULL,
    co2e_kg    DOUBLE PRECISION NOT NULL,
    inventory  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (org_id, year, version)
);
CREATE TABLE inventory_version_lines (
    org_id         BIGINT NOT NULL,
    year           BIGINT NOT NULL,
    version        BIGINT NOT NULL,
    transaction_id TEXT COLLATE "C" NOT NULL,
    day            BIGINT NOT NULL,
    supplier_id    TEXT COLLATE "C",
    co2e_kg        DOUBLE PRECISION NOT NULL,
    category       BIGINT NOT NULL,
    method         BIGINT NOT NULL,
    data_quality   BIGINT NOT NULL,
    body           BYTEA NOT NULL,
    PRIMARY KEY (org_id, year, version, transaction_id)
);

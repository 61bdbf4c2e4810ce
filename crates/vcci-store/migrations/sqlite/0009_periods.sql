-- Reporting periods. A year of an organization is open until it is closed; closing freezes
-- its results as an inventory version (the year's inventory as reported, and every line's
-- result and audit trail as stored), and the write path then refuses changes to that year.
-- An admin may reopen it with a reason; closing it again makes the next version.
-- closed_by / reopened_by: who (an API key's id and role, or the command line).
CREATE TABLE periods (
    org_id        INTEGER NOT NULL,
    year          INTEGER NOT NULL,
    closed        INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    closed_at     TEXT NOT NULL,
    closed_by     TEXT NOT NULL,
    reopened_at   TEXT,
    reopened_by   TEXT,
    reopen_reason TEXT,
    PRIMARY KEY (org_id, year)
) WITHOUT ROWID;
CREATE TABLE inventory_versions (
    org_id     INTEGER NOT NULL,
    year       INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    reason     TEXT NOT NULL,
    line_count INTEGER NOT NULL,
    co2e_kg    REAL NOT NULL,
    inventory  TEXT NOT NULL,
    PRIMARY KEY (org_id, year, version)
) WITHOUT ROWID;
CREATE TABLE inventory_version_lines (
    org_id         INTEGER NOT NULL,
    year           INTEGER NOT NULL,
    version        INTEGER NOT NULL,
    transaction_id TEXT NOT NULL,
    day            INTEGER NOT NULL,
    supplier_id    TEXT,
    co2e_kg        REAL NOT NULL,
    category       INTEGER NOT NULL,
    method         INTEGER NOT NULL,
    data_quality   INTEGER NOT NULL,
    body           BLOB NOT NULL,
    PRIMARY KEY (org_id, year, version, transaction_id)
) WITHOUT ROWID;

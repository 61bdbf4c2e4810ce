-- Supplier resolution (issue 19).
-- Aliases: names (normalized by vcci_core::names::normalize, kind 'name') and ids (kind
-- 'id': of a supplier merged into another) that resolve to a supplier. A line that names
-- one belongs to that supplier (its supplier_link).
CREATE TABLE supplier_aliases (
    org_id      BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    alias       TEXT NOT NULL,
    supplier_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    source      TEXT NOT NULL,
    score       DOUBLE PRECISION NOT NULL,
    merge_id    BIGINT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (org_id, kind, alias)
);
CREATE INDEX supplier_aliases_supplier ON supplier_aliases (org_id, supplier_id);
-- Pairs of suppliers that may be one (a new supplier's name close to an existing one's,
-- in the grey zone of the thresholds), for a person to merge or dismiss.
CREATE TABLE supplier_matches (
    id           BIGSERIAL PRIMARY KEY,
    org_id       BIGINT NOT NULL,
    supplier_id  TEXT NOT NULL,
    candidate_id TEXT NOT NULL,
    score        DOUBLE PRECISION NOT NULL,
    status       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    decided_at   TEXT,
    decided_by   TEXT
);
CREATE UNIQUE INDEX supplier_matches_pair ON supplier_matches (org_id, supplier_id, candidate_id);
-- Merges of one supplier into another, with what is needed to undo them exactly: the
-- merged supplier's row and data as they were, what moved, and the lines that moved.
CREATE TABLE supplier_merges (
    id          BIGSERIAL PRIMARY KEY,
    org_id      BIGINT NOT NULL,
    from_id     TEXT NOT NULL,
    into_id     TEXT NOT NULL,
    archived    TEXT NOT NULL,
    lines       BIGINT NOT NULL,
    merged_at   TEXT NOT NULL,
    merged_by   TEXT NOT NULL,
    unmerged_at TEXT,
    unmerged_by TEXT
);
CREATE INDEX supplier_merges_org ON supplier_merges (org_id, id);
CREATE TABLE supplier_merge_lines (
    merge_id       BIGINT NOT NULL,
    transaction_id TEXT NOT NULL,
    PRIMARY KEY (merge_id, transaction_id)
);

-- The audit log: every change of an organization's data, one entry per change, appended in
-- the change's own transaction. Each entry's hash chains it to the one before (per
-- organization, seq 1, 2, ...): hash = SHA-256 of the previous hash and the entry's fields
-- (see audit/mod.rs), so an edited, deleted or reordered entry breaks the chain.
-- Lines a change wrote are summarized by per-line digests (25 bytes each: kind, the id's
-- FNV-1a hash, the content hash before and after); `lines_digest` is the SHA-256 of them.
-- A direct write keeps them in `digests`; an import keeps them in audit_line_digests, one
-- row per committed transaction of its writers, sealed by one entry when the import ends.
CREATE TABLE audit_log (
    org_id       INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    key_id       INTEGER,
    role         TEXT NOT NULL,
    request_id   TEXT,
    action       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    detail       TEXT NOT NULL,
    lines        INTEGER NOT NULL,
    lines_digest BLOB,
    digests      BLOB,
    prev_hash    BLOB NOT NULL,
    hash         BLOB NOT NULL,
    PRIMARY KEY (org_id, seq)
);
CREATE INDEX audit_log_action ON audit_log (org_id, action, seq);
-- The last entry of each organization's chain (appends serialize on this row); a chain
-- cut short at its end is told by it.
CREATE TABLE audit_heads (
    org_id INTEGER PRIMARY KEY,
    seq    INTEGER NOT NULL,
    hash   BLOB NOT NULL
);
CREATE TABLE audit_line_digests (
    id        INTEGER PRIMARY KEY,
    org_id    INTEGER NOT NULL,
    import_id INTEGER NOT NULL,
    digests   BLOB NOT NULL
);
CREATE INDEX audit_line_digests_import ON audit_line_digests (org_id, import_id, id);
-- The audit entry that made each inventory version (its close or restatement): a disclosed
-- figure names the entry, and the entry's hash, that attest it.
ALTER TABLE inventory_versions ADD COLUMN audit_seq INTEGER;
ALTER TABLE inventory_versions ADD COLUMN audit_hash BLOB;

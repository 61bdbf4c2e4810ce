-- vcci schema v3 (PostgreSQL): one partition of `transactions` per organization and year.
--
-- v1 partitioned lines by year only (RANGE (day)), shared by every organization. v3
-- partitions them by RANGE (org_id, day): a partition holds one organization's lines of one
-- year (`transactions_o{org}_y{year}`, created as lines arrive). Queries always name their
-- organization, so they are pruned to its partitions, and a date range to its years; the
-- list orders are still served by each partition's indexes through an ordered Append.
--
-- Why: an organization's first large import can then build its partitions apart — COPY into
-- plain tables, sorted index builds, ATTACH PARTITION — instead of inserting each line into
-- three B-trees shared with every other organization's lines. Measured (1,000,000 lines,
-- 2 cores): the three indexes cost 8.7–8.9 s of CPU inserted line by line and 2.9–3.5 s
-- built after the rows (BENCHMARKS.md). See `pg::BulkLoad`.
--
-- Existing lines are moved: this file renames the old table and creates the new one with
-- the same columns and indexes; then `pg::move_to_org_partitions` (db.rs runs it for this
-- version) makes the partition of each (organization, year) that has lines and copies them
-- across, a hundred partitions per transaction (all in one would take a lock per table and
-- index: ~1,500 partitions exhaust the lock table of a server with default settings), and
-- drops the old table. A restart part way resumes where it stopped: an (organization, year)
-- whose partition exists was moved in a committed transaction.
ALTER TABLE transactions RENAME TO transactions_v1;
ALTER INDEX transactions_pkey RENAME TO transactions_v1_pkey;
ALTER INDEX transactions_supplier RENAME TO transactions_v1_supplier;
ALTER INDEX transactions_category RENAME TO transactions_v1_category;

CREATE TABLE transactions (
    org_id         BIGINT NOT NULL,
    transaction_id TEXT COLLATE "C" NOT NULL,
    day            INTEGER NOT NULL,
    supplier_id    TEXT COLLATE "C",
    co2e_kg        DOUBLE PRECISION NOT NULL,
    co2e_mg        BIGINT NOT NULL,
    spend_usd      DOUBLE PRECISION,
    spend_musd     BIGINT NOT NULL,
    category       SMALLINT NOT NULL,
    method         SMALLINT NOT NULL,
    data_quality   SMALLINT NOT NULL,
    -- Every other field of the line and of its audit trail, encoded by codec.rs.
    body           BYTEA NOT NULL,
    PRIMARY KEY (org_id, day, transaction_id)
) PARTITION BY RANGE (org_id, day);

CREATE INDEX transactions_supplier ON transactions (org_id, supplier_id, day, transaction_id);
CREATE INDEX transactions_category ON transactions (org_id, category, day, transaction_id);

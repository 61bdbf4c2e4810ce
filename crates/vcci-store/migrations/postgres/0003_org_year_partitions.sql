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
-- Existing lines are moved: the old table is renamed, the new one created with the same
-- columns and indexes, a partition made for each (organization, year) that has lines, and
-- the lines copied across.
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

DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT DISTINCT org_id, day / 10000 AS y FROM transactions_v1 ORDER BY 1, 2 LOOP
        EXECUTE format(
            'CREATE TABLE transactions_o%s_y%s PARTITION OF transactions FOR VALUES FROM (%s, %s) TO (%s, %s)',
            r.org_id, r.y, r.org_id, r.y * 10000, r.org_id, (r.y + 1) * 10000);
    END LOOP;
END $$;

INSERT INTO transactions SELECT * FROM transactions_v1;
DROP TABLE transactions_v1;

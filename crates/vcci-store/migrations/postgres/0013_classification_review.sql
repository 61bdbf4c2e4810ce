-- The review loop of classification (issue 19).
-- `review` is 1 on a line whose result rests on a classification flagged for review: the
-- queue, by spend, is the partial index below (on every partition; a first load builds the
-- same on its tables before attaching them). Lines stored before this migration are
-- flagged from their bodies by the first process that opens the store
-- (`Db::finish_migrations`, the `review_flags` row).
ALTER TABLE transactions ADD COLUMN review SMALLINT NOT NULL DEFAULT 0;
CREATE INDEX transactions_review ON transactions (org_id, spend_usd DESC, transaction_id)
    WHERE review = 1;
INSERT INTO maintenance (name) VALUES ('review_flags') ON CONFLICT DO NOTHING;
-- A person's review of an input (its description, supplier and ledger account, normalized:
-- `input_hash` is `Features::hash64`): lines with the same input get the label. The input's
-- fields are kept to train the organization model again.
CREATE TABLE classification_reviews (
    org_id          BIGINT NOT NULL,
    input_hash      BIGINT NOT NULL,
    naics           BIGINT NOT NULL,
    category        BIGINT NOT NULL,
    capex           BIGINT NOT NULL,
    verdict         TEXT NOT NULL,
    transaction_id  TEXT NOT NULL,
    reviewed_by     TEXT NOT NULL,
    reviewed_at     TEXT NOT NULL,
    previous        TEXT,
    description     TEXT,
    supplier_id     TEXT,
    supplier_name   TEXT,
    gl_account      TEXT,
    gl_account_name TEXT,
    PRIMARY KEY (org_id, input_hash)
);

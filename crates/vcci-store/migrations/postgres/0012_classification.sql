-- Line classification (vcci_core::classify): an organization's rules, and its learned state.
-- A rule gives lines matching its pattern a NAICS code, category and capital flag; kind is
-- gl_account, supplier or keyword. `generation` changes with every rule or model change, so
-- cached answers of an older generation are never served.
CREATE TABLE classification_rules (
    id         BIGSERIAL PRIMARY KEY,
    org_id     BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    pattern    TEXT NOT NULL,
    naics      BIGINT NOT NULL,
    category   BIGINT NOT NULL,
    capex      BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE UNIQUE INDEX classification_rules_key ON classification_rules (org_id, kind, pattern);
CREATE TABLE classification_state (
    org_id      BIGINT PRIMARY KEY,
    generation  BIGINT NOT NULL,
    review_below DOUBLE PRECISION NOT NULL,
    examples    BIGINT NOT NULL,
    trained_at  TEXT,
    model       TEXT
);

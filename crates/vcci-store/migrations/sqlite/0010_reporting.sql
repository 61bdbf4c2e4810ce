-- Year over year: an organization's base year and recalculation significance threshold,
-- intensity denominators per year (revenue, headcount), and reduction targets (categories
-- as a comma list; empty: all).
CREATE TABLE reporting_settings (
    org_id                 INTEGER PRIMARY KEY,
    base_year              INTEGER,
    significance_threshold REAL NOT NULL,
    updated_at             TEXT NOT NULL
);
CREATE TABLE denominators (
    org_id INTEGER NOT NULL,
    name   TEXT NOT NULL,
    year   INTEGER NOT NULL,
    value  REAL NOT NULL,
    unit   TEXT NOT NULL,
    PRIMARY KEY (org_id, name, year)
) WITHOUT ROWID;
CREATE TABLE targets (
    id            INTEGER PRIMARY KEY,
    org_id        INTEGER NOT NULL,
    name          TEXT NOT NULL,
    categories    TEXT NOT NULL,
    base_year     INTEGER NOT NULL,
    target_year   INTEGER NOT NULL,
    reduction_pct REAL NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX targets_org ON targets (org_id, id);

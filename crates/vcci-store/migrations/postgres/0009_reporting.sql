-- Year over year: an organization's base year and recalculation significance threshold,
-- intensity denominators per year (revenue, headcount), and reduction targets (categories
-- as a comma list; empty: all).
CREATE TABLE reporting_settings (
    org_id                 BIGINT PRIMARY KEY,
    base_year              BIGINT,
    significance_threshold DOUBLE PRECISION NOT NULL,
    updated_at             TEXT NOT NULL
);
CREATE TABLE denominators (
    org_id BIGINT NOT NULL,
    name   TEXT COLLATE "C" NOT NULL,
    year   BIGINT NOT NULL,
    value  DOUBLE PRECISION NOT NULL,
    unit   TEXT NOT NULL,
    PRIMARY KEY (org_id, name, year)
);
CREATE TABLE targets (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id        BIGINT NOT NULL,
    name          TEXT NOT NULL,
    categories    TEXT NOT NULL,
    base_year     BIGINT NOT NULL,
    target_year   BIGINT NOT NULL,
    reduction_pct DOUBLE PRECISION NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX targets_org ON targets (org_id, id);

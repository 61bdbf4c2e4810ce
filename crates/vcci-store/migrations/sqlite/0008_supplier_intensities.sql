-- A supplier's intensity is a history: one value per year, each with its boundary
-- ('scope_1_2', 'scope_1_2_3_upstream', 'cradle_to_gate'), whether the supplier stated that
-- boundary, whether it was verified, and its source. year 0 is the undated value (given
-- without a year: per USD of each line's own year). The single intensity a supplier had
-- before moves here as what every file gave then: cradle-to-gate, not stated, not verified.
CREATE TABLE supplier_intensities (
    org_id          INTEGER NOT NULL,
    supplier_id     TEXT NOT NULL,
    year            INTEGER NOT NULL,
    kg_per_usd      REAL NOT NULL,
    boundary        TEXT NOT NULL,
    boundary_stated INTEGER NOT NULL,
    verified        INTEGER NOT NULL,
    source          TEXT,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (org_id, supplier_id, year)
) WITHOUT ROWID;
INSERT INTO supplier_intensities (org_id, supplier_id, year, kg_per_usd, boundary,
    boundary_stated, verified, source, updated_at)
SELECT org_id, supplier_id, COALESCE(intensity_year, 0), intensity_kg_per_usd, 'cradle_to_gate',
    0, 0, intensity_source, updated_at
FROM suppliers WHERE intensity_kg_per_usd IS NOT NULL;
ALTER TABLE suppliers DROP COLUMN intensity_kg_per_usd;
ALTER TABLE suppliers DROP COLUMN intensity_year;
ALTER TABLE suppliers DROP COLUMN intensity_source;

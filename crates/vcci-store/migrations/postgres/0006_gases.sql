-- The gas split of the category read models (kg CO2e as mg: CO2, CH4, N2O, other gases, the
-- radiative-forcing uplift of flights, what the factor set does not split) and biogenic CO2
-- (outside the scopes, not in co2e_mg). The gases of stored lines come from their bodies and
-- factors: the `maintenance` row below has them summed in by the first process that opens
-- the store after this migration (`Db::finish_migrations`).
ALTER TABLE summary_daily ADD COLUMN co2_mg BIGINT NOT NULL DEFAULT 0;
ALTER TABLE summary_daily ADD COLUMN ch4_mg BIGINT NOT NULL DEFAULT 0;
ALTER TABLE summary_daily ADD COLUMN n2o_mg BIGINT NOT NULL DEFAULT 0;
ALTER TABLE summary_daily ADD COLUMN other_gases_mg BIGINT NOT NULL DEFAULT 0;
ALTER TABLE summary_daily ADD COLUMN rf_mg BIGINT NOT NULL DEFAULT 0;
ALTER TABLE summary_daily ADD COLUMN unspecified_gas_mg BIGINT NOT NULL DEFAULT 0;
ALTER TABLE summary_daily ADD COLUMN biogenic_co2_mg BIGINT NOT NULL DEFAULT 0;
ALTER TABLE summary_monthly ADD COLUMN co2_mg BIGINT NOT NULL DEFAULT 0;
ALTER TABLE summary_monthly ADD COLUMN ch4_mg BIGINT NOT NULL DEFAULT 0;
ALTER TABLE summary_monthly ADD COLUMN n2o_mg BIGINT NOT NULL DEFAULT 0;
ALTER TABLE summary_monthly ADD COLUMN other_gases_mg BIGINT NOT NULL DEFAULT 0;
ALTER TABLE summary_monthly ADD COLUMN rf_mg BIGINT NOT NULL DEFAULT 0;
ALTER TABLE summary_monthly ADD COLUMN unspecified_gas_mg BIGINT NOT NULL DEFAULT 0;
ALTER TABLE summary_monthly ADD COLUMN biogenic_co2_mg BIGINT NOT NULL DEFAULT 0;

-- Work a migration leaves to the binary (it needs the factor sets): done once, then deleted.
CREATE TABLE maintenance (name TEXT PRIMARY KEY);
INSERT INTO maintenance (name) VALUES ('read_model_extras');

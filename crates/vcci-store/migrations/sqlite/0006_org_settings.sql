-- An organization's calculation settings beyond the EPA release:
-- - default_currency: a line without a currency is in it (recorded as the
--   `currency_assumed` fallback); USD for organizations made before it existed;
-- - flights_with_rf: flights with radiative forcing (1, DESNZ's recommendation) or without.
ALTER TABLE organizations ADD COLUMN default_currency TEXT NOT NULL DEFAULT 'USD';
ALTER TABLE organizations ADD COLUMN flights_with_rf INTEGER NOT NULL DEFAULT 1;

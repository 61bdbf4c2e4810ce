-- An organization's calculation settings beyond the EPA release:
-- - default_currency: a line without a currency is in it (recorded as the
--   `currency_assumed` fallback); USD for organizations made before it existed;
-- - flights_with_rf: flights with radiative forcing (1, DESNZ's recommendation) or without;
-- - settings_version: bumped by every change of the settings. API nodes keep an
--   organization's settings with its cached keys; they drop those when the sum changes.
ALTER TABLE organizations ADD COLUMN default_currency TEXT NOT NULL DEFAULT 'USD';
ALTER TABLE organizations ADD COLUMN flights_with_rf INTEGER NOT NULL DEFAULT 1;
ALTER TABLE organizations ADD COLUMN settings_version INTEGER NOT NULL DEFAULT 0;

-- Energy and fuel inputs (lines whose factor is Scope 1 or 2) count only their upstream
-- emissions (category 3) in Scope 3; their own Scope 1 and Scope 2 emissions are recorded
-- apart, per line in the body and summed here, never in co2e_mg. Lines stored before this
-- version booked such factors in full: `vcci calculate` recalculates them.
ALTER TABLE summary_daily ADD COLUMN scope1_mg INTEGER NOT NULL DEFAULT 0;
ALTER TABLE summary_daily ADD COLUMN scope2_mg INTEGER NOT NULL DEFAULT 0;
ALTER TABLE summary_monthly ADD COLUMN scope1_mg INTEGER NOT NULL DEFAULT 0;
ALTER TABLE summary_monthly ADD COLUMN scope2_mg INTEGER NOT NULL DEFAULT 0;

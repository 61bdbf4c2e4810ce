-- Read model: summary_daily rolled up by month (yyyymm). Organization-wide reports over whole
-- months read this (608 rows instead of 13,192 for the demo); partial months at a
-- range's edges still come from summary_daily. Updated in the same transaction as the lines.
CREATE TABLE summary_monthly (
    org_id       INTEGER NOT NULL,
    month        INTEGER NOT NULL,
    category     INTEGER NOT NULL,
    method       INTEGER NOT NULL,
    data_quality INTEGER NOT NULL,
    co2e_mg      INTEGER NOT NULL,
    spend_musd   INTEGER NOT NULL,
    line_count   INTEGER NOT NULL,
    PRIMARY KEY (org_id, month, category, method, data_quality)
) WITHOUT ROWID;

INSERT INTO summary_monthly (org_id, month, category, method, data_quality, co2e_mg, spend_musd, line_count)
SELECT org_id, day / 100, category, method, data_quality, SUM(co2e_mg), SUM(spend_musd), SUM(line_count)
FROM summary_daily GROUP BY org_id, day / 100, category, method, data_quality;

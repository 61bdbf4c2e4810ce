//! Load generator, scenarios and SLO checks. Not built yet: see the metrics/loadtest issue.

-- Sources whose rejected records rose: at least the minimum rejected in the last 24 hours, and more than twice
-- their daily average of the 7 days before. One row per such source, with both counts.
-- Run daily by the rejected-records check (infrastructure/alerting.tf), which fails naming each row.
-- Placeholders, filled in by alerting.tf: the dataset, and the minimum (var.rejected_records_alert_minimum: a few
-- rejects a day are normal).
WITH counts AS (
  SELECT
    source,
    COUNTIF(rejected_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)) AS last_day,
    COUNTIF(rejected_at < TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)) / 7 AS daily_before
  FROM `${dataset}.rejected_records`
  WHERE rejected_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 8 DAY)
  GROUP BY source
)
SELECT source, last_day, daily_before
FROM counts
WHERE last_day >= ${minimum} AND last_day > 2 * daily_before

-- Stale sources and streams: a scheduled source with no successful run within its limit (twice its schedule's
-- longest gap, config/schedules.yaml's freshness), stream NULL; and each stream of it that ran within the limit
-- and never succeeded (failed, abandoned, skipped, cancelled or partial every time), one row each.
-- Run hourly by the stale-streams check (infrastructure/alerting.tf), which fails naming each row.
-- Placeholders, filled in by alerting.tf: the dataset, and the limits (one SELECT '<source>' AS source, <seconds>
-- AS stale_after_seconds per scheduled source, joined by UNION ALL). No limit is longer than a week, so only eight
-- days of etl_runs are read.
WITH limits AS (
  ${limits}
),
recent AS (
  SELECT l.source, r.stream, r.status
  FROM limits AS l
  JOIN `${dataset}.etl_runs` AS r
    ON r.source = l.source
   AND TIMESTAMP_DIFF(CURRENT_TIMESTAMP(), r.started_at, SECOND) <= l.stale_after_seconds
  WHERE r.started_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 8 DAY)
)
SELECT l.source, CAST(NULL AS STRING) AS stream
FROM limits AS l
WHERE NOT EXISTS (SELECT 1 FROM recent AS r WHERE r.source = l.source AND r.status = 'success')
UNION ALL
SELECT source, stream
FROM recent
WHERE stream IS NOT NULL
GROUP BY source, stream
HAVING COUNTIF(status = 'success') = 0

-- When the last successful resolution of each value type started (NULL: never). Rows written and CRM records
-- changed since then are this run's scope (01_scope_written.sql, 01_scope.sql); a run of entity_type `all`
-- (incremental or full) counts for both types.
-- Parameters: @source (STRING).
SELECT MAX(IF(stream IN ('all', 'email'), started_at, NULL)) AS email_since,
       MAX(IF(stream IN ('all', 'phone'), started_at, NULL)) AS phone_since
FROM ${dataset}.etl_runs
WHERE source = @source AND status = 'success'

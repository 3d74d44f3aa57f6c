-- The days of ${target} that hold rows 05_apply.sql may change (rows never examined, and every row of a
-- re-resolved value): the UPDATE is bounded to those partitions, so BigQuery scans and bills only them.
-- Parameters: none.
SELECT DISTINCT DATE(t.${partition_column}) AS day
FROM ${dataset}.${target} AS t
JOIN ${work}._er_resolution_${run} AS r ON r.value_type = '${value_type}' AND t.${value_column} = r.value
WHERE t.matched_at IS NULL OR r.all_rows

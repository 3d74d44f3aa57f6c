-- The days of ${target} that hold rows 05_apply.sql changes (rows never examined, and rows of re-resolved
-- values whose outcome changed: the same test as 05_apply.sql's): the UPDATE is bounded to those partitions,
-- so BigQuery scans and bills only them, and runs not at all when there are none.
-- Parameters: none.
SELECT DISTINCT DATE(t.${partition_column}) AS day
FROM ${dataset}.${target} AS t
JOIN ${work}._er_resolution_${run} AS r ON r.value_type = '${value_type}' AND t.${value_column} = r.value
WHERE t.${prefix}matched_at IS NULL OR (r.all_rows AND NOT (
  t.${prefix}sf_contact_id IS NOT DISTINCT FROM r.sf_contact_id AND t.${prefix}sf_lead_id IS NOT DISTINCT FROM r.sf_lead_id
  AND t.${prefix}sf_account_id IS NOT DISTINCT FROM r.sf_account_id AND t.${prefix}match_method IS NOT DISTINCT FROM r.match_method))

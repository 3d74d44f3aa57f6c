-- What this run decided: values by type, decision and method.
SELECT value_type, decision, match_method, COUNT(*) AS value_count
FROM ${work}._er_resolution_${run}
GROUP BY value_type, decision, match_method
ORDER BY value_type, decision, match_method

-- Ambiguous values and suggestions go to entity_match_candidates for review, one row per candidate.
-- A reviewed candidate keeps its status (approved/rejected); the rest is refreshed.
-- Parameters: @run_id (STRING), @now (TIMESTAMP).
MERGE INTO ${dataset}.entity_match_candidates AS target
USING (
  SELECT
    IF(c.value_type = 'email', 'gmail_participants', 'dialpad_calls') AS source_table,
    c.value_type, c.value, c.candidate_type, c.entity_id AS candidate_id,
    ANY_VALUE(c.method) AS match_method, MAX(c.confidence) AS match_confidence,
    IF(ANY_VALUE(r.decision) = 'suggested', 'suggestion', 'ambiguous') AS reason
  FROM ${work}._er_candidates_${run} AS c
  JOIN ${work}._er_resolution_${run} AS r USING (value_type, value)
  WHERE r.decision IN ('suggested', 'ambiguous', 'ambiguous_account_linked')
  GROUP BY source_table, c.value_type, c.value, c.candidate_type, c.entity_id
) AS source
ON target.source_table = source.source_table AND target.value_type = source.value_type
   AND target.value = source.value AND target.candidate_type = source.candidate_type
   AND target.candidate_id = source.candidate_id
WHEN MATCHED THEN UPDATE SET
  match_method = source.match_method, match_confidence = source.match_confidence, reason = source.reason,
  run_id = @run_id, updated_at = @now
WHEN NOT MATCHED THEN INSERT
  (source_table, value_type, value, candidate_type, candidate_id, match_method, match_confidence, reason, status,
   run_id, created_at, updated_at)
VALUES
  (source.source_table, source.value_type, source.value, source.candidate_type, source.candidate_id,
   source.match_method, source.match_confidence, source.reason, 'open', @run_id, @now, @now)

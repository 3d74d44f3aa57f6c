-- Marks the reviewed candidate in entity_match_candidates (the decision itself lives in manual_mappings).
-- Parameters: @value_type, @value, @candidate_id, @decision ('approved'|'rejected'), @now.
UPDATE ${dataset}.entity_match_candidates
SET status = @decision, updated_at = @now
WHERE value_type = @value_type AND value = @value AND candidate_id = @candidate_id

-- A reviewer's decision on one candidate of entity_match_candidates, kept as a manual_mappings row so
-- it survives every later run (approved: always linked; rejected: never linked to that record).
-- Run it in the BigQuery console with the parameters set, or: python -m scripts.run_local review ...
-- Parameters: @value_type ('email'|'phone'), @value, @candidate_type ('contact'|'lead'|'account'),
--             @candidate_id, @decision ('approved'|'rejected'), @reviewer, @note, @now.
MERGE INTO ${dataset}.manual_mappings AS target
USING (
  SELECT
    CONCAT(@value_type, ':', @value, ':', @candidate_id) AS mapping_id, @value_type AS value_type, @value AS value,
    IF(@candidate_type = 'contact', @candidate_id, NULL) AS sf_contact_id,
    IF(@candidate_type = 'lead', @candidate_id, NULL) AS sf_lead_id,
    IF(@candidate_type = 'account', @candidate_id, NULL) AS sf_account_id,
    @decision AS decision, @reviewer AS created_by, @note AS note
) AS source
ON target.mapping_id = source.mapping_id
WHEN MATCHED THEN UPDATE SET decision = source.decision, is_active = TRUE, created_by = source.created_by,
  note = source.note, created_at = @now
WHEN NOT MATCHED THEN INSERT
  (mapping_id, value_type, value, sf_contact_id, sf_lead_id, sf_account_id, decision, is_active, created_by, note, created_at)
VALUES
  (source.mapping_id, source.value_type, source.value, source.sf_contact_id, source.sf_lead_id, source.sf_account_id,
   source.decision, TRUE, source.created_by, source.note, @now)

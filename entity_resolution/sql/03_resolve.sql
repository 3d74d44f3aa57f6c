-- One decision per value in _er_scope, from its decisive candidates (02_candidates.sql):
-- one distinct entity: linked when its confidence >= @auto_link, suggested when >= @suggest;
-- several: ambiguous, never linked, except that an account they all share is linked
-- (decision ambiguous_account_linked); no candidate: unmatched.
-- Parameters: @auto_link, @suggest (FLOAT64).
CREATE OR REPLACE TABLE ${dataset}._er_resolution AS
WITH
decided AS (
  SELECT value_type, value,
         COUNT(DISTINCT entity_id) AS candidate_count,
         COUNT(DISTINCT account_id) AS account_count,
         COUNTIF(account_id IS NULL) AS without_account,
         ANY_VALUE(method) AS method, MAX(confidence) AS confidence,
         ANY_VALUE(contact_id) AS contact_id, ANY_VALUE(lead_id) AS lead_id, ANY_VALUE(account_id) AS account_id
  FROM ${dataset}._er_candidates GROUP BY value_type, value
)
SELECT
  s.value_type, s.value, s.all_rows,
  CASE
    WHEN d.value IS NULL THEN 'unmatched'
    WHEN d.candidate_count = 1 AND d.confidence >= @auto_link THEN 'linked'
    WHEN d.candidate_count = 1 AND d.confidence >= @suggest THEN 'suggested'
    WHEN d.candidate_count = 1 THEN 'unmatched'
    WHEN d.account_count = 1 AND d.without_account = 0 AND d.confidence >= @auto_link THEN 'ambiguous_account_linked'
    ELSE 'ambiguous'
  END AS decision,
  d.candidate_count,
  IF(d.candidate_count = 1 AND d.confidence >= @auto_link, d.contact_id, NULL) AS sf_contact_id,
  IF(d.candidate_count = 1 AND d.confidence >= @auto_link, d.lead_id, NULL) AS sf_lead_id,
  IF(d.confidence >= @auto_link AND (d.candidate_count = 1 OR (d.account_count = 1 AND d.without_account = 0)),
     d.account_id, NULL) AS sf_account_id,
  IF(d.confidence >= @auto_link AND (d.candidate_count = 1 OR (d.account_count = 1 AND d.without_account = 0)),
     d.method, NULL) AS match_method,
  IF(d.confidence >= @auto_link AND (d.candidate_count = 1 OR (d.account_count = 1 AND d.without_account = 0)),
     d.confidence, NULL) AS match_confidence
FROM ${dataset}._er_scope AS s
LEFT JOIN decided AS d USING (value_type, value)

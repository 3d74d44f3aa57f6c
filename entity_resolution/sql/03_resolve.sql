-- One decision per value in _er_scope, from its decisive candidates (02_candidates.sql):
-- one distinct entity: linked when its confidence >= @auto_link, suggested when >= @suggest;
-- several: ambiguous, never linked, except that an account they all share is linked
-- (decision ambiguous_account_linked); no candidate: unmatched. Addresses at our own domains are
-- `internal` (match_method 'internal', no Salesforce ids).
-- Parameters: @auto_link, @suggest (FLOAT64), @internal_domains (ARRAY<STRING>).
CREATE OR REPLACE TABLE ${work}._er_resolution_${run} AS
WITH
decided AS (
  SELECT value_type, value,
         -- MIN = MAX instead of COUNT(DISTINCT): the same answer (one entity or several), far cheaper
         MIN(entity_id) = MAX(entity_id) AS single,
         MIN(account_id) = MAX(account_id) AND COUNTIF(account_id IS NULL) = 0 AS shared_account,
         ANY_VALUE(method) AS method, MAX(confidence) AS confidence,
         MIN(contact_id) AS contact_id, MIN(lead_id) AS lead_id, MIN(account_id) AS account_id
  FROM ${work}._er_candidates_${run} GROUP BY value_type, value
)
SELECT
  s.value_type, s.value, s.all_rows,
  CASE
    WHEN s.value_type = 'email' AND s.domain IN UNNEST(@internal_domains) THEN 'internal'
    WHEN d.value IS NULL THEN 'unmatched'
    WHEN d.single AND d.confidence >= @auto_link THEN 'linked'
    WHEN d.single AND d.confidence >= @suggest THEN 'suggested'
    WHEN d.single THEN 'unmatched'
    WHEN d.shared_account AND d.confidence >= @auto_link THEN 'ambiguous_account_linked'
    ELSE 'ambiguous'
  END AS decision,
  IF(d.single AND d.confidence >= @auto_link, d.contact_id, NULL) AS sf_contact_id,
  IF(d.single AND d.confidence >= @auto_link, d.lead_id, NULL) AS sf_lead_id,
  IF(d.confidence >= @auto_link AND (d.single OR d.shared_account), d.account_id, NULL) AS sf_account_id,
  IF(s.value_type = 'email' AND s.domain IN UNNEST(@internal_domains), 'internal',
     IF(d.confidence >= @auto_link AND (d.single OR d.shared_account), d.method, NULL)) AS match_method,
  IF(d.confidence >= @auto_link AND (d.single OR d.shared_account), d.confidence, NULL) AS match_confidence
FROM ${work}._er_scope_${run} AS s
LEFT JOIN decided AS d USING (value_type, value)

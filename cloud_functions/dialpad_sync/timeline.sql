-- Dialpad's rows of v_activity_timeline (bigquery/views/v_activity_timeline.sql is generated from these files:
-- `make schemas`): one per call, the external party as the person.
SELECT
  c.call_id AS activity_id, 'dialpad' AS source, 'call' AS channel, 'call' AS activity_type,
  c.direction, c.started_at AS occurred_at, c.started_at AS recorded_at,
  COALESCE(c.external_number_e164, c.external_number) AS person_address,
  IF(c.direction = 'inbound', 'caller', 'called') AS person_role,
  c.sf_contact_id, c.sf_lead_id, c.sf_account_id, c.match_method,
  CONCAT(COALESCE(c.direction, 'call'), ', ', CAST(DIV(COALESCE(c.duration_ms, 0), 1000) AS STRING), ' s') AS subject,
  COALESCE(c.target_email, c.target_name) AS our_party
FROM ${dataset}.dialpad_calls AS c

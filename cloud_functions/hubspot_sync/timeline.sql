-- HubSpot's rows of v_activity_timeline (bigquery/views/v_activity_timeline.sql is generated from these files:
-- `make schemas`): one per sequence enrollment.
SELECT
  e.enrollment_id AS activity_id, 'hubspot' AS source, 'sequence' AS channel, 'enrollment' AS activity_type,
  'outbound' AS direction, e.enrolled_at AS occurred_at, e.enrolled_at AS recorded_at,
  COALESCE(e.email, e.to_email) AS person_address,
  'enrolled' AS person_role, e.sf_contact_id, e.sf_lead_id, e.sf_account_id, e.match_method,
  e.sequence_name AS subject, COALESCE(e.enrolled_by_email, e.enrolled_by) AS our_party
FROM ${dataset}.hubspot_sequence_enrollments AS e

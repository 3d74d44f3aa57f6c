-- Zoom's rows of v_activity_timeline (bigquery/views/v_activity_timeline.sql is generated from these files:
-- `make schemas`): one per meeting and person, the host left out.
SELECT
  p.meeting_id AS activity_id, p.source, 'meeting' AS channel, 'video_meeting' AS activity_type,
  CAST(NULL AS STRING) AS direction, p.started_at AS occurred_at, p.started_at AS recorded_at,
  COALESCE(p.email, p.phone_e164, p.display_name) AS person_address, p.role AS person_role,
  p.sf_contact_id, p.sf_lead_id, p.sf_account_id, p.match_method, m.topic AS subject, m.host_email AS our_party
FROM ${dataset}.meeting_participants AS p
-- started_at in the join: a meeting and its participants share it, so a filter on it prunes both tables.
JOIN ${dataset}.meetings AS m ON m.source = p.source AND m.meeting_id = p.meeting_id AND m.started_at = p.started_at
WHERE p.source = 'zoom' AND COALESCE(p.match_method, '') != 'internal' AND p.email IS DISTINCT FROM m.host_email

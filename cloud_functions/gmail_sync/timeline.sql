-- Gmail's rows of v_activity_timeline (bigquery/views/v_activity_timeline.sql is generated from these files:
-- `make schemas`): one per message and person, our own addresses left out.
SELECT
  COALESCE(m.rfc822_message_id, p.message_id) AS activity_id, 'gmail' AS source, 'email' AS channel,
  'message' AS activity_type,
  IF(p.role IN ('from', 'sender', 'reply_to'), 'inbound', 'outbound') AS direction,
  p.sent_at AS occurred_at, p.sent_at AS recorded_at, p.email AS person_address, p.role AS person_role,
  p.sf_contact_id, p.sf_lead_id, p.sf_account_id, p.match_method, m.subject, p.mailbox AS our_party
FROM ${dataset}.gmail_participants AS p
JOIN ${dataset}.gmail_messages AS m
  ON m.mailbox = p.mailbox AND m.message_id = p.message_id AND m.sent_at = p.sent_at
WHERE NOT COALESCE(m.is_deleted, FALSE) AND p.email != p.mailbox AND COALESCE(p.match_method, '') != 'internal'
-- One row per message and person: the sender role first, then the first mailbox. sent_at is in the window's
-- partition so that a filter on it still prunes (a message has one Date header in every mailbox).
QUALIFY ROW_NUMBER() OVER (
  PARTITION BY COALESCE(m.rfc822_message_id, p.message_id), p.email, p.sent_at
  ORDER BY IF(p.role IN ('from', 'sender', 'reply_to'), 0, 1), p.mailbox, p.role) = 1

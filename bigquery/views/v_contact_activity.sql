-- One timeline of emails, calls and video meetings per Salesforce contact, lead and account (matched rows only).
-- occurred_at is the partition column of mail, calls and meetings as it is: a filter on it prunes their partitions.
CREATE OR REPLACE VIEW ${dataset}.v_contact_activity (
  activity_type OPTIONS(description="email, call or meeting."),
  occurred_at OPTIONS(description="When the message was sent, or the call or meeting started."),
  sf_contact_id OPTIONS(description="Matched Salesforce Contact id."),
  sf_lead_id OPTIONS(description="Matched Salesforce Lead id."),
  sf_account_id OPTIONS(description="Matched Salesforce Account id."),
  our_party OPTIONS(description="Our mailbox, the Dialpad target's email or name, or the meeting's host."),
  their_role OPTIONS(description="The address's role in the message (from, to, cc, ...), the call's direction, or their role in the meeting."),
  their_address OPTIONS(description="Their email address or E.164 number."),
  summary OPTIONS(description="Message subject, call direction and talk time, or the meeting's topic and source."),
  source_id OPTIONS(description="Gmail message id, Dialpad call id, or meeting id (Zoom UUID, Meet conference record)."),
  match_method OPTIONS(description="How entity resolution matched the address or number."),
  match_confidence OPTIONS(description="Confidence of the match, 0 to 1.")
) AS
SELECT
  'email' AS activity_type,
  p.sent_at AS occurred_at,
  p.sf_contact_id, p.sf_lead_id, p.sf_account_id,
  p.mailbox AS our_party,
  p.role AS their_role,
  p.email AS their_address,
  m.subject AS summary,
  p.message_id AS source_id,
  p.match_method, p.match_confidence
FROM ${dataset}.gmail_participants AS p
-- sent_at in the join: a message and its participants share it, so a filter on occurred_at can reach both tables.
LEFT JOIN ${dataset}.gmail_messages AS m
  ON m.mailbox = p.mailbox AND m.message_id = p.message_id AND m.sent_at = p.sent_at
WHERE COALESCE(p.sf_contact_id, p.sf_lead_id, p.sf_account_id) IS NOT NULL
  AND NOT COALESCE(m.is_deleted, FALSE)
UNION ALL
SELECT
  'call' AS activity_type,
  c.started_at AS occurred_at,
  c.sf_contact_id, c.sf_lead_id, c.sf_account_id,
  COALESCE(c.target_email, c.target_name) AS our_party,
  c.direction AS their_role,
  c.external_number_e164 AS their_address,
  CONCAT(COALESCE(c.direction, 'call'), ', ', CAST(DIV(COALESCE(c.duration_ms, 0), 1000) AS STRING), ' s') AS summary,
  c.call_id AS source_id,
  c.match_method, c.match_confidence
FROM ${dataset}.dialpad_calls AS c
WHERE COALESCE(c.sf_contact_id, c.sf_lead_id, c.sf_account_id) IS NOT NULL
UNION ALL
SELECT
  'meeting' AS activity_type,
  p.started_at AS occurred_at,
  p.sf_contact_id, p.sf_lead_id, p.sf_account_id,
  m.host_email AS our_party,
  p.role AS their_role,
  COALESCE(p.email, p.phone_e164) AS their_address,
  CONCAT(COALESCE(m.topic, 'meeting'), ' (', p.source, ')') AS summary,
  p.meeting_id AS source_id,
  p.match_method, p.match_confidence
FROM ${dataset}.meeting_participants AS p
LEFT JOIN ${dataset}.meetings AS m
  ON m.source = p.source AND m.meeting_id = p.meeting_id AND m.started_at = p.started_at
WHERE COALESCE(p.sf_contact_id, p.sf_lead_id, p.sf_account_id) IS NOT NULL

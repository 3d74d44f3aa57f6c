-- The activity timeline: one row per activity and person, across Gmail messages, Dialpad calls, Zoom and Google
-- Meet meetings, Salesforce Tasks, Events and EmailMessages, and HubSpot sequence enrollments, with the Salesforce contact, lead and account
-- (ids and names) each person was matched to (entity resolution) or logged against (Salesforce's WhoId).
-- A message read from several mailboxes is one activity (its Message-ID); a person in several roles of a
-- message is one row. Our own addresses (the mailboxes, internal domains) are not people here.
-- recorded_at is each source table's partition column as it is (sent_at, started_at, Salesforce CreatedDate,
-- enrolled_at), so a filter on it reaches every table read here and BigQuery scans only those partitions; a filter
-- on occurred_at prunes mail, calls, meetings and enrollments but not Salesforce activities (an Event is created before it
-- happens, a Task often after). Each table is read once per branch, so nothing escapes the filter.
CREATE OR REPLACE VIEW ${dataset}.v_activity_timeline (
  activity_id OPTIONS(description="Id of the activity in its source: Message-ID (Gmail message id without one), call id, meeting id (Zoom UUID, Meet conference record), Salesforce Id, enrollment id."),
  source OPTIONS(description="gmail, dialpad, zoom, meet, salesforce or hubspot."),
  channel OPTIONS(description="email, call, meeting, task or sequence."),
  activity_type OPTIONS(description="message, call, video_meeting, Task, Event, EmailMessage or enrollment."),
  direction OPTIONS(description="inbound (the person reached us) or outbound (we reached them); NULL when the source does not say."),
  occurred_at OPTIONS(description="When it happened: sent, call or meeting start, ActivityDate/StartDateTime/MessageDate (else CreatedDate), enrolled."),
  recorded_at OPTIONS(description="When the source recorded it: sent, call or meeting start, Salesforce CreatedDate, enrolled. The tables' partition column: a filter on it reads only those partitions of every source."),
  person_address OPTIONS(description="The person's email address or E.164 number as the source has it (a Salesforce activity: the contact's or lead's email)."),
  person_role OPTIONS(description="How the person took part: from, to, cc, ... (mail); caller or called (calls); host, organizer, attendee or invitee (meetings); who (Salesforce WhoId); enrolled (HubSpot)."),
  sf_contact_id OPTIONS(description="Salesforce Contact of the person, NULL when none."),
  contact_name OPTIONS(description="That contact's first and last name."),
  sf_lead_id OPTIONS(description="Salesforce Lead of the person, NULL when none."),
  lead_name OPTIONS(description="That lead's first and last name."),
  sf_account_id OPTIONS(description="Salesforce Account of the activity: the match's, else the activity's AccountId, else the contact's account."),
  account_name OPTIONS(description="That account's name."),
  match_method OPTIONS(description="How the person was matched (entity resolution methods; salesforce_who for a WhoId); NULL when unmatched."),
  subject OPTIONS(description="Subject, meeting topic, sequence name, or call direction and talk time."),
  our_party OPTIONS(description="Our side: mailbox, Dialpad target, meeting host, Salesforce owner id or the HubSpot user who enrolled.")
) AS
WITH
gmail AS (
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
),
calls AS (
  SELECT
    c.call_id AS activity_id, 'dialpad' AS source, 'call' AS channel, 'call' AS activity_type,
    c.direction, c.started_at AS occurred_at, c.started_at AS recorded_at,
    COALESCE(c.external_number_e164, c.external_number) AS person_address,
    IF(c.direction = 'inbound', 'caller', 'called') AS person_role,
    c.sf_contact_id, c.sf_lead_id, c.sf_account_id, c.match_method,
    CONCAT(COALESCE(c.direction, 'call'), ', ', CAST(DIV(COALESCE(c.duration_ms, 0), 1000) AS STRING), ' s') AS subject,
    COALESCE(c.target_email, c.target_name) AS our_party
  FROM ${dataset}.dialpad_calls AS c
),
video_meetings AS (
  SELECT
    p.meeting_id AS activity_id, p.source, 'meeting' AS channel, 'video_meeting' AS activity_type,
    CAST(NULL AS STRING) AS direction, p.started_at AS occurred_at, p.started_at AS recorded_at,
    COALESCE(p.email, p.phone_e164, p.display_name) AS person_address, p.role AS person_role,
    p.sf_contact_id, p.sf_lead_id, p.sf_account_id, p.match_method, m.topic AS subject, m.host_email AS our_party
  FROM ${dataset}.meeting_participants AS p
  -- started_at in the join: a meeting and its participants share it, so a filter on it prunes both tables.
  JOIN ${dataset}.meetings AS m ON m.source = p.source AND m.meeting_id = p.meeting_id AND m.started_at = p.started_at
  WHERE COALESCE(p.match_method, '') != 'internal' AND p.email IS DISTINCT FROM m.host_email
),
contact_by_email AS (
  SELECT email, ANY_VALUE(id) AS id FROM ${dataset}.sf_contacts
  WHERE NOT is_deleted AND email IS NOT NULL GROUP BY email HAVING COUNT(*) = 1
),
salesforce AS (
  SELECT
    a.id AS activity_id, 'salesforce' AS source,
    CASE WHEN a.activity_type = 'EmailMessage' THEN 'email' WHEN a.activity_type = 'Event' THEN 'meeting'
         WHEN a.call_type IS NOT NULL THEN 'call' ELSE 'task' END AS channel,
    a.activity_type,
    CASE WHEN a.activity_type = 'EmailMessage' THEN IF(a.is_incoming, 'inbound', 'outbound')
         WHEN LOWER(a.call_type) IN ('inbound', 'outbound') THEN LOWER(a.call_type) END AS direction,
    COALESCE(a.activity_at, a.created_date) AS occurred_at, a.created_date AS recorded_at,
    ep_person AS person_address,
    CASE WHEN a.who_id IS NOT NULL THEN 'who' WHEN ep_person IS NOT NULL THEN IF(a.is_incoming, 'from', 'to') END
      AS person_role,
    COALESCE(IF(STARTS_WITH(a.who_id, '003'), a.who_id, CAST(NULL AS STRING)), ce.id) AS sf_contact_id,
    IF(STARTS_WITH(a.who_id, '00Q'), a.who_id, CAST(NULL AS STRING)) AS sf_lead_id,
    COALESCE(a.account_id, IF(STARTS_WITH(a.what_id, '001'), a.what_id, CAST(NULL AS STRING))) AS sf_account_id,
    CASE WHEN a.who_id IS NOT NULL THEN 'salesforce_who' WHEN ce.id IS NOT NULL THEN 'email_exact' END AS match_method,
    a.subject, a.owner_id AS our_party
  FROM ${dataset}.sf_activities AS a
  -- An EmailMessage names no WhoId: its people are the other side's addresses (the sender of an incoming one,
  -- the recipients of an outgoing one, each once), linked to the one live contact with that email. Taken from
  -- the row itself, so sf_activities is read once and a filter on recorded_at prunes all of it.
  LEFT JOIN UNNEST(CASE
    WHEN a.activity_type != 'EmailMessage' THEN ARRAY<STRING>[]
    WHEN a.is_incoming THEN IF(a.from_email IS NULL, ARRAY<STRING>[], [a.from_email])
    ELSE ARRAY(SELECT DISTINCT email FROM UNNEST(a.to_emails) AS email)
  END) AS ep_person
  LEFT JOIN contact_by_email AS ce ON ce.email = ep_person
  WHERE NOT a.is_deleted
),
enrollments AS (
  SELECT
    e.enrollment_id AS activity_id, 'hubspot' AS source, 'sequence' AS channel, 'enrollment' AS activity_type,
    'outbound' AS direction, e.enrolled_at AS occurred_at, e.enrolled_at AS recorded_at,
    COALESCE(e.email, e.to_email) AS person_address,
    'enrolled' AS person_role, e.sf_contact_id, e.sf_lead_id, e.sf_account_id, e.match_method,
    e.sequence_name AS subject, COALESCE(e.enrolled_by_email, e.enrolled_by) AS our_party
  FROM ${dataset}.hubspot_sequence_enrollments AS e
),
activities AS (
  SELECT * FROM gmail
  UNION ALL SELECT * FROM calls
  UNION ALL SELECT * FROM video_meetings
  UNION ALL SELECT * FROM salesforce
  UNION ALL SELECT * FROM enrollments
)
SELECT
  t.activity_id, t.source, t.channel, t.activity_type, t.direction, t.occurred_at, t.recorded_at,
  COALESCE(t.person_address, c.email, l.email) AS person_address, t.person_role,
  t.sf_contact_id, NULLIF(TRIM(CONCAT(COALESCE(c.first_name, ''), ' ', COALESCE(c.last_name, ''))), '') AS contact_name,
  t.sf_lead_id, NULLIF(TRIM(CONCAT(COALESCE(l.first_name, ''), ' ', COALESCE(l.last_name, ''))), '') AS lead_name,
  COALESCE(t.sf_account_id, c.account_id) AS sf_account_id, acc.name AS account_name,
  t.match_method, t.subject, t.our_party
FROM activities AS t
LEFT JOIN ${dataset}.sf_contacts AS c ON c.id = t.sf_contact_id
LEFT JOIN ${dataset}.sf_leads AS l ON l.id = t.sf_lead_id
LEFT JOIN ${dataset}.sf_accounts AS acc ON acc.id = COALESCE(t.sf_account_id, c.account_id)

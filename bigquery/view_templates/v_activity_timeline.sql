-- The activity timeline: one row per activity and person, across every source that declares its rows (each
-- source's timeline.sql), with the Salesforce contact, lead and account (ids and names) each person was matched
-- to (entity resolution) or logged against (Salesforce's WhoId). Sources: ${source_list}.
-- A message read from several mailboxes is one activity (its Message-ID); a person in several roles of a
-- message is one row. Our own addresses (the mailboxes, internal domains) are not people here.
-- recorded_at is each source table's partition column as it is (sent_at, started_at, Salesforce CreatedDate,
-- enrolled_at), so a filter on it reaches every table read here and BigQuery scans only those partitions; a filter
-- on occurred_at prunes mail, calls, meetings and enrollments but not Salesforce activities (an Event is created before it
-- happens, a Task often after). Each table is read once per branch, so nothing escapes the filter.
CREATE OR REPLACE VIEW ${dataset}.v_activity_timeline (
  activity_id OPTIONS(description="Id of the activity in its source: Message-ID (Gmail message id without one), call id, meeting id (Zoom UUID, Meet conference record), Salesforce Id, enrollment id."),
  source OPTIONS(description="The source: ${source_list}."),
  channel OPTIONS(description="email, call, meeting, task or sequence."),
  activity_type OPTIONS(description="message, call, video_meeting, Task, Event, EmailMessage or enrollment."),
  direction OPTIONS(description="inbound (the person reached us) or outbound (we reached them); NULL when the source does not say."),
  occurred_at OPTIONS(description="When it happened: sent, call start, ActivityDate/StartDateTime/MessageDate (else CreatedDate), enrolled."),
  recorded_at OPTIONS(description="When the source recorded it: sent, call start, Salesforce CreatedDate, enrolled. The tables' partition column: a filter on it reads only those partitions of every source."),
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
${source_activities}activities AS (
  ${source_union}
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

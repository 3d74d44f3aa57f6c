-- Salesforce's rows of v_activity_timeline (bigquery/views/v_activity_timeline.sql is generated from these files:
-- `make schemas`): Tasks, Events and EmailMessages, the person by WhoId or (an EmailMessage) by address.
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
-- The one live contact with that email.
LEFT JOIN (
  SELECT email, ANY_VALUE(id) AS id FROM ${dataset}.sf_contacts
  WHERE NOT is_deleted AND email IS NOT NULL GROUP BY email HAVING COUNT(*) = 1
) AS ce ON ce.email = ep_person
WHERE NOT a.is_deleted

-- External addresses and numbers that reach no Salesforce contact or lead, most frequent first when
-- ordered by occurrences: lead candidates. sf_account_id is set when the domain or number reached an account.
CREATE OR REPLACE VIEW ${dataset}.v_unmatched_addresses (
  value_type OPTIONS(description="email or phone."),
  value OPTIONS(description="The normalised address or E.164 number."),
  domain OPTIONS(description="Domain of the address (NULL for numbers)."),
  sf_account_id OPTIONS(description="Account the domain or number reached, when one did."),
  occurrences OPTIONS(description="Rows carrying it (participant rows or calls)."),
  messages OPTIONS(description="Distinct messages or calls."),
  mailboxes OPTIONS(description="Distinct mailboxes or Dialpad targets that saw it."),
  first_seen OPTIONS(description="First message or call."),
  last_seen OPTIONS(description="Latest message or call.")
) AS
SELECT
  'email' AS value_type, email AS value, ANY_VALUE(domain) AS domain, ANY_VALUE(sf_account_id) AS sf_account_id,
  COUNT(*) AS occurrences, COUNT(DISTINCT message_id) AS messages, COUNT(DISTINCT mailbox) AS mailboxes,
  MIN(sent_at) AS first_seen, MAX(sent_at) AS last_seen
FROM ${dataset}.gmail_participants
WHERE matched_at IS NOT NULL AND sf_contact_id IS NULL AND sf_lead_id IS NULL
  AND email != mailbox AND COALESCE(match_method, '') != 'internal'
GROUP BY email
UNION ALL
SELECT
  'phone' AS value_type, external_number_e164 AS value, CAST(NULL AS STRING) AS domain,
  ANY_VALUE(sf_account_id) AS sf_account_id, COUNT(*) AS occurrences, COUNT(DISTINCT call_id) AS messages,
  COUNT(DISTINCT target_id) AS mailboxes, MIN(started_at) AS first_seen, MAX(started_at) AS last_seen
FROM ${dataset}.dialpad_calls
WHERE matched_at IS NOT NULL AND sf_contact_id IS NULL AND sf_lead_id IS NULL AND external_number_e164 IS NOT NULL
GROUP BY external_number_e164

-- Which values (emails of gmail_participants and hubspot_sequence_enrollments, external numbers of dialpad_calls)
-- this run resolves.
-- all_rows: every row carrying the value is re-resolved (full mode, or its CRM side changed since
-- @crm_changed_since); otherwise only rows never examined (matched_at IS NULL) are.
-- At most @max_values values per run (the batch size); the rest wait for the next run.
-- Parameters: @full (BOOL), @crm_changed_since (TIMESTAMP), @do_email, @do_phone (BOOL), @max_values (INT64).
CREATE OR REPLACE TABLE ${work}._er_scope_${run} AS
WITH
changed_contacts AS (
  SELECT email, phone_e164, mobile_phone_e164, phone, mobile_phone FROM ${dataset}.sf_contacts
  WHERE ingested_at >= @crm_changed_since
),
changed_leads AS (
  SELECT email, phone_e164, mobile_phone_e164, phone, mobile_phone FROM ${dataset}.sf_leads
  WHERE ingested_at >= @crm_changed_since
),
changed_emails AS (
  SELECT email AS value FROM changed_contacts WHERE email IS NOT NULL
  UNION DISTINCT SELECT email FROM changed_leads WHERE email IS NOT NULL
  UNION DISTINCT SELECT value FROM ${dataset}.manual_mappings WHERE value_type = 'email' AND created_at >= @crm_changed_since
),
changed_gmail AS (
  SELECT CONCAT(REPLACE(REGEXP_EXTRACT(value, r'^([^+@]*)'), '.', ''), '@gmail.com') AS canonical
  FROM changed_emails WHERE ENDS_WITH(value, '@gmail.com') OR ENDS_WITH(value, '@googlemail.com')
),
changed_domains AS (
  SELECT domain FROM ${dataset}.sf_accounts WHERE ingested_at >= @crm_changed_since AND domain IS NOT NULL
),
changed_phones AS (
  SELECT phone_e164 AS value FROM changed_contacts WHERE phone_e164 IS NOT NULL
  UNION DISTINCT SELECT mobile_phone_e164 FROM changed_contacts WHERE mobile_phone_e164 IS NOT NULL
  UNION DISTINCT SELECT phone_e164 FROM changed_leads WHERE phone_e164 IS NOT NULL
  UNION DISTINCT SELECT mobile_phone_e164 FROM changed_leads WHERE mobile_phone_e164 IS NOT NULL
  UNION DISTINCT SELECT phone_e164 FROM ${dataset}.sf_accounts WHERE ingested_at >= @crm_changed_since AND phone_e164 IS NOT NULL
  UNION DISTINCT SELECT value FROM ${dataset}.manual_mappings WHERE value_type = 'phone' AND created_at >= @crm_changed_since
),
changed_last7 AS (
  SELECT RIGHT(REGEXP_REPLACE(raw, r'[^0-9]', ''), 7) AS last7
  FROM (
    SELECT phone AS raw FROM changed_contacts UNION ALL SELECT mobile_phone FROM changed_contacts
    UNION ALL SELECT phone FROM changed_leads UNION ALL SELECT mobile_phone FROM changed_leads
  )
  WHERE LENGTH(REGEXP_REPLACE(raw, r'[^0-9]', '')) >= 7
),
email_values AS (
  SELECT email AS value, ANY_VALUE(domain) AS domain, LOGICAL_OR(matched_at IS NULL) AS has_new_rows
  FROM (
    SELECT email, domain, matched_at FROM ${dataset}.gmail_participants
    UNION ALL
    SELECT email, domain, matched_at FROM ${dataset}.hubspot_sequence_enrollments WHERE email IS NOT NULL
  )
  WHERE @do_email
  GROUP BY email
),
phone_values AS (
  SELECT external_number_e164 AS value, LOGICAL_OR(matched_at IS NULL) AS has_new_rows
  FROM ${dataset}.dialpad_calls
  WHERE @do_phone AND external_number_e164 IS NOT NULL
  GROUP BY external_number_e164
),
email_flags AS (
  SELECT v.value, v.domain, v.has_new_rows,
         @full
         OR v.value IN (SELECT value FROM changed_emails)
         OR v.domain IN (SELECT domain FROM changed_domains)
         OR (v.domain IN ('gmail.com', 'googlemail.com')
             AND CONCAT(REPLACE(REGEXP_EXTRACT(v.value, r'^([^+@]*)'), '.', ''), '@gmail.com')
                 IN (SELECT canonical FROM changed_gmail)) AS all_rows
  FROM email_values AS v
),
phone_flags AS (
  SELECT v.value, CAST(NULL AS STRING) AS domain, v.has_new_rows,
         @full
         OR v.value IN (SELECT value FROM changed_phones)
         OR RIGHT(v.value, 7) IN (SELECT last7 FROM changed_last7) AS all_rows
  FROM phone_values AS v
)
SELECT * FROM (
  SELECT 'email' AS value_type, value, domain, all_rows FROM email_flags WHERE all_rows OR has_new_rows
  UNION ALL
  SELECT 'phone' AS value_type, value, domain, all_rows FROM phone_flags WHERE all_rows OR has_new_rows
)
LIMIT @max_values

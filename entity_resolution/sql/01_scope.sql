-- Which values (the columns the sources declare as matched: emails of gmail_participants and
-- hubspot_sequence_enrollments, external numbers of dialpad_calls, ...) this run resolves, and whether every row of a
-- value is re-resolved (all_rows) or only rows never examined:
-- - new rows (matched_at IS NULL) are looked for only in the partitions written since the last successful run of
--   their value type: placeholders new_email_rows and new_phone_rows (entity_resolution/match_tables.py: a SELECT per
--   matched table) bound each table's partition column by constants (from 01_scope_written.sql; TRUE when not
--   known), so BigQuery scans those partitions only;
-- - values whose CRM side changed since @crm_changed_since (every value in full mode) are looked for wherever
--   their rows are (email_rows, phone_rows), reading only the value columns, and all their rows are
--   re-resolved.
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
  SELECT ${gmail_canonical(value)} AS canonical
  FROM changed_emails WHERE SUBSTR(value, STRPOS(value, '@') + 1) IN ${gmail_domains}
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
new_emails AS (
  ${new_email_rows}
),
changed_email_rows AS (
  SELECT value, domain FROM (
  ${email_rows}
  )
  WHERE @full
     OR value IN (SELECT value FROM changed_emails)
     OR domain IN (SELECT domain FROM changed_domains)
     OR (domain IN ${gmail_domains} AND ${gmail_canonical(value)} IN (SELECT canonical FROM changed_gmail))
),
email_scope AS (
  SELECT value, ANY_VALUE(domain) AS domain, LOGICAL_OR(all_rows) AS all_rows
  FROM (
    SELECT value, domain, FALSE AS all_rows FROM new_emails
    UNION ALL
    SELECT value, domain, TRUE FROM changed_email_rows
  )
  WHERE @do_email
  GROUP BY value
),
new_phones AS (
  ${new_phone_rows}
),
changed_phone_rows AS (
  SELECT value FROM (
  ${phone_rows}
  )
  WHERE @full
     OR value IN (SELECT value FROM changed_phones)
     OR RIGHT(value, 7) IN (SELECT last7 FROM changed_last7)
),
phone_scope AS (
  SELECT value, CAST(NULL AS STRING) AS domain, LOGICAL_OR(all_rows) AS all_rows
  FROM (
    SELECT value, FALSE AS all_rows FROM new_phones
    UNION ALL
    SELECT value, TRUE FROM changed_phone_rows
  )
  WHERE @do_phone
  GROUP BY value
)
SELECT * FROM (
  SELECT 'email' AS value_type, value, domain, all_rows FROM email_scope
  UNION ALL
  SELECT 'phone' AS value_type, value, domain, all_rows FROM phone_scope
)
LIMIT @max_values

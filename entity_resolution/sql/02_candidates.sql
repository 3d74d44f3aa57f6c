-- The decisive candidates of every value in _er_scope (03_resolve.sql decides from them).
--
-- Candidates come from the methods in order of strength (level). A value is decided at the strongest
-- level that found any candidate not rejected in manual_mappings:
--   level  method             finds                                      confidence
--   1      manual             approved manual_mappings row                1.00
--   2      email_exact        Contact.email = value                       0.99
--   3      email_exact        Lead.email = value (converted -> contact)   0.95
--   2      phone_exact        Contact phone or mobile = value             0.95
--   3      phone_exact        Lead phone or mobile = value                0.90
--   4      gmail_canonical    same Gmail mailbox, dots/+tag ignored        0.90 contact, 0.85 lead (5)
--   6      role_address       info@/sales@...: the account of the people carrying it      0.85, account only
--   6      phone_exact        Account phone = value                       0.85, account only
--   7      email_domain       Account website domain (never free mail)    0.80, account only
--   8      phone_last10       same last ten digits, same country code     0.70 (suggestion)
-- Role addresses skip the person levels: they link to an account at most.
-- Parameters: @role_locals, @free_mail_extra, @free_mail_exclude, @internal_domains (ARRAY<STRING>).
CREATE OR REPLACE TABLE ${work}._er_candidates_${run} AS
WITH
scope AS (
  SELECT value_type, value, domain, LEFT(value, LENGTH(value) - LENGTH(domain) - 1) AS local_part
  FROM ${work}._er_scope_${run}
),
email_scope AS (
  SELECT value, domain,
         local_part IN UNNEST(@role_locals) AS is_role,
         IF(domain IN ('gmail.com', 'googlemail.com'),
            CONCAT(REPLACE(REGEXP_EXTRACT(local_part, r'^([^+]*)'), '.', ''), '@gmail.com'), NULL) AS gmail_canonical
  FROM scope
  -- Our own people (the mailboxes' domains) are never matched to the CRM: 03_resolve marks them internal.
  WHERE value_type = 'email' AND domain NOT IN UNNEST(@internal_domains)
),
phone_scope AS (
  SELECT value, RIGHT(value, 10) AS last10, LEFT(value, LENGTH(value) - 10) AS country_prefix
  FROM scope WHERE value_type = 'phone' AND LENGTH(value) >= 11
),
contacts AS (
  SELECT id, account_id, email, domain, phone_e164, mobile_phone_e164, phone, mobile_phone
  FROM ${dataset}.sf_contacts WHERE NOT is_deleted
),
-- A converted lead stands for the contact it became.
leads AS (
  SELECT id, email, domain, phone_e164, mobile_phone_e164, phone, mobile_phone,
         IF(is_converted AND converted_contact_id IS NOT NULL, converted_contact_id, NULL) AS contact_id,
         IF(is_converted AND converted_contact_id IS NOT NULL, NULL, id) AS lead_id,
         IF(is_converted AND converted_contact_id IS NOT NULL, converted_account_id, NULL) AS account_id
  FROM ${dataset}.sf_leads WHERE NOT is_deleted
),
accounts AS (
  SELECT id, domain, phone_e164 FROM ${dataset}.sf_accounts WHERE NOT is_deleted
),
free_mail AS (
  SELECT domain FROM ${dataset}.ref_free_email_domains WHERE domain NOT IN UNNEST(@free_mail_exclude)
  UNION DISTINCT
  SELECT domain FROM UNNEST(@free_mail_extra) AS domain
),
crm_gmail AS (
  SELECT 'contact' AS kind, id AS contact_id, CAST(NULL AS STRING) AS lead_id, account_id,
         CONCAT(REPLACE(REGEXP_EXTRACT(email, r'^([^+@]*)'), '.', ''), '@gmail.com') AS canonical
  FROM contacts WHERE domain IN ('gmail.com', 'googlemail.com')
  UNION ALL
  SELECT 'lead', contact_id, lead_id, account_id,
         CONCAT(REPLACE(REGEXP_EXTRACT(email, r'^([^+@]*)'), '.', ''), '@gmail.com')
  FROM leads WHERE domain IN ('gmail.com', 'googlemail.com')
),
crm_phones AS (
  SELECT 'contact' AS kind, id AS contact_id, CAST(NULL AS STRING) AS lead_id, account_id, phone_e164 AS e164, phone AS raw FROM contacts
  UNION ALL SELECT 'contact', id, NULL, account_id, mobile_phone_e164, mobile_phone FROM contacts
  UNION ALL SELECT 'lead', contact_id, lead_id, account_id, phone_e164, phone FROM leads
  UNION ALL SELECT 'lead', contact_id, lead_id, account_id, mobile_phone_e164, mobile_phone FROM leads
),
crm_last10 AS (
  SELECT contact_id, lead_id, account_id, RIGHT(digits, 10) AS last10,
         IF(LENGTH(digits) > 10, CONCAT('+', LEFT(digits, LENGTH(digits) - 10)), NULL) AS country_prefix
  FROM (SELECT contact_id, lead_id, account_id, e164, REGEXP_REPLACE(raw, r'[^0-9]', '') AS digits FROM crm_phones)
  WHERE LENGTH(digits) >= 10
),
candidates AS (
  SELECT value_type, value, 1 AS level, 'manual' AS method, 1.0 AS confidence,
         sf_contact_id AS contact_id, sf_lead_id AS lead_id, sf_account_id AS account_id
  FROM ${dataset}.manual_mappings JOIN scope USING (value_type, value)
  WHERE is_active AND decision = 'approved'
  UNION ALL
  SELECT 'email', s.value, 2, 'email_exact', 0.99, c.id, NULL, c.account_id
  FROM email_scope AS s JOIN contacts AS c ON c.email = s.value WHERE NOT s.is_role
  UNION ALL
  SELECT 'email', s.value, 3, 'email_exact', 0.95, l.contact_id, l.lead_id, l.account_id
  FROM email_scope AS s JOIN leads AS l ON l.email = s.value WHERE NOT s.is_role
  UNION ALL
  SELECT 'email', s.value, IF(g.kind = 'contact', 4, 5), 'gmail_canonical', IF(g.kind = 'contact', 0.90, 0.85),
         g.contact_id, g.lead_id, g.account_id
  FROM email_scope AS s JOIN crm_gmail AS g ON g.canonical = s.gmail_canonical WHERE NOT s.is_role
  UNION ALL
  SELECT 'email', s.value, 6, 'role_address', 0.85, NULL, NULL, p.account_id
  FROM email_scope AS s
  JOIN (SELECT email, account_id FROM contacts UNION ALL SELECT email, account_id FROM leads) AS p ON p.email = s.value
  WHERE s.is_role AND p.account_id IS NOT NULL
  UNION ALL
  SELECT 'email', s.value, 7, 'email_domain', 0.80, NULL, NULL, a.id
  FROM email_scope AS s JOIN accounts AS a ON a.domain = s.domain
  WHERE s.domain NOT IN (SELECT domain FROM free_mail)
  UNION ALL
  SELECT 'phone', s.value, IF(p.kind = 'contact', 2, 3), 'phone_exact', IF(p.kind = 'contact', 0.95, 0.90),
         p.contact_id, p.lead_id, p.account_id
  FROM phone_scope AS s JOIN crm_phones AS p ON p.e164 = s.value
  UNION ALL
  SELECT 'phone', s.value, 6, 'phone_exact', 0.85, NULL, NULL, a.id
  FROM phone_scope AS s JOIN accounts AS a ON a.phone_e164 = s.value
  UNION ALL
  SELECT 'phone', s.value, 8, 'phone_last10', 0.70, p.contact_id, p.lead_id, p.account_id
  FROM phone_scope AS s JOIN crm_last10 AS p ON p.last10 = s.last10
  WHERE p.country_prefix IS NULL OR p.country_prefix = s.country_prefix
),
rejected AS (
  SELECT value_type, value, COALESCE(sf_contact_id, sf_lead_id, sf_account_id) AS entity_id
  FROM ${dataset}.manual_mappings WHERE is_active AND decision = 'rejected'
),
kept AS (
  SELECT c.*, COALESCE(c.contact_id, c.lead_id, c.account_id) AS entity_id
  FROM candidates AS c
  LEFT JOIN rejected AS r
    ON r.value_type = c.value_type AND r.value = c.value AND r.entity_id = COALESCE(c.contact_id, c.lead_id, c.account_id)
  WHERE r.entity_id IS NULL AND COALESCE(c.contact_id, c.lead_id, c.account_id) IS NOT NULL
),
best_level AS (
  SELECT value_type, value, MIN(level) AS level FROM kept GROUP BY value_type, value
),
decisive AS (
  SELECT k.* FROM kept AS k JOIN best_level AS b USING (value_type, value, level)
)
SELECT value_type, value, level, method, confidence, contact_id, lead_id, account_id, entity_id,
       CASE WHEN contact_id IS NOT NULL THEN 'contact' WHEN lead_id IS NOT NULL THEN 'lead' ELSE 'account' END AS candidate_type
FROM decisive

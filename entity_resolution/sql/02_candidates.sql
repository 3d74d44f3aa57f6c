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
--   8      email_subdomain    a subdomain of an Account website domain    0.70 (suggestion), account only
--   8      phone_last10       same last ten digits of the national number, in the CRM record's own
--                             country (phone_country_code; never where the country is unknown)  0.70 (suggestion)
-- Role addresses skip the person levels: they link to an account at most. Deleted records never link,
-- directly or through a converted lead (a lead converted into a deleted contact is not a candidate).
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
         IF(domain IN ${gmail_domains}, ${gmail_canonical(value)}, NULL) AS gmail_canonical
  FROM scope
  -- Our own people (the mailboxes' domains) are never matched to the CRM: 03_resolve marks them internal.
  WHERE value_type = 'email' AND domain NOT IN UNNEST(@internal_domains)
),
phone_scope AS (
  SELECT value FROM scope WHERE value_type = 'phone'
),
-- Every split of an E.164 number into a calling code (1 to 3 digits) and the last ten digits of the rest.
phone_splits AS (
  SELECT value, LEFT(value, code_length + 1) AS country_code, RIGHT(SUBSTR(value, code_length + 2), 10) AS last10
  FROM phone_scope, UNNEST([1, 2, 3]) AS code_length
  WHERE LENGTH(value) >= code_length + 8
),
-- The parents of each distinct domain of three labels or more, one to three labels up, of two labels at least
-- (eu.acme.com -> acme.com): string cuts of distinct domains, not patterns over every address.
subdomains AS (
  SELECT domain, p1, p2, SUBSTR(p2, STRPOS(p2, '.') + 1) AS p3 FROM (
    SELECT domain, p1, SUBSTR(p1, STRPOS(p1, '.') + 1) AS p2 FROM (
      SELECT DISTINCT domain, SUBSTR(domain, STRPOS(domain, '.') + 1) AS p1 FROM email_scope WHERE domain LIKE '%.%.%'
    )
  )
),
domain_parents AS (
  SELECT domain, parent FROM subdomains, UNNEST([p1, p2, p3]) AS parent WHERE STRPOS(parent, '.') > 0
),
contacts AS (
  SELECT id, account_id, email, domain, phone_e164, mobile_phone_e164, phone, mobile_phone, phone_country_code
  FROM ${dataset}.sf_contacts WHERE NOT is_deleted
),
-- A converted lead stands for the contact it became, with that contact's account; a lead converted
-- into a contact that is deleted (or not loaded) is no candidate at all.
leads AS (
  SELECT l.id, l.email, l.domain, l.phone_e164, l.mobile_phone_e164, l.phone, l.mobile_phone, l.phone_country_code,
         c.id AS contact_id,
         IF(c.id IS NULL, l.id, NULL) AS lead_id,
         IF(c.id IS NULL, NULL, COALESCE(c.account_id, l.converted_account_id)) AS account_id
  FROM ${dataset}.sf_leads AS l
  LEFT JOIN contacts AS c ON COALESCE(l.is_converted, FALSE) AND c.id = l.converted_contact_id
  WHERE NOT l.is_deleted AND (c.id IS NOT NULL OR NOT COALESCE(l.is_converted, FALSE) OR l.converted_contact_id IS NULL)
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
         ${gmail_canonical(email)} AS canonical
  FROM contacts WHERE domain IN ${gmail_domains}
  UNION ALL
  SELECT 'lead', contact_id, lead_id, account_id,
         ${gmail_canonical(email)}
  FROM leads WHERE domain IN ${gmail_domains}
),
crm_phones AS (
  SELECT 'contact' AS kind, id AS contact_id, CAST(NULL AS STRING) AS lead_id, account_id, phone_e164 AS e164,
         phone AS raw, phone_country_code AS country_code FROM contacts
  UNION ALL SELECT 'contact', id, NULL, account_id, mobile_phone_e164, mobile_phone, phone_country_code FROM contacts
  UNION ALL SELECT 'lead', contact_id, lead_id, account_id, phone_e164, phone, phone_country_code FROM leads
  UNION ALL SELECT 'lead', contact_id, lead_id, account_id, mobile_phone_e164, mobile_phone, phone_country_code FROM leads
),
-- The national digits of a raw CRM number in its record's country: an international prefix (+ or 00)
-- must be that country's code and is dropped, else one trunk 0 is; an extension is not read.
crm_national AS (
  SELECT contact_id, lead_id, account_id, country_code,
         CASE
           WHEN STARTS_WITH(written, '+') OR STARTS_WITH(digits, '00') THEN
             IF(STARTS_WITH(REGEXP_REPLACE(digits, r'^00', ''), SUBSTR(country_code, 2)),
                SUBSTR(REGEXP_REPLACE(digits, r'^00', ''), LENGTH(country_code)), NULL)
           ELSE REGEXP_REPLACE(digits, r'^0', '')
         END AS national
  FROM (
    SELECT contact_id, lead_id, account_id, country_code, TRIM(raw) AS written,
           REGEXP_REPLACE(REGEXP_EXTRACT(raw, r'^[^a-zA-Z#;]*'), r'[^0-9]', '') AS digits
    FROM crm_phones WHERE country_code IS NOT NULL AND raw IS NOT NULL
  )
),
crm_last10 AS (
  SELECT contact_id, lead_id, account_id, country_code, RIGHT(national, 10) AS last10
  FROM crm_national WHERE LENGTH(national) >= 7
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
  SELECT 'email', s.value, 8, 'email_subdomain', 0.70, NULL, NULL, a.id
  FROM email_scope AS s JOIN domain_parents AS d ON d.domain = s.domain JOIN accounts AS a ON a.domain = d.parent
  WHERE d.parent NOT IN (SELECT domain FROM free_mail)
  UNION ALL
  SELECT 'phone', s.value, IF(p.kind = 'contact', 2, 3), 'phone_exact', IF(p.kind = 'contact', 0.95, 0.90),
         p.contact_id, p.lead_id, p.account_id
  FROM phone_scope AS s JOIN crm_phones AS p ON p.e164 = s.value
  UNION ALL
  SELECT 'phone', s.value, 6, 'phone_exact', 0.85, NULL, NULL, a.id
  FROM phone_scope AS s JOIN accounts AS a ON a.phone_e164 = s.value
  UNION ALL
  SELECT DISTINCT 'phone', s.value, 8, 'phone_last10', 0.70, p.contact_id, p.lead_id, p.account_id
  FROM phone_splits AS s JOIN crm_last10 AS p ON p.last10 = s.last10 AND p.country_code = s.country_code
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

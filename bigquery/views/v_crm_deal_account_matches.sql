-- Each imported deal's (crm_deals) candidate Salesforce accounts: the account entity resolution reached through the
-- deal contact's email or phone (contact_match), the account whose website domain is the deal's account domain
-- (domain), and accounts whose normalised name is the deal account's (name). A name alone is a suggestion for
-- review (needs_review): two companies can share one. One row per deal and account, its strongest method.
-- The name is normalised as cloud_functions/file_drop/records.py's normalized_name does (a test compares them):
-- lower case, accents folded, anything not a letter or digit a space, legal forms out, single spaces.
CREATE OR REPLACE VIEW ${dataset}.v_crm_deal_account_matches (
  deal_key OPTIONS(description="crm_deals.deal_key."),
  source_crm OPTIONS(description="The CRM of the export."),
  deal_name OPTIONS(description="The deal's name."),
  account_name OPTIONS(description="The deal's account as the export wrote it."),
  sf_account_id OPTIONS(description="Candidate Salesforce Account id."),
  sf_account_name OPTIONS(description="Its name."),
  match_method OPTIONS(description="contact_match, domain or name (the strongest that found it)."),
  match_confidence OPTIONS(description="0.95 contact_match, 0.9 domain, 0.7 name."),
  needs_review OPTIONS(description="TRUE when only the name matched: confirm before relying on it.")
) AS
WITH accounts AS (
  SELECT id, name, domain,
    TRIM(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(
      TRANSLATE(LOWER(name), 'àáâãäåāăąçćčďèéêëēėęěìíîïīįłñńňòóôõöøōőřśšşťùúûüūůűųýÿźżž',
                'aaaaaaaaacccdeeeeeeeeiiiiiilnnnoooooooorssstuuuuuuuuyyzzz'),
      r'[^a-z0-9]+', ' '),
      r'\b(s a s|s a|s l|s r l|s p a|b v|n v|inc|incorporated|llc|ltd|limited|gmbh|ag|sa|sas|sarl|srl|spa|bv|nv|plc|corp|corporation|co|company|oy|ab|as|kk|pty|pte|lp)\b', ' '),
      r' +', ' ')) AS name_normalized
  FROM ${dataset}.sf_accounts
  WHERE NOT COALESCE(is_deleted, FALSE)
),
candidates AS (
  SELECT deal_key, COALESCE(sf_account_id, phone_sf_account_id) AS sf_account_id, 'contact_match' AS match_method,
    CAST(0.95 AS FLOAT64) AS match_confidence
  FROM ${dataset}.crm_deals
  WHERE COALESCE(sf_account_id, phone_sf_account_id) IS NOT NULL
  UNION ALL
  SELECT d.deal_key, a.id, 'domain', CAST(0.9 AS FLOAT64)
  FROM ${dataset}.crm_deals AS d JOIN accounts AS a ON a.domain = d.account_domain
  UNION ALL
  SELECT d.deal_key, a.id, 'name', CAST(0.7 AS FLOAT64)
  FROM ${dataset}.crm_deals AS d JOIN accounts AS a ON a.name_normalized = d.account_name_normalized
),
strongest AS (
  SELECT deal_key, sf_account_id, MAX(match_confidence) AS match_confidence
  FROM candidates
  GROUP BY deal_key, sf_account_id
)
SELECT
  d.deal_key, d.source_crm, d.deal_name, d.account_name, s.sf_account_id, a.name AS sf_account_name,
  CASE s.match_confidence WHEN 0.95 THEN 'contact_match' WHEN 0.9 THEN 'domain' ELSE 'name' END AS match_method,
  s.match_confidence, s.match_confidence < 0.9 AS needs_review
FROM strongest AS s
JOIN ${dataset}.crm_deals AS d ON d.deal_key = s.deal_key
LEFT JOIN accounts AS a ON a.id = s.sf_account_id

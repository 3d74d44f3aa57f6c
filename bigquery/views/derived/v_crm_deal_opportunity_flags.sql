-- Imported deals that look like an existing Salesforce opportunity, flagged for review (never merged): an
-- opportunity of one of the deal's candidate accounts (v_crm_deal_account_matches), with a similar name (the same
-- numbers in it, and one normalised name holds the other or they differ in at most a fifth of their letters: "Deal
-- 7" is not "Deal 8") and a close date at most 45 days from the deal's. review_reason says why.
CREATE OR REPLACE VIEW ${dataset}.v_crm_deal_opportunity_flags (
  deal_key OPTIONS(description="crm_deals.deal_key."),
  source_crm OPTIONS(description="The CRM of the export."),
  deal_name OPTIONS(description="The imported deal's name."),
  account_name OPTIONS(description="The imported deal's account as written."),
  close_date OPTIONS(description="The imported deal's close date."),
  amount OPTIONS(description="The imported deal's amount."),
  sf_opportunity_id OPTIONS(description="The Salesforce opportunity it looks like."),
  sf_opportunity_name OPTIONS(description="Its name."),
  sf_close_date OPTIONS(description="Its close date."),
  sf_amount OPTIONS(description="Its amount."),
  sf_account_id OPTIONS(description="The account both are on."),
  account_match_method OPTIONS(description="How the deal's account was matched: contact_match, domain or name."),
  close_days_apart OPTIONS(description="Days between the two close dates."),
  review_reason OPTIONS(description="Why it was flagged.")
) AS
WITH pairs AS (
  SELECT
    m.deal_key, m.sf_account_id, m.match_method, d.source_crm, d.deal_name, d.account_name, d.close_date, d.amount,
    o.id AS sf_opportunity_id, o.name AS sf_opportunity_name, o.close_date AS sf_close_date, o.amount AS sf_amount,
    TRIM(REGEXP_REPLACE(LOWER(d.deal_name), r'[^a-z0-9]+', ' ')) AS deal_words,
    TRIM(REGEXP_REPLACE(LOWER(o.name), r'[^a-z0-9]+', ' ')) AS opportunity_words,
    ABS(DATE_DIFF(d.close_date, o.close_date, DAY)) AS close_days_apart
  FROM ${dataset}.v_crm_deal_account_matches AS m
  JOIN ${dataset}.crm_deals AS d ON d.deal_key = m.deal_key
  JOIN ${dataset}.sf_opportunities AS o ON o.account_id = m.sf_account_id
  WHERE NOT COALESCE(o.is_deleted, FALSE) AND d.close_date IS NOT NULL AND o.close_date IS NOT NULL
)
SELECT
  deal_key, source_crm, deal_name, account_name, close_date, amount, sf_opportunity_id, sf_opportunity_name,
  sf_close_date, sf_amount, sf_account_id, match_method AS account_match_method, close_days_apart,
  CONCAT('same account (', match_method, '), similar name, close dates ', CAST(close_days_apart AS STRING),
         ' days apart') AS review_reason
FROM pairs
WHERE close_days_apart <= 45
  AND REGEXP_REPLACE(deal_words, r'[^0-9]+', '') = REGEXP_REPLACE(opportunity_words, r'[^0-9]+', '')
  AND (STRPOS(deal_words, opportunity_words) > 0 OR STRPOS(opportunity_words, deal_words) > 0
       OR EDIT_DISTANCE(deal_words, opportunity_words) * 5 <= GREATEST(LENGTH(deal_words), LENGTH(opportunity_words)))

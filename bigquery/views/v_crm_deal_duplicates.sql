-- Imported deals that look like each other across exports (one deal in an acquired company's HubSpot and in a
-- subsidiary's Zoho, say), flagged for review, never merged: two deals dropped in different folders, on the same
-- normalised account name, with a similar name (the same numbers in it, and one normalised name holds the other
-- or they differ in at most a fifth of their letters) and close dates at most 45 days apart. One row per pair.
CREATE OR REPLACE VIEW ${dataset}.v_crm_deal_duplicates (
  deal_key OPTIONS(description="One deal of the pair (crm_deals.deal_key, the smaller)."),
  other_deal_key OPTIONS(description="The other deal."),
  source_crm OPTIONS(description="The first deal's CRM."),
  other_source_crm OPTIONS(description="The other deal's CRM."),
  deal_name OPTIONS(description="The first deal's name."),
  other_deal_name OPTIONS(description="The other deal's name."),
  account_name_normalized OPTIONS(description="The account both name."),
  close_days_apart OPTIONS(description="Days between their close dates."),
  review_reason OPTIONS(description="Why they were paired.")
) AS
WITH deals AS (
  SELECT deal_key, source_crm, drop_namespace, deal_name, account_name_normalized, close_date,
    TRIM(REGEXP_REPLACE(LOWER(deal_name), r'[^a-z0-9]+', ' ')) AS words
  FROM ${dataset}.crm_deals
  WHERE account_name_normalized IS NOT NULL AND close_date IS NOT NULL
)
SELECT
  a.deal_key, b.deal_key AS other_deal_key, a.source_crm, b.source_crm AS other_source_crm, a.deal_name,
  b.deal_name AS other_deal_name, a.account_name_normalized, ABS(DATE_DIFF(a.close_date, b.close_date, DAY)) AS close_days_apart,
  CONCAT('same account, similar name, close dates ', CAST(ABS(DATE_DIFF(a.close_date, b.close_date, DAY)) AS STRING),
         ' days apart, in ', a.drop_namespace, ' and ', b.drop_namespace) AS review_reason
FROM deals AS a
JOIN deals AS b
  ON a.account_name_normalized = b.account_name_normalized AND a.deal_key < b.deal_key
  AND COALESCE(a.drop_namespace, '') != COALESCE(b.drop_namespace, '')
WHERE ABS(DATE_DIFF(a.close_date, b.close_date, DAY)) <= 45
  AND REGEXP_REPLACE(a.words, r'[^0-9]+', '') = REGEXP_REPLACE(b.words, r'[^0-9]+', '')
  AND (STRPOS(a.words, b.words) > 0 OR STRPOS(b.words, a.words) > 0
       OR EDIT_DISTANCE(a.words, b.words) * 5 <= GREATEST(LENGTH(a.words), LENGTH(b.words)))

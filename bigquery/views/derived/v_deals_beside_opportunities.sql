-- Salesforce opportunities and the deals of dropped CRM exports in one shape, for pipeline reports across
-- systems: origin says which (salesforce, or the export's CRM), standard_stage puts both on one scale, and an
-- imported deal carries its Salesforce account when an automatic method found one (v_crm_deal_account_matches).
-- A deal that looks like an opportunity is in v_crm_deal_opportunity_flags: count it once when summing pipeline.
CREATE OR REPLACE VIEW ${dataset}.v_deals_beside_opportunities (
  origin OPTIONS(description="salesforce, or the CRM an imported deal came from (hubspot, zoho, ...)."),
  deal_id OPTIONS(description="Opportunity id, or crm_deals.deal_key."),
  deal_name OPTIONS(description="Name."),
  sf_account_id OPTIONS(description="Salesforce account (an imported deal's when matched by contact or domain)."),
  account_name OPTIONS(description="Account name (an imported deal's as its export wrote it)."),
  stage OPTIONS(description="Stage as its system names it."),
  standard_stage OPTIONS(description="prospecting, qualification, proposal, negotiation, closed_won, closed_lost or other."),
  amount OPTIONS(description="Amount."),
  currency OPTIONS(description="ISO code, where the export gave one (Salesforce: the org's)."),
  close_date OPTIONS(description="Close date.")
) AS
SELECT
  'salesforce' AS origin, o.id AS deal_id, o.name AS deal_name, o.account_id AS sf_account_id, a.name AS account_name,
  o.stage_name AS stage,
  CASE
    WHEN o.is_won THEN 'closed_won'
    WHEN o.is_closed THEN 'closed_lost'
    WHEN LOWER(o.stage_name) LIKE '%negotiat%' OR LOWER(o.stage_name) LIKE '%review%' THEN 'negotiation'
    WHEN LOWER(o.stage_name) LIKE '%proposal%' OR LOWER(o.stage_name) LIKE '%quote%' THEN 'proposal'
    WHEN LOWER(o.stage_name) LIKE '%prospect%' THEN 'prospecting'
    WHEN o.stage_name IS NOT NULL THEN 'qualification'
  END AS standard_stage,
  CAST(o.amount AS NUMERIC) AS amount, CAST(NULL AS STRING) AS currency, o.close_date
FROM ${dataset}.sf_opportunities AS o
LEFT JOIN ${dataset}.sf_accounts AS a ON a.id = o.account_id
WHERE NOT COALESCE(o.is_deleted, FALSE)
UNION ALL
SELECT
  d.source_crm, d.deal_key, d.deal_name, m.sf_account_id, d.account_name, d.stage, d.standard_stage, d.amount,
  d.currency, d.close_date
FROM ${dataset}.crm_deals AS d
LEFT JOIN (
  SELECT deal_key, MIN(sf_account_id) AS sf_account_id FROM ${dataset}.v_crm_deal_account_matches
  WHERE NOT needs_review GROUP BY deal_key
) AS m ON m.deal_key = d.deal_key

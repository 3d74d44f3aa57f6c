CREATE OR REPLACE VIEW `${dataset}.sf_accounts_live` AS
SELECT
  COALESCE(b.id, f.id) AS id,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',name,') > 0, f.name, b.name) AS name,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',type,') > 0, f.type, b.type) AS type,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',industry,') > 0, f.industry, b.industry) AS industry,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',website,') > 0, f.website, b.website) AS website,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',domain,') > 0, f.domain, b.domain) AS domain,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',phone,') > 0, f.phone, b.phone) AS phone,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',phone_e164,') > 0, f.phone_e164, b.phone_e164) AS phone_e164,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',billing_country,') > 0, f.billing_country, b.billing_country) AS billing_country,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',phone_country_code,') > 0, f.phone_country_code, b.phone_country_code) AS phone_country_code,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',owner_id,') > 0, f.owner_id, b.owner_id) AS owner_id,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',is_deleted,') > 0, f.is_deleted, b.is_deleted) AS is_deleted,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',created_date,') > 0, f.created_date, b.created_date) AS created_date,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',last_modified_date,') > 0, f.last_modified_date, b.last_modified_date) AS last_modified_date,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',system_modstamp,') > 0, f.system_modstamp, b.system_modstamp) AS system_modstamp,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',ingested_at,') > 0, f.ingested_at, b.ingested_at) AS ingested_at
FROM `${dataset}.sf_accounts` AS b
FULL OUTER JOIN (SELECT * EXCEPT (_rank) FROM (SELECT f.*, ROW_NUMBER() OVER (PARTITION BY f.id ORDER BY f.system_modstamp DESC, f._landed_ns DESC, f._seq DESC) AS _rank FROM `${dataset}.sf_accounts_fresh` AS f) WHERE _rank = 1) AS f ON b.id = f.id;

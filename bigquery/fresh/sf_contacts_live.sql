CREATE OR REPLACE VIEW `${dataset}.sf_contacts_live` AS
SELECT
  COALESCE(b.id, f.id) AS id,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',account_id,') > 0, f.account_id, b.account_id) AS account_id,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',first_name,') > 0, f.first_name, b.first_name) AS first_name,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',last_name,') > 0, f.last_name, b.last_name) AS last_name,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',title,') > 0, f.title, b.title) AS title,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',email_raw,') > 0, f.email_raw, b.email_raw) AS email_raw,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',email,') > 0, f.email, b.email) AS email,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',domain,') > 0, f.domain, b.domain) AS domain,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',phone,') > 0, f.phone, b.phone) AS phone,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',phone_e164,') > 0, f.phone_e164, b.phone_e164) AS phone_e164,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',phone_extension,') > 0, f.phone_extension, b.phone_extension) AS phone_extension,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',mobile_phone,') > 0, f.mobile_phone, b.mobile_phone) AS mobile_phone,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',mobile_phone_e164,') > 0, f.mobile_phone_e164, b.mobile_phone_e164) AS mobile_phone_e164,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',mailing_country,') > 0, f.mailing_country, b.mailing_country) AS mailing_country,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',phone_country_code,') > 0, f.phone_country_code, b.phone_country_code) AS phone_country_code,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',owner_id,') > 0, f.owner_id, b.owner_id) AS owner_id,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',lead_source,') > 0, f.lead_source, b.lead_source) AS lead_source,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',is_deleted,') > 0, f.is_deleted, b.is_deleted) AS is_deleted,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',created_date,') > 0, f.created_date, b.created_date) AS created_date,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',last_modified_date,') > 0, f.last_modified_date, b.last_modified_date) AS last_modified_date,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',system_modstamp,') > 0, f.system_modstamp, b.system_modstamp) AS system_modstamp,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',ingested_at,') > 0, f.ingested_at, b.ingested_at) AS ingested_at
FROM `${dataset}.sf_contacts` AS b
FULL OUTER JOIN (SELECT * EXCEPT (_rank) FROM (SELECT f.*, ROW_NUMBER() OVER (PARTITION BY f.id ORDER BY f.system_modstamp DESC, f._landed_ns DESC, f._seq DESC) AS _rank FROM `${dataset}.sf_contacts_fresh` AS f) WHERE _rank = 1) AS f ON b.id = f.id;

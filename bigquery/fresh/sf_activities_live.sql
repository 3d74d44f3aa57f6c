CREATE OR REPLACE VIEW `${dataset}.sf_activities_live` AS
SELECT
  COALESCE(b.id, f.id) AS id,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',activity_type,') > 0, f.activity_type, b.activity_type) AS activity_type,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',subject,') > 0, f.subject, b.subject) AS subject,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',who_id,') > 0, f.who_id, b.who_id) AS who_id,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',what_id,') > 0, f.what_id, b.what_id) AS what_id,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',account_id,') > 0, f.account_id, b.account_id) AS account_id,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',owner_id,') > 0, f.owner_id, b.owner_id) AS owner_id,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',status,') > 0, f.status, b.status) AS status,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',activity_at,') > 0, f.activity_at, b.activity_at) AS activity_at,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',end_at,') > 0, f.end_at, b.end_at) AS end_at,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',call_type,') > 0, f.call_type, b.call_type) AS call_type,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',call_duration_seconds,') > 0, f.call_duration_seconds, b.call_duration_seconds) AS call_duration_seconds,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',from_address,') > 0, f.from_address, b.from_address) AS from_address,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',from_email,') > 0, f.from_email, b.from_email) AS from_email,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',to_address,') > 0, f.to_address, b.to_address) AS to_address,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',to_emails,') > 0, f.to_emails, b.to_emails) AS to_emails,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',is_incoming,') > 0, f.is_incoming, b.is_incoming) AS is_incoming,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',is_deleted,') > 0, f.is_deleted, b.is_deleted) AS is_deleted,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',created_date,') > 0, f.created_date, b.created_date) AS created_date,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',last_modified_date,') > 0, f.last_modified_date, b.last_modified_date) AS last_modified_date,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',system_modstamp,') > 0, f.system_modstamp, b.system_modstamp) AS system_modstamp,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',ingested_at,') > 0, f.ingested_at, b.ingested_at) AS ingested_at
FROM `${dataset}.sf_activities` AS b
FULL OUTER JOIN (SELECT * EXCEPT (_rank) FROM (SELECT f.*, ROW_NUMBER() OVER (PARTITION BY f.id ORDER BY f.system_modstamp DESC, f._landed_ns DESC, f._seq DESC) AS _rank FROM `${dataset}.sf_activities_fresh` AS f) WHERE _rank = 1) AS f ON b.id = f.id;

CREATE OR REPLACE VIEW `${dataset}.sf_opportunities_live` AS
SELECT
  COALESCE(b.id, f.id) AS id,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',account_id,') > 0, f.account_id, b.account_id) AS account_id,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',name,') > 0, f.name, b.name) AS name,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',stage_name,') > 0, f.stage_name, b.stage_name) AS stage_name,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',amount,') > 0, f.amount, b.amount) AS amount,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',probability,') > 0, f.probability, b.probability) AS probability,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',close_date,') > 0, f.close_date, b.close_date) AS close_date,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',type,') > 0, f.type, b.type) AS type,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',is_closed,') > 0, f.is_closed, b.is_closed) AS is_closed,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',is_won,') > 0, f.is_won, b.is_won) AS is_won,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',owner_id,') > 0, f.owner_id, b.owner_id) AS owner_id,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',is_deleted,') > 0, f.is_deleted, b.is_deleted) AS is_deleted,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',created_date,') > 0, f.created_date, b.created_date) AS created_date,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',last_modified_date,') > 0, f.last_modified_date, b.last_modified_date) AS last_modified_date,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',system_modstamp,') > 0, f.system_modstamp, b.system_modstamp) AS system_modstamp,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',ingested_at,') > 0, f.ingested_at, b.ingested_at) AS ingested_at
FROM `${dataset}.sf_opportunities` AS b
FULL OUTER JOIN (SELECT * EXCEPT (_rank) FROM (SELECT f.*, ROW_NUMBER() OVER (PARTITION BY f.id ORDER BY f.system_modstamp DESC, f._landed_ns DESC, f._seq DESC) AS _rank FROM `${dataset}.sf_opportunities_fresh` AS f) WHERE _rank = 1) AS f ON b.id = f.id;

CREATE OR REPLACE VIEW `${dataset}.sf_opportunity_history_live` AS
SELECT
  COALESCE(b.id, f.id) AS id,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',opportunity_id,') > 0, f.opportunity_id, b.opportunity_id) AS opportunity_id,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',stage_name,') > 0, f.stage_name, b.stage_name) AS stage_name,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',amount,') > 0, f.amount, b.amount) AS amount,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',expected_revenue,') > 0, f.expected_revenue, b.expected_revenue) AS expected_revenue,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',close_date,') > 0, f.close_date, b.close_date) AS close_date,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',probability,') > 0, f.probability, b.probability) AS probability,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',forecast_category,') > 0, f.forecast_category, b.forecast_category) AS forecast_category,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',created_by_id,') > 0, f.created_by_id, b.created_by_id) AS created_by_id,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',created_date,') > 0, f.created_date, b.created_date) AS created_date,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',system_modstamp,') > 0, f.system_modstamp, b.system_modstamp) AS system_modstamp,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',is_deleted,') > 0, f.is_deleted, b.is_deleted) AS is_deleted,
  IF((f.id IS NOT NULL AND (b.id IS NULL OR b.system_modstamp IS NULL OR f.system_modstamp >= b.system_modstamp)) AND STRPOS(f._supplied, ',ingested_at,') > 0, f.ingested_at, b.ingested_at) AS ingested_at
FROM `${dataset}.sf_opportunity_history` AS b
FULL OUTER JOIN (SELECT * EXCEPT (_rank) FROM (SELECT f.*, ROW_NUMBER() OVER (PARTITION BY f.id ORDER BY f.system_modstamp DESC, f._landed_ns DESC, f._seq DESC) AS _rank FROM `${dataset}.sf_opportunity_history_fresh` AS f) WHERE _rank = 1) AS f ON b.id = f.id;

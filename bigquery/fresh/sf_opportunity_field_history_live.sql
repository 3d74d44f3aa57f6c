CREATE OR REPLACE VIEW `${dataset}.sf_opportunity_field_history_live` AS
SELECT
  COALESCE(b.id, f.id) AS id,
  IF((f.id IS NOT NULL) AND STRPOS(f._supplied, ',opportunity_id,') > 0, f.opportunity_id, b.opportunity_id) AS opportunity_id,
  IF((f.id IS NOT NULL) AND STRPOS(f._supplied, ',field,') > 0, f.field, b.field) AS field,
  IF((f.id IS NOT NULL) AND STRPOS(f._supplied, ',data_type,') > 0, f.data_type, b.data_type) AS data_type,
  IF((f.id IS NOT NULL) AND STRPOS(f._supplied, ',old_value,') > 0, f.old_value, b.old_value) AS old_value,
  IF((f.id IS NOT NULL) AND STRPOS(f._supplied, ',new_value,') > 0, f.new_value, b.new_value) AS new_value,
  IF((f.id IS NOT NULL) AND STRPOS(f._supplied, ',created_by_id,') > 0, f.created_by_id, b.created_by_id) AS created_by_id,
  IF((f.id IS NOT NULL) AND STRPOS(f._supplied, ',created_date,') > 0, f.created_date, b.created_date) AS created_date,
  IF((f.id IS NOT NULL) AND STRPOS(f._supplied, ',is_deleted,') > 0, f.is_deleted, b.is_deleted) AS is_deleted,
  IF((f.id IS NOT NULL) AND STRPOS(f._supplied, ',ingested_at,') > 0, f.ingested_at, b.ingested_at) AS ingested_at
FROM `${dataset}.sf_opportunity_field_history` AS b
FULL OUTER JOIN (SELECT * EXCEPT (_rank) FROM (SELECT f.*, ROW_NUMBER() OVER (PARTITION BY f.id ORDER BY f._landed_ns DESC, f._seq DESC) AS _rank FROM `${dataset}.sf_opportunity_field_history_fresh` AS f) WHERE _rank = 1) AS f ON b.id = f.id;

CREATE OR REPLACE VIEW `${dataset}.sf_custom_fields_live` AS
SELECT
  COALESCE(b.object_name, f.object_name) AS object_name,
  COALESCE(b.field_name, f.field_name) AS field_name,
  IF((f.object_name IS NOT NULL AND (b.object_name IS NULL OR b.changed_at IS NULL OR f.changed_at >= b.changed_at)) AND STRPOS(f._supplied, ',table_name,') > 0, f.table_name, b.table_name) AS table_name,
  IF((f.object_name IS NOT NULL AND (b.object_name IS NULL OR b.changed_at IS NULL OR f.changed_at >= b.changed_at)) AND STRPOS(f._supplied, ',column_name,') > 0, f.column_name, b.column_name) AS column_name,
  IF((f.object_name IS NOT NULL AND (b.object_name IS NULL OR b.changed_at IS NULL OR f.changed_at >= b.changed_at)) AND STRPOS(f._supplied, ',label,') > 0, f.label, b.label) AS label,
  IF((f.object_name IS NOT NULL AND (b.object_name IS NULL OR b.changed_at IS NULL OR f.changed_at >= b.changed_at)) AND STRPOS(f._supplied, ',salesforce_type,') > 0, f.salesforce_type, b.salesforce_type) AS salesforce_type,
  IF((f.object_name IS NOT NULL AND (b.object_name IS NULL OR b.changed_at IS NULL OR f.changed_at >= b.changed_at)) AND STRPOS(f._supplied, ',bigquery_type,') > 0, f.bigquery_type, b.bigquery_type) AS bigquery_type,
  IF((f.object_name IS NOT NULL AND (b.object_name IS NULL OR b.changed_at IS NULL OR f.changed_at >= b.changed_at)) AND STRPOS(f._supplied, ',is_formula,') > 0, f.is_formula, b.is_formula) AS is_formula,
  IF((f.object_name IS NOT NULL AND (b.object_name IS NULL OR b.changed_at IS NULL OR f.changed_at >= b.changed_at)) AND STRPOS(f._supplied, ',first_seen_at,') > 0, f.first_seen_at, b.first_seen_at) AS first_seen_at,
  IF((f.object_name IS NOT NULL AND (b.object_name IS NULL OR b.changed_at IS NULL OR f.changed_at >= b.changed_at)) AND STRPOS(f._supplied, ',changed_at,') > 0, f.changed_at, b.changed_at) AS changed_at,
  IF((f.object_name IS NOT NULL AND (b.object_name IS NULL OR b.changed_at IS NULL OR f.changed_at >= b.changed_at)) AND STRPOS(f._supplied, ',removed_at,') > 0, f.removed_at, b.removed_at) AS removed_at
FROM `${dataset}.sf_custom_fields` AS b
FULL OUTER JOIN (SELECT * EXCEPT (_rank) FROM (SELECT f.*, ROW_NUMBER() OVER (PARTITION BY f.object_name, f.field_name ORDER BY f.changed_at DESC, f._landed_ns DESC, f._seq DESC) AS _rank FROM `${dataset}.sf_custom_fields_fresh` AS f) WHERE _rank = 1) AS f ON b.object_name = f.object_name AND b.field_name = f.field_name;

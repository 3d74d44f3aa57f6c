CREATE OR REPLACE VIEW `${dataset}.hubspot_sequences_live` AS
SELECT
  COALESCE(b.sequence_id, f.sequence_id) AS sequence_id,
  IF((f.sequence_id IS NOT NULL AND (b.sequence_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',name,') > 0, f.name, b.name) AS name,
  IF((f.sequence_id IS NOT NULL AND (b.sequence_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',user_id,') > 0, f.user_id, b.user_id) AS user_id,
  IF((f.sequence_id IS NOT NULL AND (b.sequence_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',folder_id,') > 0, f.folder_id, b.folder_id) AS folder_id,
  IF((f.sequence_id IS NOT NULL AND (b.sequence_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',created_at,') > 0, f.created_at, b.created_at) AS created_at,
  IF((f.sequence_id IS NOT NULL AND (b.sequence_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',updated_at,') > 0, f.updated_at, b.updated_at) AS updated_at,
  IF((f.sequence_id IS NOT NULL AND (b.sequence_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',ingested_at,') > 0, f.ingested_at, b.ingested_at) AS ingested_at
FROM `${dataset}.hubspot_sequences` AS b
FULL OUTER JOIN (SELECT * EXCEPT (_rank) FROM (SELECT f.*, ROW_NUMBER() OVER (PARTITION BY f.sequence_id ORDER BY f.updated_at DESC, f._landed_ns DESC, f._seq DESC) AS _rank FROM `${dataset}.hubspot_sequences_fresh` AS f) WHERE _rank = 1) AS f ON b.sequence_id = f.sequence_id;

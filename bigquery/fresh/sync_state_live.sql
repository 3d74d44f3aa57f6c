CREATE OR REPLACE VIEW `${dataset}.sync_state_live` AS
SELECT
  COALESCE(b.source, f.source) AS source,
  COALESCE(b.stream, f.stream) AS stream,
  IF((f.source IS NOT NULL AND (b.source IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',watermark,') > 0, f.watermark, b.watermark) AS watermark,
  IF((f.source IS NOT NULL AND (b.source IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',run_id,') > 0, f.run_id, b.run_id) AS run_id,
  IF((f.source IS NOT NULL AND (b.source IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',updated_at,') > 0, f.updated_at, b.updated_at) AS updated_at
FROM `${dataset}.sync_state` AS b
FULL OUTER JOIN (SELECT * EXCEPT (_rank) FROM (SELECT f.*, ROW_NUMBER() OVER (PARTITION BY f.source, f.stream ORDER BY f.updated_at DESC, f._landed_ns DESC, f._seq DESC) AS _rank FROM `${dataset}.sync_state_fresh` AS f) WHERE _rank = 1) AS f ON b.source = f.source AND b.stream = f.stream;

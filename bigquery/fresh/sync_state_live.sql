CREATE OR REPLACE VIEW `${dataset}.sync_state_live` AS
SELECT
  COALESCE(b.source, f.source) AS source,
  COALESCE(b.stream, f.stream) AS stream,
  IF(f.watermark IS NOT NULL AND (b.updated_at IS NULL OR f.watermark.ver >= b.updated_at), f.watermark.v, b.watermark) AS watermark,
  IF(f.run_id IS NOT NULL AND (b.updated_at IS NULL OR f.run_id.ver >= b.updated_at), f.run_id.v, b.run_id) AS run_id,
  IF(f.updated_at IS NOT NULL AND (b.updated_at IS NULL OR f.updated_at.ver >= b.updated_at), f.updated_at.v, b.updated_at) AS updated_at
FROM `${dataset}.sync_state` AS b
FULL OUTER JOIN (SELECT * EXCEPT (_rank) FROM (SELECT f.source, f.stream, FIRST_VALUE(IF(STRPOS(f._supplied, ',watermark,') > 0, STRUCT(f.watermark AS v, f.updated_at AS ver), NULL) IGNORE NULLS) OVER (PARTITION BY f.source, f.stream ORDER BY f.updated_at DESC, f._landed_ns DESC, f._seq DESC ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS watermark, FIRST_VALUE(IF(STRPOS(f._supplied, ',run_id,') > 0, STRUCT(f.run_id AS v, f.updated_at AS ver), NULL) IGNORE NULLS) OVER (PARTITION BY f.source, f.stream ORDER BY f.updated_at DESC, f._landed_ns DESC, f._seq DESC ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS run_id, FIRST_VALUE(IF(STRPOS(f._supplied, ',updated_at,') > 0, STRUCT(f.updated_at AS v, f.updated_at AS ver), NULL) IGNORE NULLS) OVER (PARTITION BY f.source, f.stream ORDER BY f.updated_at DESC, f._landed_ns DESC, f._seq DESC ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS updated_at, ROW_NUMBER() OVER (PARTITION BY f.source, f.stream ORDER BY f.updated_at DESC, f._landed_ns DESC, f._seq DESC) AS _rank FROM `${dataset}.sync_state_fresh` AS f) WHERE _rank = 1) AS f ON b.source = f.source AND b.stream = f.stream;

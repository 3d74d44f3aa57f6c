CREATE OR REPLACE VIEW `${dataset}.push_runs_live` AS
SELECT
  COALESCE(b.run_id, f.run_id) AS run_id,
  IF((f.run_id IS NOT NULL AND (b.run_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',source,') > 0, f.source, b.source) AS source,
  IF((f.run_id IS NOT NULL AND (b.run_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',stream,') > 0, f.stream, b.stream) AS stream,
  IF((f.run_id IS NOT NULL AND (b.run_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',sync_type,') > 0, f.sync_type, b.sync_type) AS sync_type,
  IF((f.run_id IS NOT NULL AND (b.run_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',trigger,') > 0, f.trigger, b.trigger) AS trigger,
  IF((f.run_id IS NOT NULL AND (b.run_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',status,') > 0, f.status, b.status) AS status,
  IF((f.run_id IS NOT NULL AND (b.run_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',started_at,') > 0, f.started_at, b.started_at) AS started_at,
  IF((f.run_id IS NOT NULL AND (b.run_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',ended_at,') > 0, f.ended_at, b.ended_at) AS ended_at,
  IF((f.run_id IS NOT NULL AND (b.run_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',duration_seconds,') > 0, f.duration_seconds, b.duration_seconds) AS duration_seconds,
  IF((f.run_id IS NOT NULL AND (b.run_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',rows_fetched,') > 0, f.rows_fetched, b.rows_fetched) AS rows_fetched,
  IF((f.run_id IS NOT NULL AND (b.run_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',rows_loaded,') > 0, f.rows_loaded, b.rows_loaded) AS rows_loaded,
  IF((f.run_id IS NOT NULL AND (b.run_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',rows_rejected,') > 0, f.rows_rejected, b.rows_rejected) AS rows_rejected,
  IF((f.run_id IS NOT NULL AND (b.run_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',api_calls,') > 0, f.api_calls, b.api_calls) AS api_calls,
  IF((f.run_id IS NOT NULL AND (b.run_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',watermark_before,') > 0, f.watermark_before, b.watermark_before) AS watermark_before,
  IF((f.run_id IS NOT NULL AND (b.run_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',watermark_after,') > 0, f.watermark_after, b.watermark_after) AS watermark_after,
  IF((f.run_id IS NOT NULL AND (b.run_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',error_type,') > 0, f.error_type, b.error_type) AS error_type,
  IF((f.run_id IS NOT NULL AND (b.run_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',error_message,') > 0, f.error_message, b.error_message) AS error_message,
  IF((f.run_id IS NOT NULL AND (b.run_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',details,') > 0, f.details, b.details) AS details,
  IF((f.run_id IS NOT NULL AND (b.run_id IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',updated_at,') > 0, f.updated_at, b.updated_at) AS updated_at
FROM `${dataset}.push_runs` AS b
FULL OUTER JOIN (SELECT * EXCEPT (_rank) FROM (SELECT f.*, ROW_NUMBER() OVER (PARTITION BY f.run_id ORDER BY f.updated_at DESC, f._landed_ns DESC, f._seq DESC) AS _rank FROM `${dataset}.push_runs_fresh` AS f) WHERE _rank = 1) AS f ON b.run_id = f.run_id;

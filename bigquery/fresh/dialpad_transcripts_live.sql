CREATE OR REPLACE VIEW `${dataset}.dialpad_transcripts_live` AS
SELECT
  COALESCE(b.call_id, f.call_id) AS call_id,
  IF((f.call_id IS NOT NULL AND (b.call_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',started_at,') > 0, f.started_at, b.started_at) AS started_at,
  IF((f.call_id IS NOT NULL AND (b.call_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',transcript_lines,') > 0, f.transcript_lines, b.transcript_lines) AS transcript_lines,
  IF((f.call_id IS NOT NULL AND (b.call_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',transcript_moments,') > 0, f.transcript_moments, b.transcript_moments) AS transcript_moments,
  IF((f.call_id IS NOT NULL AND (b.call_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',transcript_text,') > 0, f.transcript_text, b.transcript_text) AS transcript_text,
  IF((f.call_id IS NOT NULL AND (b.call_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',ingested_at,') > 0, f.ingested_at, b.ingested_at) AS ingested_at
FROM `${dataset}.dialpad_transcripts` AS b
FULL OUTER JOIN (SELECT * EXCEPT (_rank) FROM (SELECT f.*, ROW_NUMBER() OVER (PARTITION BY f.call_id ORDER BY f.ingested_at DESC, f._landed_ns DESC, f._seq DESC) AS _rank FROM `${dataset}.dialpad_transcripts_fresh` AS f) WHERE _rank = 1) AS f ON b.call_id = f.call_id;

-- Once, on a dataset created before dialpad_transcripts existed (its dialpad_calls still has the two transcript
-- columns): copies the stored transcripts into dialpad_transcripts (which `run_local init` or Terraform creates
-- first), then drops the columns from dialpad_calls, so entity resolution's UPDATEs of the calls stop billing
-- them. Running it again copies nothing twice; after the first run it fails at the SELECT (the columns are gone),
-- changing nothing. ${dataset}: the dataset (settings DATASET). README, "Upgrading a dataset".
INSERT INTO ${dataset}.dialpad_transcripts (call_id, started_at, transcript_lines, transcript_text, ingested_at)
SELECT call_id, started_at, transcript_lines, transcript_text, ingested_at
FROM ${dataset}.dialpad_calls
WHERE transcript_text IS NOT NULL
  AND call_id NOT IN (SELECT call_id FROM ${dataset}.dialpad_transcripts);
ALTER TABLE ${dataset}.dialpad_calls DROP COLUMN IF EXISTS transcript_lines;
ALTER TABLE ${dataset}.dialpad_calls DROP COLUMN IF EXISTS transcript_text;

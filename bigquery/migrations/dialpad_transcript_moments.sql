-- Once, on a dataset whose dialpad_transcripts was written before transcript_moments existed (the column is added
-- by `run_local init` or Terraform first): the rows kept Dialpad Ai's moments among the spoken lines, in the order
-- Dialpad listed them, and in transcript_text as if someone had said them. Each row gets its spoken lines (type
-- transcript, or none) in time order, its moments (every other type) in transcript_moments, and its text rebuilt
-- from the spoken lines as the sync writes it ("name: content" a line; lines without a time last). Running it again
-- changes nothing: moments already apart stay there. It rewrites every row (one pass over the table).
-- ${dataset}: the dataset (settings DATASET). README, "Upgrading a dataset".
UPDATE ${dataset}.dialpad_transcripts
SET transcript_moments = ARRAY(
      SELECT line FROM UNNEST(ARRAY_CONCAT(IFNULL(transcript_moments, []), IFNULL(transcript_lines, []))) AS line
        WITH OFFSET AS n
      WHERE IFNULL(line.type, 'transcript') != 'transcript'
      ORDER BY line.time IS NULL, line.time, n),
    transcript_lines = ARRAY(
      SELECT line FROM UNNEST(transcript_lines) AS line WITH OFFSET AS n
      WHERE IFNULL(line.type, 'transcript') = 'transcript'
      ORDER BY line.time IS NULL, line.time, n),
    transcript_text = (
      SELECT STRING_AGG(CONCAT(IFNULL(line.name, '?'), ': ', IFNULL(line.content, '')), '\n'
                        ORDER BY line.time IS NULL, line.time, n)
      FROM UNNEST(transcript_lines) AS line WITH OFFSET AS n
      WHERE IFNULL(line.type, 'transcript') = 'transcript')
WHERE TRUE;

-- Match rate by source, method and day: rows per method and their share of the day's rows.
CREATE OR REPLACE VIEW ${dataset}.v_match_quality (
  source OPTIONS(description="gmail (participants), dialpad (calls), zoom or meet (meeting participants)."),
  day OPTIONS(description="Day the message was sent, or the call or meeting started (UTC)."),
  match_method OPTIONS(description="Entity resolution method, or unmatched, not_yet_resolved, no_valid_number (a call), no_address (a meeting participant with neither email nor number)."),
  row_count OPTIONS(description="Rows of that source, day and method."),
  share_of_day OPTIONS(description="row_count over all rows of the source that day, 0 to 1.")
) AS
WITH matched AS (
  SELECT 'gmail' AS source, DATE(sent_at) AS day, COALESCE(match_method, IF(matched_at IS NULL, 'not_yet_resolved', 'unmatched')) AS match_method
  FROM ${dataset}.gmail_participants
  UNION ALL
  SELECT 'dialpad', DATE(started_at),
         COALESCE(match_method, IF(external_number_e164 IS NULL, 'no_valid_number',
                                   IF(matched_at IS NULL, 'not_yet_resolved', 'unmatched')))
  FROM ${dataset}.dialpad_calls
  UNION ALL
  -- Meeting participants with an address or a dial-in number (a guest with neither cannot be matched).
  SELECT source, DATE(started_at),
         COALESCE(match_method, IF(email IS NULL AND phone_e164 IS NULL, 'no_address',
                                   IF(matched_at IS NULL, 'not_yet_resolved', 'unmatched')))
  FROM ${dataset}.meeting_participants
)
SELECT
  source, day, match_method, COUNT(*) AS row_count,
  COUNT(*) / SUM(COUNT(*)) OVER (PARTITION BY source, day) AS share_of_day
FROM matched
GROUP BY source, day, match_method

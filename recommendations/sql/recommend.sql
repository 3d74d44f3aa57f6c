-- The day's account recommendations: every rule that fires, per account, with its evidence and a score.
-- Rules (thresholds are settings, README "Recommendations"):
--   stalled_opportunity  an open opportunity and no touch for @stalled_days days (or never):
--                        score 0.5 + 0.5 * min(1, (days - @stalled_days) / (3 * @stalled_days)); never touched: 1.
--   new_contact_in_mail  a person (not a role address) mailing with the account's domain in @new_contact_days days,
--                        in >= @new_contact_min_messages messages, but neither a contact nor a lead:
--                        score min(1, 0.4 + 0.1 * messages).
--   dormant_burst        >= @burst_min_touches touches in the last @burst_days days after none in the
--                        @dormant_days days before: score min(1, 0.5 + 0.1 * (touches - @burst_min_touches)).
-- One row per rule, account, subject and day (recommendation_id); a rerun the same day rewrites the same rows.
-- Parameters: @now (TIMESTAMP), @stalled_days, @new_contact_days, @new_contact_min_messages, @burst_days,
-- @burst_min_touches, @dormant_days (INT64), @role_locals (ARRAY<STRING>), @model_version (STRING).
WITH
accounts AS (
  SELECT sf_account_id, account_name, last_touch_at, open_opportunities, open_pipeline_amount,
         DATE_DIFF(DATE(@now), DATE(last_touch_at), DAY) AS days_since_last_touch
  FROM ${dataset}.v_engagement_by_account
),
stalled AS (
  SELECT
    'stalled_opportunity' AS recommendation_type, sf_account_id, account_name, sf_account_id AS subject,
    IF(last_touch_at IS NULL, 1.0,
       0.5 + 0.5 * LEAST(1.0, (days_since_last_touch - @stalled_days) / (3.0 * @stalled_days))) AS score,
    CONCAT(CAST(open_opportunities AS STRING), ' open opportunit', IF(open_opportunities = 1, 'y', 'ies'),
           IF(last_touch_at IS NULL, ' and no touch ever recorded',
              CONCAT(' and no touch for ', CAST(days_since_last_touch AS STRING), ' days (last ',
                     CAST(DATE(last_touch_at) AS STRING), ')'))) AS reason,
    TO_JSON_STRING(STRUCT(open_opportunities AS open_opportunities,
                          CAST(open_pipeline_amount AS FLOAT64) AS open_pipeline_amount,
                          FORMAT_TIMESTAMP('%Y-%m-%dT%H:%M:%SZ', last_touch_at) AS last_touch_at, days_since_last_touch AS days_since_last_touch,
                          @stalled_days AS threshold_days)) AS evidence
  FROM accounts
  WHERE open_opportunities > 0 AND (last_touch_at IS NULL OR days_since_last_touch >= @stalled_days)
),
mail_people AS (
  SELECT p.email, ANY_VALUE(p.sf_account_id) AS sf_account_id, COUNT(DISTINCT p.message_id) AS messages,
         MIN(p.sent_at) AS first_seen, MAX(p.sent_at) AS last_seen
  FROM ${dataset}.gmail_participants AS p
  WHERE p.sent_at >= TIMESTAMP_SUB(@now, INTERVAL @new_contact_days DAY) AND p.sent_at <= @now
    AND p.sf_account_id IS NOT NULL AND p.sf_contact_id IS NULL AND p.sf_lead_id IS NULL
    AND p.email != p.mailbox AND COALESCE(p.match_method, '') != 'internal'
    AND SPLIT(p.email, '@')[OFFSET(0)] NOT IN UNNEST(@role_locals)
  GROUP BY p.email
),
new_contacts AS (
  SELECT
    'new_contact_in_mail' AS recommendation_type, m.sf_account_id, a.account_name, m.email AS subject,
    LEAST(1.0, 0.4 + 0.1 * m.messages) AS score,
    CONCAT(m.email, ' took part in ', CAST(m.messages AS STRING), ' messages since ', CAST(DATE(m.first_seen) AS STRING),
           ' and is not a contact or lead in Salesforce') AS reason,
    TO_JSON_STRING(STRUCT(m.email AS email, m.messages AS messages, FORMAT_TIMESTAMP('%Y-%m-%dT%H:%M:%SZ', m.first_seen) AS first_seen,
                          FORMAT_TIMESTAMP('%Y-%m-%dT%H:%M:%SZ', m.last_seen) AS last_seen, @new_contact_min_messages AS threshold_messages,
                          @new_contact_days AS window_days)) AS evidence
  FROM mail_people AS m
  JOIN accounts AS a ON a.sf_account_id = m.sf_account_id
  WHERE m.messages >= @new_contact_min_messages
),
touches AS (
  SELECT
    sf_account_id,
    COUNT(DISTINCT IF(occurred_at >= TIMESTAMP_SUB(@now, INTERVAL @burst_days DAY), activity_id, NULL)) AS recent,
    COUNT(DISTINCT IF(occurred_at < TIMESTAMP_SUB(@now, INTERVAL @burst_days DAY), activity_id, NULL)) AS before,
    MIN(IF(occurred_at >= TIMESTAMP_SUB(@now, INTERVAL @burst_days DAY), occurred_at, NULL)) AS burst_started_at
  FROM ${dataset}.v_activity_timeline
  WHERE sf_account_id IS NOT NULL AND occurred_at <= @now
    AND occurred_at >= TIMESTAMP_SUB(@now, INTERVAL @burst_days + @dormant_days DAY)
  GROUP BY sf_account_id
),
bursts AS (
  SELECT
    'dormant_burst' AS recommendation_type, t.sf_account_id, a.account_name, t.sf_account_id AS subject,
    LEAST(1.0, 0.5 + 0.1 * (t.recent - @burst_min_touches)) AS score,
    CONCAT(CAST(t.recent AS STRING), ' touches in the last ', CAST(@burst_days AS STRING), ' days after none in the ',
           CAST(@dormant_days AS STRING), ' days before') AS reason,
    TO_JSON_STRING(STRUCT(t.recent AS recent_touches, t.before AS touches_before,
                          FORMAT_TIMESTAMP('%Y-%m-%dT%H:%M:%SZ', t.burst_started_at) AS burst_started_at, @burst_days AS burst_days,
                          @dormant_days AS dormant_days, @burst_min_touches AS threshold_touches)) AS evidence
  FROM touches AS t
  JOIN accounts AS a ON a.sf_account_id = t.sf_account_id
  WHERE t.recent >= @burst_min_touches AND t.before = 0
),
fired AS (
  SELECT * FROM stalled UNION ALL SELECT * FROM new_contacts UNION ALL SELECT * FROM bursts
)
SELECT
  TO_HEX(MD5(CONCAT(recommendation_type, '|', sf_account_id, '|', subject, '|', CAST(DATE(@now) AS STRING))))
    AS recommendation_id,
  sf_account_id, account_name, recommendation_type, ROUND(score, 3) AS score, reason, evidence,
  @model_version AS model_version, 'open' AS status, @now AS generated_at
FROM fired
ORDER BY score DESC, sf_account_id, recommendation_type

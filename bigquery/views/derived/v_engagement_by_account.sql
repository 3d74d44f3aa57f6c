-- Per Salesforce account: the last touch per channel, touches in the last 30 and 90 days, open opportunities,
-- and days since the last touch (from v_activity_timeline; a touch is an activity, however many people took part).
-- Activities dated in the future (a scheduled Event) are not touches yet.
CREATE OR REPLACE VIEW ${dataset}.v_engagement_by_account (
  sf_account_id OPTIONS(description="Salesforce Account id."),
  account_name OPTIONS(description="Account name."),
  last_touch_at OPTIONS(description="Latest activity with the account on any channel; NULL when none."),
  days_since_last_touch OPTIONS(description="Whole days from last_touch_at to today (UTC); NULL when never touched."),
  last_email_at OPTIONS(description="Latest email (Gmail or Salesforce EmailMessage)."),
  last_call_at OPTIONS(description="Latest call (Dialpad or a Salesforce call Task)."),
  last_meeting_at OPTIONS(description="Latest meeting: Zoom, Google Meet or a Salesforce Event."),
  last_task_at OPTIONS(description="Latest Salesforce Task that is not a call."),
  last_sequence_at OPTIONS(description="Latest HubSpot sequence enrollment."),
  touches_30d OPTIONS(description="Activities in the last 30 days."),
  touches_90d OPTIONS(description="Activities in the last 90 days."),
  open_opportunities OPTIONS(description="Opportunities neither closed nor deleted."),
  open_pipeline_amount OPTIONS(description="Sum of the open opportunities' Amount.")
) AS
WITH
touches AS (
  SELECT sf_account_id, channel, activity_id, MAX(occurred_at) AS occurred_at
  FROM ${dataset}.v_activity_timeline
  WHERE sf_account_id IS NOT NULL AND occurred_at <= CURRENT_TIMESTAMP()
  GROUP BY sf_account_id, channel, activity_id
),
by_account AS (
  SELECT
    sf_account_id, MAX(occurred_at) AS last_touch_at,
    MAX(IF(channel = 'email', occurred_at, NULL)) AS last_email_at,
    MAX(IF(channel = 'call', occurred_at, NULL)) AS last_call_at,
    MAX(IF(channel = 'meeting', occurred_at, NULL)) AS last_meeting_at,
    MAX(IF(channel = 'task', occurred_at, NULL)) AS last_task_at,
    MAX(IF(channel = 'sequence', occurred_at, NULL)) AS last_sequence_at,
    COUNTIF(occurred_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 30 DAY)) AS touches_30d,
    COUNTIF(occurred_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 90 DAY)) AS touches_90d
  FROM touches
  GROUP BY sf_account_id
),
open_opportunities AS (
  SELECT account_id, COUNT(*) AS open_opportunities, SUM(amount) AS open_pipeline_amount
  FROM ${dataset}.sf_opportunities
  WHERE NOT is_deleted AND NOT COALESCE(is_closed, FALSE) AND account_id IS NOT NULL
  GROUP BY account_id
)
SELECT
  a.id AS sf_account_id, a.name AS account_name, t.last_touch_at,
  DATE_DIFF(CURRENT_DATE(), DATE(t.last_touch_at), DAY) AS days_since_last_touch,
  t.last_email_at, t.last_call_at, t.last_meeting_at, t.last_task_at, t.last_sequence_at,
  COALESCE(t.touches_30d, 0) AS touches_30d, COALESCE(t.touches_90d, 0) AS touches_90d,
  COALESCE(o.open_opportunities, 0) AS open_opportunities, o.open_pipeline_amount
FROM ${dataset}.sf_accounts AS a
LEFT JOIN by_account AS t ON t.sf_account_id = a.id
LEFT JOIN open_opportunities AS o ON o.account_id = a.id
WHERE NOT a.is_deleted

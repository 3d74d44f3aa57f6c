-- Each opportunity's stage path from sf_opportunity_history: one row per stage it was in, in order, with when it
-- entered and left, how long it stayed, and its amount and close date as it left (the last change in the stage).
-- Consecutive history rows of one stage are one visit (Salesforce writes a row when the amount or close date
-- changes too); a stage entered again later is a visit of its own. Deleted opportunities are left out.
CREATE OR REPLACE VIEW ${dataset}.v_opportunity_stage_path (
  opportunity_id OPTIONS(description="Salesforce Opportunity id."),
  opportunity_name OPTIONS(description="Opportunity name (NULL when the opportunity is not synced yet)."),
  account_id OPTIONS(description="The opportunity's Account id."),
  stage_number OPTIONS(description="1 for the stage the opportunity was created in, then 2, 3, ... in time order."),
  stage_name OPTIONS(description="StageName of this visit."),
  entered_at OPTIONS(description="When the opportunity entered the stage (its first history row in it)."),
  left_at OPTIONS(description="When it entered the next stage; NULL for the stage it is in now."),
  next_stage_name OPTIONS(description="The stage it went to; NULL for the stage it is in now."),
  days_in_stage OPTIONS(description="From entered_at to left_at, in days (fractional); NULL for the current stage."),
  amount OPTIONS(description="Amount as the stage ended (now, for the current stage)."),
  close_date OPTIONS(description="CloseDate as the stage ended (now, for the current stage)."),
  probability OPTIONS(description="Probability (percent) as the stage ended."),
  changes_in_stage OPTIONS(description="History rows in the visit: 1, plus 1 per change of amount, close date or probability."),
  is_current_stage OPTIONS(description="The stage the opportunity is in now (its last visit).")
) AS
WITH history AS (
  SELECT
    opportunity_id, id, created_date, stage_name, amount, close_date, probability,
    IF(stage_name IS DISTINCT FROM LAG(stage_name) OVER (PARTITION BY opportunity_id ORDER BY created_date, id),
       1, 0) AS starts_visit
  FROM ${dataset}.sf_opportunity_history
  WHERE NOT COALESCE(is_deleted, FALSE)
),
numbered AS (
  SELECT *, SUM(starts_visit) OVER (PARTITION BY opportunity_id ORDER BY created_date, id) AS stage_number
  FROM history
),
visits AS (
  SELECT
    opportunity_id, stage_number, stage_name, amount, close_date, probability,
    MIN(created_date) OVER (PARTITION BY opportunity_id, stage_number) AS entered_at,
    COUNT(*) OVER (PARTITION BY opportunity_id, stage_number) AS changes_in_stage,
    ROW_NUMBER() OVER (PARTITION BY opportunity_id, stage_number ORDER BY created_date DESC, id DESC) AS from_last
  FROM numbered
),
path AS (
  SELECT
    *,
    LEAD(entered_at) OVER (PARTITION BY opportunity_id ORDER BY stage_number) AS left_at,
    LEAD(stage_name) OVER (PARTITION BY opportunity_id ORDER BY stage_number) AS next_stage_name
  FROM visits
  WHERE from_last = 1
)
SELECT
  p.opportunity_id, o.name AS opportunity_name, o.account_id, p.stage_number, p.stage_name, p.entered_at, p.left_at,
  p.next_stage_name, TIMESTAMP_DIFF(p.left_at, p.entered_at, SECOND) / 86400 AS days_in_stage, p.amount, p.close_date,
  p.probability, p.changes_in_stage, p.left_at IS NULL AS is_current_stage
FROM path AS p
LEFT JOIN ${dataset}.sf_opportunities AS o ON o.id = p.opportunity_id
WHERE NOT COALESCE(o.is_deleted, FALSE)

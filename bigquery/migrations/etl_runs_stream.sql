-- Once, on a dataset created before etl_runs named its stream column `stream` (it was `object_type`, though it held
-- mailboxes and Dialpad's calls as well as Salesforce objects): renames the column, keeping every row. Running it
-- again fails at the RENAME (the column is gone), changing nothing. ${dataset}: the dataset (settings DATASET).
-- README, "Upgrading a dataset".
ALTER TABLE ${dataset}.etl_runs RENAME COLUMN object_type TO stream;

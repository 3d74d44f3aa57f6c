CREATE OR REPLACE VIEW `${dataset}.gmail_sync_state_live` AS
SELECT
  COALESCE(b.mailbox, f.mailbox) AS mailbox,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',history_id,') > 0, f.history_id, b.history_id) AS history_id,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',page_token,') > 0, f.page_token, b.page_token) AS page_token,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',sync_mode,') > 0, f.sync_mode, b.sync_mode) AS sync_mode,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',last_full_sync_at,') > 0, f.last_full_sync_at, b.last_full_sync_at) AS last_full_sync_at,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',watch_expires_at,') > 0, f.watch_expires_at, b.watch_expires_at) AS watch_expires_at,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',watch_renewed_at,') > 0, f.watch_renewed_at, b.watch_renewed_at) AS watch_renewed_at,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.updated_at IS NULL OR f.updated_at >= b.updated_at)) AND STRPOS(f._supplied, ',updated_at,') > 0, f.updated_at, b.updated_at) AS updated_at
FROM `${dataset}.gmail_sync_state` AS b
FULL OUTER JOIN (SELECT * EXCEPT (_rank) FROM (SELECT f.*, ROW_NUMBER() OVER (PARTITION BY f.mailbox ORDER BY f.updated_at DESC, f._landed_ns DESC, f._seq DESC) AS _rank FROM `${dataset}.gmail_sync_state_fresh` AS f) WHERE _rank = 1) AS f ON b.mailbox = f.mailbox;

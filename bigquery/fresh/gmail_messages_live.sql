CREATE OR REPLACE VIEW `${dataset}.gmail_messages_live` AS
SELECT
  COALESCE(b.mailbox, f.mailbox) AS mailbox,
  COALESCE(b.message_id, f.message_id) AS message_id,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',thread_id,') > 0, f.thread_id, b.thread_id) AS thread_id,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',rfc822_message_id,') > 0, f.rfc822_message_id, b.rfc822_message_id) AS rfc822_message_id,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',subject,') > 0, f.subject, b.subject) AS subject,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',from_email,') > 0, f.from_email, b.from_email) AS from_email,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',sent_at,') > 0, f.sent_at, b.sent_at) AS sent_at,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',internal_date,') > 0, f.internal_date, b.internal_date) AS internal_date,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',label_ids,') > 0, f.label_ids, b.label_ids) AS label_ids,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',snippet,') > 0, f.snippet, b.snippet) AS snippet,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',body_text,') > 0, f.body_text, b.body_text) AS body_text,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',body_html,') > 0, f.body_html, b.body_html) AS body_html,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',body_truncated,') > 0, f.body_truncated, b.body_truncated) AS body_truncated,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',attachments,') > 0, f.attachments, b.attachments) AS attachments,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',size_bytes,') > 0, f.size_bytes, b.size_bytes) AS size_bytes,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',history_id,') > 0, f.history_id, b.history_id) AS history_id,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',is_deleted,') > 0, f.is_deleted, b.is_deleted) AS is_deleted,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',ingest_source,') > 0, f.ingest_source, b.ingest_source) AS ingest_source,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',ingested_at,') > 0, f.ingested_at, b.ingested_at) AS ingested_at
FROM `${dataset}.gmail_messages` AS b
FULL OUTER JOIN (SELECT * EXCEPT (_rank) FROM (SELECT f.*, ROW_NUMBER() OVER (PARTITION BY f.mailbox, f.message_id ORDER BY f.ingested_at DESC, f._landed_ns DESC, f._seq DESC) AS _rank FROM `${dataset}.gmail_messages_fresh` AS f) WHERE _rank = 1) AS f ON b.mailbox = f.mailbox AND b.message_id = f.message_id;

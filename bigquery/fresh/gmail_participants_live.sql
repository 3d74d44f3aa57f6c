CREATE OR REPLACE VIEW `${dataset}.gmail_participants_live` AS
SELECT
  COALESCE(b.mailbox, f.mailbox) AS mailbox,
  COALESCE(b.message_id, f.message_id) AS message_id,
  COALESCE(b.role, f.role) AS role,
  COALESCE(b.email, f.email) AS email,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',display_name,') > 0, f.display_name, b.display_name) AS display_name,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',raw_address,') > 0, f.raw_address, b.raw_address) AS raw_address,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',domain,') > 0, f.domain, b.domain) AS domain,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',sent_at,') > 0, f.sent_at, b.sent_at) AS sent_at,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',sf_contact_id,') > 0, f.sf_contact_id, b.sf_contact_id) AS sf_contact_id,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',sf_lead_id,') > 0, f.sf_lead_id, b.sf_lead_id) AS sf_lead_id,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',sf_account_id,') > 0, f.sf_account_id, b.sf_account_id) AS sf_account_id,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',match_method,') > 0, f.match_method, b.match_method) AS match_method,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',match_confidence,') > 0, f.match_confidence, b.match_confidence) AS match_confidence,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',matched_at,') > 0, f.matched_at, b.matched_at) AS matched_at,
  IF((f.mailbox IS NOT NULL AND (b.mailbox IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',ingested_at,') > 0, f.ingested_at, b.ingested_at) AS ingested_at
FROM `${dataset}.gmail_participants` AS b
FULL OUTER JOIN (SELECT * EXCEPT (_rank) FROM (SELECT f.*, ROW_NUMBER() OVER (PARTITION BY f.mailbox, f.message_id, f.role, f.email ORDER BY f.ingested_at DESC, f._landed_ns DESC, f._seq DESC) AS _rank FROM `${dataset}.gmail_participants_fresh` AS f) WHERE _rank = 1) AS f ON b.mailbox = f.mailbox AND b.message_id = f.message_id AND b.role = f.role AND b.email = f.email;

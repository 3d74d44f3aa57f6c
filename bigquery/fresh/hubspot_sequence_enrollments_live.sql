CREATE OR REPLACE VIEW `${dataset}.hubspot_sequence_enrollments_live` AS
SELECT
  COALESCE(b.enrollment_id, f.enrollment_id) AS enrollment_id,
  IF((f.enrollment_id IS NOT NULL AND (b.enrollment_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',contact_id,') > 0, f.contact_id, b.contact_id) AS contact_id,
  IF((f.enrollment_id IS NOT NULL AND (b.enrollment_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',sequence_id,') > 0, f.sequence_id, b.sequence_id) AS sequence_id,
  IF((f.enrollment_id IS NOT NULL AND (b.enrollment_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',sequence_name,') > 0, f.sequence_name, b.sequence_name) AS sequence_name,
  IF((f.enrollment_id IS NOT NULL AND (b.enrollment_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',to_email,') > 0, f.to_email, b.to_email) AS to_email,
  IF((f.enrollment_id IS NOT NULL AND (b.enrollment_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',email,') > 0, f.email, b.email) AS email,
  IF((f.enrollment_id IS NOT NULL AND (b.enrollment_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',domain,') > 0, f.domain, b.domain) AS domain,
  IF((f.enrollment_id IS NOT NULL AND (b.enrollment_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',enrolled_at,') > 0, f.enrolled_at, b.enrolled_at) AS enrolled_at,
  IF((f.enrollment_id IS NOT NULL AND (b.enrollment_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',enrolled_by,') > 0, f.enrolled_by, b.enrolled_by) AS enrolled_by,
  IF((f.enrollment_id IS NOT NULL AND (b.enrollment_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',enrolled_by_email,') > 0, f.enrolled_by_email, b.enrolled_by_email) AS enrolled_by_email,
  IF((f.enrollment_id IS NOT NULL AND (b.enrollment_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',updated_at,') > 0, f.updated_at, b.updated_at) AS updated_at,
  IF((f.enrollment_id IS NOT NULL AND (b.enrollment_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',sf_contact_id,') > 0, f.sf_contact_id, b.sf_contact_id) AS sf_contact_id,
  IF((f.enrollment_id IS NOT NULL AND (b.enrollment_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',sf_lead_id,') > 0, f.sf_lead_id, b.sf_lead_id) AS sf_lead_id,
  IF((f.enrollment_id IS NOT NULL AND (b.enrollment_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',sf_account_id,') > 0, f.sf_account_id, b.sf_account_id) AS sf_account_id,
  IF((f.enrollment_id IS NOT NULL AND (b.enrollment_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',match_method,') > 0, f.match_method, b.match_method) AS match_method,
  IF((f.enrollment_id IS NOT NULL AND (b.enrollment_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',match_confidence,') > 0, f.match_confidence, b.match_confidence) AS match_confidence,
  IF((f.enrollment_id IS NOT NULL AND (b.enrollment_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',matched_at,') > 0, f.matched_at, b.matched_at) AS matched_at,
  IF((f.enrollment_id IS NOT NULL AND (b.enrollment_id IS NULL OR b.ingested_at IS NULL OR f.ingested_at >= b.ingested_at)) AND STRPOS(f._supplied, ',ingested_at,') > 0, f.ingested_at, b.ingested_at) AS ingested_at
FROM `${dataset}.hubspot_sequence_enrollments` AS b
FULL OUTER JOIN (SELECT * EXCEPT (_rank) FROM (SELECT f.*, ROW_NUMBER() OVER (PARTITION BY f.enrollment_id ORDER BY f.ingested_at DESC, f._landed_ns DESC, f._seq DESC) AS _rank FROM `${dataset}.hubspot_sequence_enrollments_fresh` AS f) WHERE _rank = 1) AS f ON b.enrollment_id = f.enrollment_id;

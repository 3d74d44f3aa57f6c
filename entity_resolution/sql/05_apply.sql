-- Writes the decisions into ${target}'s match columns named with ${prefix} (run once per matched column:
-- gmail_participants.email, hubspot_sequence_enrollments.email, dialpad_calls.external_number_e164, ...; crm_deals
-- carries two sets, its contact_phone_e164's prefixed phone_): rows never examined, and rows of re-resolved values whose
-- outcome changed. Rows whose outcome stands are not touched (a second run changes nothing).
-- ${partitions} bounds t's partition column to the days 05_apply_partitions.sql found (constants: pruned).
-- Parameters: @now (TIMESTAMP).
UPDATE ${dataset}.${target} AS t
SET ${prefix}sf_contact_id = r.sf_contact_id, ${prefix}sf_lead_id = r.sf_lead_id, ${prefix}sf_account_id = r.sf_account_id,
    ${prefix}match_method = r.match_method, ${prefix}match_confidence = r.match_confidence, ${prefix}matched_at = @now
FROM ${work}._er_resolution_${run} AS r
WHERE r.value_type = '${value_type}' AND t.${value_column} = r.value AND ${partitions}
  AND (t.${prefix}matched_at IS NULL
       OR (r.all_rows AND (t.${prefix}sf_contact_id IS DISTINCT FROM r.sf_contact_id
                           OR t.${prefix}sf_lead_id IS DISTINCT FROM r.sf_lead_id
                           OR t.${prefix}sf_account_id IS DISTINCT FROM r.sf_account_id
                           OR t.${prefix}match_method IS DISTINCT FROM r.match_method)))

-- Unmatched external addresses by domain (from v_unmatched_addresses): companies that write to us or that we
-- write to, with no contact or lead in Salesforce; the largest volumes are the strongest lead candidates.
-- Free-mail domains are kept but flagged: their addresses are people, not one company.
CREATE OR REPLACE VIEW ${dataset}.v_unmatched_domains (
  domain OPTIONS(description="Email domain (IDN in punycode)."),
  addresses OPTIONS(description="Distinct unmatched addresses of the domain."),
  occurrences OPTIONS(description="Rows in gmail_participants carrying those addresses."),
  messages OPTIONS(description="Distinct messages (per mailbox) they appear in."),
  first_seen OPTIONS(description="First message with one of them."),
  last_seen OPTIONS(description="Latest message with one of them."),
  sf_account_id OPTIONS(description="An account the domain already reaches (website domain), NULL when none: a new company."),
  is_free_mail OPTIONS(description="The domain is a free-mail provider (ref_free_email_domains).")
) AS
SELECT
  u.domain, COUNT(*) AS addresses, SUM(u.occurrences) AS occurrences, SUM(u.messages) AS messages,
  MIN(u.first_seen) AS first_seen, MAX(u.last_seen) AS last_seen, ANY_VALUE(u.sf_account_id) AS sf_account_id,
  LOGICAL_OR(f.domain IS NOT NULL) AS is_free_mail
FROM ${dataset}.v_unmatched_addresses AS u
LEFT JOIN ${dataset}.ref_free_email_domains AS f ON f.domain = u.domain
WHERE u.value_type = 'email' AND u.domain IS NOT NULL
GROUP BY u.domain

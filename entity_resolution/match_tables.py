"""The tables entity resolution matches, from the source registry (each source.yaml's `match`), and the parts of
01_scope.sql that read them: one SELECT per table, joined with UNION ALL.

A table's alias in those parts is its own name, so the partition predicates of matcher.written_partitions read
`gmail_participants.sent_at >= ...`.
"""
from __future__ import annotations

from config.sources import MatchColumn, match_columns

# A part with no table of its kind: no rows, the columns typed.
_NO_EMAIL_ROWS = "SELECT CAST(NULL AS STRING) AS value, CAST(NULL AS STRING) AS domain LIMIT 0"
_NO_PHONE_ROWS = "SELECT CAST(NULL AS STRING) AS value LIMIT 0"


# What is matched beyond the registered sources: the deals of dropped CRM exports (cloud_functions/file_drop, an
# event-triggered import with no API, schedule, credentials or sandbox to declare). crm_deals carries two sets of
# match columns: its contact's email's, and its contact's phone's (prefixed phone_).
BEYOND_SOURCES = (MatchColumn("crm_deals", "contact_email", "email", domain="contact_domain"),
                  MatchColumn("crm_deals", "contact_phone_e164", "phone", prefix="phone_"))


def matched(kind: str | None = None) -> list[MatchColumn]:
    """The matched columns (of one kind, email or phone, when given), source by source, then the file drops'."""
    return [m for m in (*match_columns(), *BEYOND_SOURCES) if kind is None or m.kind == kind]



def scope_parts(dataset: str, written: dict[str, str]) -> dict[str, str]:
    """01_scope.sql's placeholders: per kind, the rows never examined in the partitions written (`written`: per
    table, a predicate on its partition column) and every row's value (for values whose CRM side changed)."""
    def rows(kind: str, new: bool) -> str:
        parts = []
        for m in matched(kind):
            columns = f"{m.table}.{m.column} AS value" + (f", {m.table}.{m.domain} AS domain" if kind == "email" else "")
            where = f"{m.table}.{m.column} IS NOT NULL"
            if new:
                where += f" AND {m.table}.{m.prefix}matched_at IS NULL AND {written[m.table]}"
            parts.append(f"SELECT {columns} FROM {dataset}.{m.table} AS {m.table} WHERE {where}")
        empty = _NO_EMAIL_ROWS if kind == "email" else _NO_PHONE_ROWS
        return "\n  UNION ALL\n  ".join(parts) or empty

    return {"new_email_rows": rows("email", True), "email_rows": rows("email", False),
            "new_phone_rows": rows("phone", True), "phone_rows": rows("phone", False)}

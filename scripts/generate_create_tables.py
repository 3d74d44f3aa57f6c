"""Writes the generated SQL files: bigquery/schemas/create_tables.sql from the schema files, and
bigquery/views/v_activity_timeline.sql from its template and the sources' timeline.sql (tests fail when either is
stale)."""
from __future__ import annotations

from warehouse.schemas import SCHEMA_DIR, VIEWS_DIR, activity_timeline_sql, create_tables_sql


def main() -> None:
    for target, text in ((SCHEMA_DIR / "create_tables.sql", create_tables_sql()),
                         (VIEWS_DIR / "v_activity_timeline.sql", activity_timeline_sql())):
        target.write_text(text)
        print(f"wrote {target}")


if __name__ == "__main__":
    main()

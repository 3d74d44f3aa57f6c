"""Writes bigquery/schemas/create_tables.sql from the schema files (tests fail when it is stale)."""
from __future__ import annotations

from warehouse.schemas import SCHEMA_DIR, create_tables_sql


def main() -> None:
    target = SCHEMA_DIR / "create_tables.sql"
    target.write_text(create_tables_sql())
    print(f"wrote {target}")


if __name__ == "__main__":
    main()

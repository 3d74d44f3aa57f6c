"""Writes bigquery/schemas/create_tables.sql from the schema files (tests fail when it is stale)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from warehouse.schemas import SCHEMA_DIR, create_tables_sql  # noqa: E402


def main() -> None:
    target = SCHEMA_DIR / "create_tables.sql"
    target.write_text(create_tables_sql())
    print(f"wrote {target}")


if __name__ == "__main__":
    main()

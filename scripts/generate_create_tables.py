"""Writes the generated files: bigquery/schemas/create_tables.sql from the schema files,
bigquery/views/v_activity_timeline.sql from its template and the sources' timeline.sql, and bigquery/fresh/ (the
fresh tier of each pushed table for Terraform: warehouse/fresh.py). Tests fail when any is stale."""
from __future__ import annotations

from warehouse.fresh import generated_files
from warehouse.schemas import SCHEMA_DIR, VIEWS_DIR, activity_timeline_sql, create_tables_sql

FRESH_DIR = SCHEMA_DIR.parent / "fresh"


def main() -> None:
    for target, text in ((SCHEMA_DIR / "create_tables.sql", create_tables_sql()),
                         (VIEWS_DIR / "v_activity_timeline.sql", activity_timeline_sql())):
        target.write_text(text)
        print(f"wrote {target}")
    FRESH_DIR.mkdir(exist_ok=True)
    files = generated_files()
    for stale in set(p.name for p in FRESH_DIR.iterdir()) - set(files):
        (FRESH_DIR / stale).unlink()
    for name, text in files.items():
        (FRESH_DIR / name).write_text(text)
    print(f"wrote {len(files)} files in {FRESH_DIR}")


if __name__ == "__main__":
    main()

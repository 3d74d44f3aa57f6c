"""Starts bqemulator (a BigQuery REST server backed by DuckDB) with the test harness's work-arounds.

Runs under the emulator's own interpreter (.venv-bqemulator, requirements-bqemulator.txt), never the
project's: it imports nothing of the project. Arguments are bqemulator's `start` arguments.

Every patch below covers a gap of the emulator, not of BigQuery; production code never relies on them.
"""
from __future__ import annotations

import re
import sys


def _skip_spatial_extension() -> None:
    # Gap: the emulator insists on DuckDB's `spatial` extension at start-up and downloads it, which fails
    # offline. BigQuery has GEOGRAPHY built in; this project uses none, so nothing needs the extension.
    from bqemulator.storage.engine import DuckDBEngine

    DuckDBEngine._load_spatial = lambda self: None


def _accept_any_media_type() -> None:
    # Gap: the upload route refuses the media type `*/*` that google-cloud-bigquery sends for the data part
    # of a multipart upload (load_table_from_json, small load_table_from_file). BigQuery accepts it.
    from bqemulator.api.routes import upload

    permitted = upload._is_permitted_media_type
    upload._is_permitted_media_type = lambda media_ct: media_ct == "*/*" or permitted(media_ct)


_COMMENT = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`[^`]*`)|--[^\n]*|/\*.*?\*/""", re.S)


def _strip_comments(sql: str) -> str:
    """The SQL without comments; string literals and quoted names are kept as they are."""
    return _COMMENT.sub(lambda m: m.group(1) or " ", sql)


def _ignore_parameters_in_comments() -> None:
    # Gap: the emulator counts `@name` inside comments as query parameters and then reports a count
    # mismatch; BigQuery ignores comments. The project's SQL files document their @parameters in a
    # header comment (which sqlglot carries into the translated text as /* ... */), so comments are
    # removed before the emulator binds named parameters.
    from bqemulator.sql import parameters

    bind_named = parameters._bind_named
    parameters._bind_named = lambda sql, params: bind_named(_strip_comments(sql), params)


def _schema_patch_adds_stored_columns() -> None:
    # Gap: a table patch (tables.patch / update, what client.update_table sends) that appends columns
    # changes only the emulator's catalog, not the DuckDB table behind it, so a MERGE into the new columns
    # fails. BigQuery adds them to the table. Here the catalog update also adds them to the storage.
    from bqemulator.api.routes.tables import _field_to_rest
    from bqemulator.catalog.duckdb_repository import DuckDBCatalogRepository
    from bqemulator.catalog.memory_repository import MemoryCatalogRepository
    from bqemulator.storage.sql_identifiers import quoted_table_ref
    from bqemulator.storage.type_map import bq_schema_to_duckdb_columns

    for repository in (MemoryCatalogRepository, DuckDBCatalogRepository):
        def update_table(self, table, _update=repository.update_table):
            before = self.get_table(table.project_id, table.dataset_id, table.table_id)
            have = {f.name for f in before.schema_.fields} if before else set()
            added = [f for f in table.schema_.fields if f.name not in have]
            if before is not None and added and getattr(self, "_engine", None) is not None:
                target = quoted_table_ref(table.project_id, table.dataset_id, table.table_id)
                for name, duck_type in bq_schema_to_duckdb_columns([_field_to_rest(f) for f in added]):
                    self._engine.execute(f'ALTER TABLE {target} ADD COLUMN IF NOT EXISTS "{name}" {duck_type}')
            return _update(self, table)

        repository.update_table = update_table


def _set_data_type_changes_the_catalog() -> None:
    # Gap: ALTER TABLE ... ALTER COLUMN c SET DATA TYPE T runs on the DuckDB table behind it (through the
    # emulator's translation, which makes NUMERIC a DECIMAL(18, 3) and so rounds to 3 decimals) but leaves the
    # catalog's column type as it was: tables.get and INFORMATION_SCHEMA still report the old type. BigQuery
    # changes the column's type. Here the storage column is set again to the emulator's own type for T
    # (NUMERIC: DECIMAL(38, 9)) and the catalog's field takes T. Whether BigQuery accepts the change (only a
    # coercion: INT64 to NUMERIC/BIGNUMERIC/FLOAT64, NUMERIC to BIGNUMERIC/FLOAT64) is not emulated.
    import sqlglot
    from bqemulator.catalog import ddl_sync
    from bqemulator.jobs import executor
    from bqemulator.storage.sql_identifiers import quoted_table_ref
    from bqemulator.storage.type_map import bq_schema_to_duckdb_columns
    from sqlglot import exp

    sync_dropped_object = executor.sync_dropped_object

    def sync_then_retype(bq_sql, project_id, ctx):
        sync_dropped_object(bq_sql, project_id, ctx)
        try:
            statement = sqlglot.parse_one(bq_sql, read="bigquery")
        except sqlglot.errors.ParseError:
            return
        actions = (statement.args.get("actions") or []) if isinstance(statement, exp.Alter) else []
        types = {a.name: a.args["dtype"].sql("bigquery") for a in actions
                 if isinstance(a, exp.AlterColumn) and a.args.get("dtype") is not None}
        if not types:
            return
        p_id, d_id, t_id = ddl_sync._split_target(statement.this, project_id)
        for name, duck_type in bq_schema_to_duckdb_columns([{"name": n, "type": t} for n, t in types.items()]):
            ctx.engine.execute(f'ALTER TABLE {quoted_table_ref(p_id, d_id, t_id)} ALTER COLUMN "{name}" '
                               f"SET DATA TYPE {duck_type}")
        table = ctx.catalog.get_table(p_id, d_id, t_id)
        fields = tuple(f.model_copy(update={"type": types[f.name]}) if f.name in types else f
                       for f in table.schema_.fields)
        schema = table.schema_.model_copy(update={"fields": fields})
        ctx.catalog.update_table(table.model_copy(update={"schema_": schema}))

    executor.sync_dropped_object = sync_then_retype


def main() -> None:
    _skip_spatial_extension()
    _accept_any_media_type()
    _ignore_parameters_in_comments()
    _schema_patch_adds_stored_columns()
    _set_data_type_changes_the_catalog()
    from bqemulator.cli import main as cli

    cli(["start", *sys.argv[1:]], prog_name="bqemulator")


if __name__ == "__main__":
    main()

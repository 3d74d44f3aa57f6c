"""The fresh tier: what a push brought, queryable within the minute for nothing, folded into the tables later.

BigQuery bills every statement at least 10 MB per table it reads: a MERGE per table each minute, for changes that
arrive every few seconds (README "Push freshness"), would bill more than the whole pipeline does. So the rows of a
push run (pipeline.run_origin) are not merged as they arrive: the merger appends them to `<table>_fresh` by a load
job (free; at most 1,500 a table a day), and every FRESH_FOLD_SECONDS merges each fresh table into its table with
one MERGE (what the schedules' runs used to merge, every two hours by default) and empties it (a free WRITE_TRUNCATE load).

`<table>_fresh` has the table's columns, all NULLABLE (a run may supply some columns only: a label change), and
    _landed_ns  when the row was landed (nanoseconds; with _seq the row's place: the latest wins)
    _seq        its place in the merger's append
    _supplied   the columns the row supplies, as ",a,b,c," (the others are not the row's to set)
`<table>_live` is the view analysts (and the freshness bench) read for what is fresh: each key's table row with
the latest fresh row's supplied columns over it, when that row's version is not older; keys only in the fresh
table appear with their supplied columns. It reads the whole table (no partition pruning through the join).

Small tables read from here without a query (watermarks): `latest_rows` reads the table and its fresh table with
Warehouse.read_rows (tabledata.list on BigQuery, free) and keeps each key's newest row.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable, Mapping, Sequence

from warehouse.base import Warehouse
from warehouse.schemas import Column, TableSpec
from warehouse.sql_text import quoted

FRESH_SUFFIX = "_fresh"
LIVE_SUFFIX = "_live"
META_COLUMNS = (Column("_landed_ns", "INT64", "NULLABLE", "when the row was landed (ns since the epoch)"),
                Column("_seq", "INT64", "NULLABLE", "the row's place in the merger's append"),
                Column("_supplied", "STRING", "NULLABLE", "the columns the row supplies, as ,a,b,"))
META_NAMES = tuple(c.name for c in META_COLUMNS)


def fresh_name(table: str) -> str:
    return table + FRESH_SUFFIX


def live_name(table: str) -> str:
    return table + LIVE_SUFFIX


def base_name(fresh_table: str) -> str | None:
    """The table a fresh table belongs to (None when the name is not a fresh table's)."""
    return fresh_table[:-len(FRESH_SUFFIX)] if fresh_table.endswith(FRESH_SUFFIX) else None


def fresh_spec(spec: TableSpec) -> TableSpec:
    """The fresh table of spec: its columns NULLABLE (repeated stay repeated), the meta columns, no partitioning
    (it holds at most a fold interval of pushed rows), keyed by the table's key and the row's place."""
    columns = tuple(c if c.mode == "REPEATED" else replace(c, mode="NULLABLE") for c in spec.columns)
    return TableSpec(name=fresh_name(spec.name), description=f"Pushed rows of {spec.name} not folded yet "
                     "(warehouse/fresh.py)", columns=columns + META_COLUMNS,
                     primary_key=(*spec.primary_key, "_landed_ns", "_seq"), version=None, partition_field=None,
                     partition_type="DAY", cluster=())


def supplied_text(columns: Iterable[str]) -> str:
    return "," + ",".join(columns) + ","


def supplied_columns(text: str | None) -> list[str]:
    return [c for c in (text or "").split(",") if c]


def live_view_sql(spec: TableSpec, dataset: str) -> str:
    """CREATE OR REPLACE VIEW <table>_live (BigQuery's dialect): see the module's docstring. Each column is taken
    from the newest fresh row of its key that supplies it (a label change after the message: the message's
    columns from the first, the labels from the second), and only when that row's version is not older than the
    table's row."""
    key, version = spec.primary_key, spec.version
    keys = ", ".join(f"f.{k}" for k in key)
    order = (f"f.{version} DESC, " if version else "") + "f._landed_ns DESC, f._seq DESC"
    window = f"PARTITION BY {keys} ORDER BY {order}"
    frame = f"{window} ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"
    picks = []
    for column in spec.columns:
        if column.name in key:
            continue
        stamp = f", f.{version} AS ver" if version else ""
        picks.append(f"FIRST_VALUE(IF(STRPOS(f._supplied, ',{column.name},') > 0, STRUCT(f.{column.name} AS v{stamp}), "
                     f"NULL) IGNORE NULLS) OVER ({frame}) AS {column.name}")
    latest = (f"SELECT * EXCEPT (_rank) FROM (SELECT {keys}, " + ", ".join(picks) +
              f", ROW_NUMBER() OVER ({window}) AS _rank FROM {quoted(dataset, fresh_name(spec.name))} AS f) "
              "WHERE _rank = 1")
    columns = []
    for column in spec.columns:
        name = column.name
        if name in key:
            columns.append(f"COALESCE(b.{name}, f.{name}) AS {name}")
            continue
        newer = f" AND (b.{version} IS NULL OR f.{name}.ver >= b.{version})" if version else ""
        columns.append(f"IF(f.{name} IS NOT NULL{newer}, f.{name}.v, b.{name}) AS {name}")
    joined = " AND ".join(f"b.{k} = f.{k}" for k in key)
    # The fresh rows as a subquery, not a WITH: views over this view inline it, and a WITH does not survive that
    # on every engine (the BigQuery emulator loses it).
    return (f"CREATE OR REPLACE VIEW {quoted(dataset, live_name(spec.name))} AS\nSELECT\n  " + ",\n  ".join(columns) +
            f"\nFROM {quoted(dataset, spec.name)} AS b\nFULL OUTER JOIN ({latest}) AS f ON {joined}")


# The sources that push (README "Push freshness"): their tables, the watermarks and the push runs' records have a
# fresh tier from the start (ensure_schema), so `<table>_live` is there for analysts before the first push.
PUSHED_SOURCES = ("gmail", "salesforce", "dialpad", "hubspot")


def pushed_tables() -> list[str]:
    """The tables a push run writes: its sources' declared tables, sync_state and push_runs."""
    from config.sources import registered

    sources = registered()
    declared = [t for name in PUSHED_SOURCES if name in sources for t in sources[name].tables]
    return list(dict.fromkeys([*declared, "sync_state", "push_runs"]))


def fold_seconds(table: str, most: float) -> float:
    """How long a table's pushed rows may wait in its fresh table: FRESH_FOLD_SECONDS (`most`), or less for a
    source whose schedule ran more often (its longest gap between runs, half its stale_after_hours: Gmail's
    hour), so no table (and no analyst view over it) is staler with push on than without."""
    from config.sources import registered

    for source in registered().values():
        if table in source.tables and source.schedule.get("stale_after_hours"):
            return min(most, float(source.schedule["stale_after_hours"]) * 3600 / 2)
    return most


def generated_files() -> dict[str, str]:
    """What `make schemas` writes to bigquery/fresh/ for Terraform (ensure_schema makes the same at run time): each
    pushed table's `<table>_fresh.json` (its schema) and `<table>_live.sql` (its view, `${dataset}` to fill)."""
    import json

    from warehouse.schemas import table_spec

    files = {}
    for table in pushed_tables():
        spec = table_spec(table)
        files[f"{fresh_name(table)}.json"] = json.dumps([c.to_json() for c in fresh_spec(spec).columns], indent=2) + "\n"
        files[f"{live_name(table)}.sql"] = live_view_sql(spec, "${dataset}") + ";\n"
    return files


def ensure_fresh(warehouse: Warehouse, table: str, known: dict[str, frozenset[str]]) -> None:
    """Creates `<table>_fresh` and `<table>_live` when missing; brings the fresh table's columns to the table's as
    they are in the warehouse (custom fields a Salesforce sync added, a type it widened) and the view with them.
    `known` remembers per process the columns ensured (forget a table's entry to ensure it again)."""
    if known.get(table) == frozenset(warehouse.spec_of(table).column_names):
        return
    present = warehouse.table_columns(table)
    spec = warehouse.spec_of(table)
    spec = spec.with_columns(Column.of_warehouse_type(n, t) for n, t in present.items() if n not in spec.column_names)
    fresh = fresh_spec(spec)
    changed = not _has_table(warehouse, fresh.name)
    if changed:
        warehouse.create_table(fresh)
    else:
        have = warehouse.table_columns(fresh.name)
        missing = [c for c in fresh.columns if c.name not in have]
        if missing:
            warehouse._add_table_columns(fresh.name, missing)
        widened = [Column.of_warehouse_type(name, kind) for name, kind in present.items()
                   if name in have and have[name] != kind and not kind.startswith("ARRAY<")]
        for column in widened:  # a type the table's column was widened to
            warehouse.set_column_type(fresh.name, column)
        changed = bool(missing or widened)
    # The view lists its columns: made again when the table's are not all in it (DDL, free; seconds on the emulator).
    if changed or not _has_table(warehouse, live_name(table)) or \
            set(spec.column_names) - set(warehouse.table_columns(live_name(table))):
        warehouse.execute(live_view_sql(spec, warehouse.dataset))
    known[table] = frozenset(warehouse.spec_of(table).column_names)


def fresh_rows(rows: Sequence[Mapping[str, Any]], landed_ns: int, start: int = 0) -> list[dict[str, Any]]:
    """rows (all supplying the same columns) as fresh-table rows: the meta columns added."""
    if not rows:
        return []
    supplied = supplied_text(rows[0].keys())
    return [{**row, "_landed_ns": landed_ns, "_seq": start + i, "_supplied": supplied} for i, row in enumerate(rows)]


def latest_rows(warehouse: Warehouse, table: str, match: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of a small table whose columns equal `match`, with any newer fresh row's supplied columns over
    them, read without a query (Warehouse.read_rows: free on BigQuery). For watermark tables."""
    spec = warehouse.spec_of(table)
    key = spec.primary_key
    def matching(name: str) -> list[dict[str, Any]]:
        return [r for r in warehouse.read_rows(name) if all(r.get(c) == v for c, v in match.items())]

    # The fresh table first: a fold between the two reads then shows its rows in the table, not in neither.
    fresh = matching(fresh_name(table)) if _has_table(warehouse, fresh_name(table)) else []
    rows = {tuple(r[k] for k in key): r for r in matching(table)}
    if fresh:
        fresh.sort(key=lambda r: (_version(r, spec.version), r["_landed_ns"] or 0, r["_seq"] or 0))
        for row in fresh:
            at = tuple(row[k] for k in key)
            base = rows.get(at)
            if base is not None and spec.version and _version(base, spec.version) > _version(row, spec.version):
                continue
            merged = dict(base or {})
            merged.update({c: row[c] for c in supplied_columns(row["_supplied"]) if c in row})
            rows[at] = merged
    return list(rows.values())


def _version(row: Mapping[str, Any], column: str | None) -> tuple[Any, ...]:
    """A sort key of the row's version: a missing one sorts first."""
    value = row.get(column) if column else None
    return (0,) if value is None else (1, value)


def _has_table(warehouse: Warehouse, name: str) -> bool:
    """Whether the table exists (a metadata call the first time; remembered by the process once it does)."""
    from pipeline.process_memory import remembered

    seen: set[str] = remembered(warehouse, "fresh tables seen", set)
    if name not in seen and name in warehouse.list_tables():
        seen.add(name)
    return name in seen

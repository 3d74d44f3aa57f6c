"""`run_local sql`: BigQuery SQL as an analyst writes it, run on the configured warehouse.

On DuckDB the text goes through the pipeline's own translation (Warehouse.query: sqlglot, BigQuery to
DuckDB); on BigQuery it is sent as written. Several statements separated by `;` run one after another,
each printed as a table, CSV or JSON lines.
"""
from __future__ import annotations

import csv
import json
import sys
from typing import Any, TextIO

from transform.values import json_ready
from warehouse import Warehouse


def statements(text: str) -> list[str]:
    """The statements of a BigQuery script as written (split at top-level semicolons, comments kept)."""
    from sqlglot.dialects.bigquery import BigQuery
    from sqlglot.tokens import TokenType

    pieces, start = [], 0
    for token in BigQuery().tokenize(text):
        if token.token_type == TokenType.SEMICOLON:
            pieces.append(text[start:token.start])
            start = token.end + 1
    pieces.append(text[start:])
    return [p.strip() for p in pieces if _has_code(p)]


def _has_code(piece: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in piece.splitlines())


def write_rows(rows: list[dict[str, Any]], fmt: str, out: TextIO = sys.stdout) -> None:
    """Prints rows as an aligned table (with a row count), CSV with a header, or one JSON object per line."""
    if fmt == "json":
        for row in rows:
            out.write(json.dumps(json_ready(row), ensure_ascii=False) + "\n")
        return
    names = list(rows[0]) if rows else []
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(names)
        for row in rows:
            writer.writerow([_text(json_ready(row[n]), json_inline=True) for n in names])
        return
    cells = [[_text(json_ready(row[n])) for n in names] for row in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    if names:
        out.write("  ".join(n.ljust(w) for n, w in zip(names, widths)).rstrip() + "\n")
        out.write("  ".join("-" * w for w in widths) + "\n")
    for cell_row in cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(cell_row, widths)).rstrip() + "\n")
    out.write(f"({len(rows)} row{'' if len(rows) == 1 else 's'})\n")


def _text(value: Any, json_inline: bool = False) -> str:
    if value is None:
        return "" if json_inline else "NULL"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def run_sql(warehouse: Warehouse, text: str, fmt: str, out: TextIO = sys.stdout) -> int:
    """Runs each statement of text and prints its rows; returns the number of statements run."""
    found = statements(text)
    if not found:
        raise NoStatement("no SQL statement given")
    for number, statement in enumerate(found):
        if number and fmt == "table":
            out.write("\n")
        try:
            rows = warehouse.query(statement)
        except Exception as error:  # the warehouse's own words, on one line, with the statement's number
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise QueryFailed(f"statement {number + 1} of {len(found)}: {first}") from error
        write_rows(rows, fmt, out)
    return len(found)


class NoStatement(ValueError):
    """The text given to `sql` holds no statement."""


class QueryFailed(RuntimeError):
    """The warehouse refused a statement given to `sql`."""

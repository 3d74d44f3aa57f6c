"""Text of SQL statements: quoted table paths, safe table names, the parameters a statement uses."""
from __future__ import annotations

import re
from typing import Any, Mapping

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def quoted(*parts: str) -> str:
    """A table path quoted for GoogleSQL (`dataset.table`): unquoted, a dash is legal only in its first part."""
    return "`" + ".".join(parts) + "`"


def safe_table_name(text: str) -> str:
    """text as a table name of only [A-Za-z0-9_] (run ids carry dashes), at most 1,024 characters."""
    return _NAME_UNSAFE.sub("_", text)[:1024]


_PARAMETER = re.compile(r"@(\w+)")


def parameters_used(sql: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The params the statement refers to (@name): DuckDB refuses extra ones, so callers may pass a superset."""
    if not params:
        return {}
    names = set(_PARAMETER.findall(sql))
    return {k: v for k, v in params.items() if k in names}


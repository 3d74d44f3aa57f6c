"""What a BigQuery load or MERGE job carries and is named: JSON-ready rows, job ids, a batch's digest.

A batch's MERGE job id ends with the digest of its rows (less the columns stamped at merge time), so a
retried batch finds its own earlier job instead of merging twice.
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Mapping, Sequence

from warehouse.merge_sql import MERGE_TIME_COLUMNS

_JOB_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def json_ready(value: Any) -> Any:
    """A value as a load job's newline-delimited JSON expects it."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    return value


def job_id_for(kind: str, table: str, batch_id: str) -> str:
    """A BigQuery job id of only the characters job ids allow."""
    return _JOB_ID_UNSAFE.sub("_", f"{kind}_{table}_{batch_id}")[:1024]


def batch_digest(payload: Sequence[Mapping[str, Any]]) -> str:
    """What identifies a staged batch's content: its rows less the columns stamped at merge time."""
    content = [{k: v for k, v in row.items() if k not in MERGE_TIME_COLUMNS} for row in payload]
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]

"""What a BigQuery load or MERGE job is named: job ids of only the characters they allow, a batch's digest.

A batch's MERGE job id ends with the digest of its rows (less the columns stamped at merge time), so a
retried batch finds its own earlier job instead of merging twice.
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Mapping, Sequence

from warehouse.merge_sql import MERGE_TIME_COLUMNS

_JOB_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def job_id_for(kind: str, table: str, batch_id: str) -> str:
    """A BigQuery job id of only the characters job ids allow."""
    return _JOB_ID_UNSAFE.sub("_", f"{kind}_{table}_{batch_id}")[:1024]


def batch_digest(payload: Sequence[Mapping[str, Any]]) -> str:
    """What identifies a staged batch's content: its rows less the columns stamped at merge time."""
    content = [{k: v for k, v in row.items() if k not in MERGE_TIME_COLUMNS} for row in payload]
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]

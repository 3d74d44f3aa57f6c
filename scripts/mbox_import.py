"""Google Takeout mbox files into the Gmail tables, through the same parser as the API path.

Takeout adds X-GM-MSGID / X-GM-THRID (decimal; the API's ids are the same numbers in hex) and
X-Gmail-Labels. They give the rows the API would: same message id, thread, labels. The Takeout headers
are taken off the raw message first, so sizes match too. Messages without X-GM-MSGID (other mbox
exporters) are keyed by a hash of their Message-ID and Date instead.
"""
from __future__ import annotations

import hashlib
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.runtime import Runtime

_TAKEOUT_HEADER = re.compile(rb"^(X-GM-MSGID|X-GM-THRID|X-Gmail-Labels): (.*?)\r?\n", re.M | re.I)
_FROM_LINE_DATE = re.compile(r"^\S+\s+(.*)$")


def _label_id(name: str) -> str:
    system = {"inbox", "sent", "draft", "spam", "trash", "important", "starred", "unread", "chat"}
    if name.lower() == "drafts":  # the name Gmail shows; the API's id is DRAFT
        return "DRAFT"
    return name.upper() if name.lower() in system else name


def mbox_resource(raw: bytes, from_line: str) -> dict[str, Any]:
    """An API-like message resource of one mbox entry."""
    headers = {m.group(1).decode().lower(): m.group(2).decode().strip() for m in _TAKEOUT_HEADER.finditer(raw)}
    body = _TAKEOUT_HEADER.sub(b"", raw)
    body = re.sub(rb"(?m)^>(>*From )", rb"\1", body)  # mboxrd quoting of body lines starting "From "
    for separator in (b"\r\n", b"\n"):  # the blank line mbox puts between messages is not the message's
        if body.endswith(b"\n" + separator):
            body = body[: -len(separator)]
            break
    internal = None
    match = _FROM_LINE_DATE.match(from_line or "")
    if match:
        try:
            internal = int(datetime.strptime(match.group(1).strip(), "%a %b %d %H:%M:%S %z %Y").timestamp() * 1000)
        except ValueError:
            internal = None
    if "x-gm-msgid" in headers:
        message_id = format(int(headers["x-gm-msgid"]), "x")
    else:
        message_id = "mbox-" + hashlib.sha256(body[:4096]).hexdigest()[:24]
    return {"id": message_id, "threadId": format(int(headers["x-gm-thrid"]), "x") if "x-gm-thrid" in headers else None,
            "labelIds": [_label_id(label) for label in headers.get("x-gmail-labels", "").split(",") if label],
            "internalDate": str(internal) if internal is not None else None, "raw_bytes": body,
            "sizeEstimate": len(body)}


class NotAnMbox(ValueError):
    """The file given to import-mbox is not an mbox: importing it would be a success of 0 messages."""


def refuse_unless_mbox(path: Path) -> None:
    """Raises NotAnMbox unless the file starts as an mbox does: a `From ` line (Google Takeout writes
    `From 1234567890@xxx Mon Jan 01 00:00:00 +0000 2024`)."""
    with path.open("rb") as handle:
        start = handle.read(5)
    if start != b"From ":
        what = "empty" if not start else "not an mbox (an mbox starts with a 'From ' line)"
        raise NotAnMbox(f"{path} is {what}: give the .mbox file of a Google Takeout export")


def import_mbox(path: Path, mailbox_address: str, runtime: Runtime, trigger: str = "local") -> dict[str, Any]:
    """Loads an mbox into gmail_messages and gmail_participants as a file drop (cloud_functions/file_drop: the same
    code as an mbox dropped in the bucket, resumable, loaded once); returns the run's summary."""
    from cloud_functions.file_drop.storage import local_file
    from cloud_functions.file_drop.sync import import_drop

    if not path.is_file():
        raise FileNotFoundError(f"no mbox file at {path}")
    refuse_unless_mbox(path)
    return import_drop(local_file(path), runtime, trigger=trigger, mailbox=mailbox_address)

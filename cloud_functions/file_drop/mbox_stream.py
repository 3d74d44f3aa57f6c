"""The messages of an mbox read as a stream from a byte offset, each with the offset of the next one.

Messages are split where the standard library's mailbox.mbox splits them (a line starting `From `; the blank
line before it is not the message's), so a message read here has the bytes `mailbox.mbox.get_bytes` gives and
the From line `get_from` gives; unlike mailbox.mbox it never scans the whole file first, so a resumed import
starts at its offset and memory holds one message.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Iterator


@dataclass(frozen=True)
class MboxEntry:
    from_line: str  # after `From `, as mailbox.mboxMessage.get_from() gives it
    raw: bytes
    start: int  # offset of its From line
    end: int  # offset of the next message's From line (or the file's end)


def mbox_entries(stream: BinaryIO, offset: int) -> Iterator[MboxEntry]:
    """The messages from offset (which is a From line's, or 0)."""
    from_line: str | None = None
    lines: list[bytes] = []
    start = position = offset
    last_was_empty = False
    for line in iter(stream.readline, b""):
        if line.startswith(b"From "):
            if from_line is not None:
                body = b"".join(lines[:-1] if last_was_empty else lines)
                yield MboxEntry(from_line, body, start, position)
            from_line, lines, start = line[5:].replace(b"\n", b"").decode("ascii", "replace"), [], position
            last_was_empty = False
        elif from_line is not None:
            lines.append(line)
            last_was_empty = line == b"\n"
        position += len(line)
    if from_line is not None:
        yield MboxEntry(from_line, b"".join(lines[:-1] if last_was_empty else lines), start, position)

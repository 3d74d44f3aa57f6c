"""What a dropped file is, from its first bytes: an mbox, or delimited text in some encoding and dialect (pure).

The encoding: a byte-order mark says it outright (Excel's "Unicode text" is UTF-16 with one); else text that
decodes as UTF-8 is UTF-8; else charset-normalizer judges (Windows-1252 and its neighbours, UTF-16 without a
mark), Windows-1252 preferred whenever it finds it plausible. The dialect: the standard library's csv.Sniffer over the first lines, limited to the delimiters exports
use; when it cannot tell, the delimiter the header line holds most of. A file none of this fits is
`Unreadable`, with the reason.
"""
from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass

from charset_normalizer import from_bytes

WINDOWS_WESTERN = "cp1252"
HEAD_BYTES = 1 << 20  # what detection reads: enough lines to sniff and to sample amounts and dates
DELIMITERS = ",;\t|"
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_MAGIC = ((b"PK\x03\x04", "a zip archive (an .xlsx workbook? save it as CSV)"),
          (b"\xd0\xcf\x11\xe0", "an old Excel or Office file (.xls): save it as CSV"),
          (b"%PDF", "a PDF"), (b"\x1f\x8b", "gzip-compressed: drop it uncompressed"))


class Unreadable(ValueError):
    """The file is neither an mbox nor delimited text: the reason says what it looks like."""


@dataclass(frozen=True)
class TextFormat:
    """How a delimited file's bytes are read: codec, byte-order mark length, delimiter, quote, and why."""

    encoding: str
    bom: int
    delimiter: str
    quotechar: str
    reason: str
    newline: str = "\n"  # "\r" for an old Mac file (CR only); CRLF lines end in "\n" too

    @property
    def unit(self) -> int:
        """Bytes per code unit: lines are split on whole units (UTF-16's newline is two bytes)."""
        return 2 if self.encoding.startswith("utf-16") else 1


def is_mbox(head: bytes) -> bool:
    """An mbox starts with a `From ` line (Google Takeout: `From 1234567890@xxx Mon Jan 01 00:00:00 +0000 2024`)."""
    return head.startswith(b"From ")


def detect_encoding(head: bytes) -> tuple[str, int, str]:
    """(codec, length of its byte-order mark, why) of a file's first bytes."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name, len(bom), f"{name} byte-order mark"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise Unreadable(f"not text: {what}")
    if not head.strip():
        raise Unreadable("empty file")
    complete = head if len(head) < HEAD_BYTES else head[: head.rfind(b"\n") + 1] or head
    try:
        complete.decode("utf-8")
        return "utf-8", 0, "decodes as UTF-8"
    except UnicodeDecodeError:
        pass
    matches = from_bytes(complete)
    best = matches.best()
    if best is None or best.encoding is None:
        raise Unreadable("not text: no character encoding reads it (binary data?)")
    name = codecs.lookup(best.encoding).name
    # Western text reads plausibly in several code pages (Ø is Ř in cp1250); Excel's ANSI export in western
    # locales is cp1252, so it wins whenever charset-normalizer finds it plausible at all.
    if any(WINDOWS_WESTERN in match.could_be_from_charset for match in matches):
        name = WINDOWS_WESTERN
    if name.startswith("utf-16") and name.endswith("16"):  # no byte order named: the NULs say which
        name = "utf-16-le" if complete[1:2] == b"\x00" else "utf-16-be"
    return name, 0, f"charset-normalizer: {name}"


def detect_format(head: bytes) -> TextFormat:
    """The TextFormat of a delimited file from its first bytes; Unreadable when it is not delimited text."""
    encoding, bom, why = detect_encoding(head)
    unit = 2 if encoding.startswith("utf-16") else 1
    body = head[bom:]
    if len(head) >= HEAD_BYTES:  # the last line may be cut: sniff whole lines only
        body = body[: len(body) - len(body) % unit]
    text = body.decode(encoding, errors="replace")
    lines = text.splitlines()[:50]
    if len(lines) < 1 or not lines[0].strip():
        raise Unreadable("no header line")
    sample = "\n".join(lines)
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=DELIMITERS)
        delimiter, quote, how = dialect.delimiter, dialect.quotechar or '"', "csv.Sniffer"
    except csv.Error:
        counts = {d: lines[0].count(d) for d in DELIMITERS}
        delimiter, quote, how = max(counts, key=lambda d: counts[d]), '"', "the header line's most frequent delimiter"
        if not counts[delimiter]:
            raise Unreadable("not delimited text: the first line holds no comma, semicolon, tab or bar") from None
    name = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "bar"}[delimiter]
    newline = "\r" if "\r" in text and "\n" not in text else "\n"
    return TextFormat(encoding, bom, delimiter, quote, f"{why}; {name}-delimited ({how})"
                      + ("; lines end in CR only" if newline == "\r" else ""), newline)

"""Records of a delimited file read as a stream, each with the byte offset just after it.

The bytes are split into lines on whole code units (a UTF-16 newline is two bytes), each line decoded on its
own and handed to the standard csv reader, which asks for a line only when its record needs one (a quoted
field across lines takes several). So after each record the bytes consumed are exactly its end: the offset a
resumed import seeks to. Memory holds one line and one record, whatever the file's size.
"""
from __future__ import annotations

import csv
from typing import BinaryIO, Iterator

from cloud_functions.file_drop.sniff import TextFormat

CHUNK = 1 << 16


def _split_lines(stream: BinaryIO, newline: bytes, unit: int) -> Iterator[bytes]:
    """Lines ending in newline, found at offsets that are whole code units only (UTF-16's newline is two bytes,
    an old Mac file's a lone CR)."""
    buffer = b""
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        buffer += chunk
        start = 0
        while True:
            found = buffer.find(newline, start)
            while found != -1 and (found - start) % unit:
                found = buffer.find(newline, found + 1)
            if found == -1:
                break
            yield buffer[start:found + len(newline)]
            start = found + len(newline)
        buffer = buffer[start:]
    if buffer:
        yield buffer


class CsvStream:
    """The records of a delimited file from a byte offset; `offset` is the end of the last record read."""

    def __init__(self, stream: BinaryIO, form: TextFormat, offset: int):
        self.form = form
        self.offset = offset
        self.undecodable_lines = 0
        self._stream = stream

    def _lines(self) -> Iterator[str]:
        if self.form.unit == 1 and self.form.newline == "\n":
            raw = iter(self._stream.readline, b"")  # the common case, at C speed
        else:
            raw = _split_lines(self._stream, self.form.newline.encode(self.form.encoding), self.form.unit)
        for line in raw:
            self.offset += len(line)
            try:
                yield line.decode(self.form.encoding)
            except UnicodeDecodeError:  # kept, marked: the row's other cells still load
                self.undecodable_lines += 1
                yield line.decode(self.form.encoding, errors="replace")

    def records(self) -> Iterator[list[str]]:
        """Each record's cells; `offset` is its end when it is yielded."""
        reader = csv.reader(self._lines(), delimiter=self.form.delimiter, quotechar=self.form.quotechar,
                            skipinitialspace=False, strict=False)
        yield from reader


def unique_headers(cells: list[str]) -> list[str]:
    """Header cells trimmed, a repeated one numbered (`Email`, `Email (2)`), so each names one value."""
    seen: dict[str, int] = {}
    headers = []
    for cell in cells:
        name = cell.strip().lstrip("\ufeff")
        if name:
            seen[name] = seen.get(name, 0) + 1
            name = name if seen[name] == 1 else f"{name} ({seen[name]})"
        headers.append(name)
    return headers


def read_header(stream: BinaryIO, form: TextFormat) -> tuple[list[str], int]:
    """The header (the first record that is not blank) and the offset of the first data record, from a stream at
    the file's start."""
    stream.read(form.bom)
    reader = CsvStream(stream, form, form.bom)
    for cells in reader.records():
        if any(cell.strip() for cell in cells):
            return unique_headers(cells), reader.offset
    return [], reader.offset

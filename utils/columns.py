"""Pages of records as Arrow columns: the coercions of utils.values and the normalisers, column-wise.

A page of string cells (a Bulk API CSV page, or JSON records turned into text) is converted one column
at a time. Every value goes through the same Python function as a single record would (to_str,
to_bool, to_datetime, normalize_email, parse_phone, ...), but each distinct value only once, and the
well-formed common shapes skip Python altogether: printable ASCII text with nothing to strip, "true" and
"false", UTC ISO-8601 timestamps, YYYY-MM-DD dates. Those shortcuts give the same values as the Python
functions; everything else takes the Python way, which is also where a bad value's error comes from.

A conversion returns its output arrays and, per row, the error text of a value it could not convert
(None where fine): the caller rejects those rows with that reason.
"""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from utils.values import to_bool, to_date, to_datetime, to_str

TIMESTAMP = pa.timestamp("us", tz="UTC")
# Shapes whose vectorised conversion equals the Python one (checked by tests/utils/test_columns.py).
_NOTHING_TO_STRIP = r"^[!-~](?s:.*[!-~])?$"
_UTC_ISO = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|\+00:?00)$"
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
_EARLIEST = pa.scalar(datetime(1990, 1, 1, tzinfo=timezone.utc), TIMESTAMP)
_LATEST = pa.scalar(datetime(2100, 1, 1, tzinfo=timezone.utc), TIMESTAMP)


def read_csv(content: bytes) -> pa.Table:
    """A CSV page with a header row as string columns; an empty cell is null, any other text is kept."""
    text = content.decode("utf-8-sig")
    header = next(csv.reader(io.StringIO(text[:text.find("\n") + 1 or None])), [])
    if not header:
        return pa.table({})
    options = pa_csv.ConvertOptions(column_types={c: pa.string() for c in header}, strings_can_be_null=True,
                                    null_values=[""])
    return pa_csv.read_csv(io.BytesIO(text.encode()), convert_options=options,
                           read_options=pa_csv.ReadOptions(use_threads=False))


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def text_table(records: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> pa.Table:
    """JSON-shaped records as the string columns a CSV page gives (true/false, numbers as text)."""
    records = list(records)
    return pa.table({c: pa.array([_as_text(r.get(c)) for r in records], pa.string()) for c in columns})


class Converted:
    """Output arrays of one conversion and the per-row error texts (None when every row converted)."""

    def __init__(self, arrays: dict[str, pa.Array], errors: pa.Array | None = None):
        self.arrays, self.errors = arrays, errors


def _error_text(error: Exception) -> str:
    return str(error) if type(error).__name__ == "RejectedRecord" else f"{type(error).__name__}: {error}"


def per_value(array: pa.Array, fn: Callable[[str], tuple], types: Sequence[pa.DataType]) -> tuple[list[pa.Array], pa.Array | None]:
    """fn applied to each distinct non-null value once; fn returns one value per output type.

    Nulls give nulls. A value fn raises on gives nulls and its error text.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    encoded = array.dictionary_encode()
    outputs: list[list[Any]] = [[] for _ in types]
    errors: list[str | None] = []
    for value in encoded.dictionary.to_pylist():
        try:
            produced = fn(value)
        except Exception as error:  # the record is rejected with this reason, the page goes on
            produced, error_text = (None,) * len(types), _error_text(error)
        else:
            error_text = None
        for output, item in zip(outputs, produced):
            output.append(item)
        errors.append(error_text)
    arrays = [pa.array(values, type=t).take(encoded.indices) for values, t in zip(outputs, types)]
    failed = pa.array(errors, pa.string()).take(encoded.indices) if any(errors) else None
    return arrays, failed


def _combine(fast: pa.Array, fast_values: Callable[[], pa.Array], array: pa.Array,
             slow: Callable[[pa.Array], tuple[pa.Array, pa.Array | None]]) -> tuple[pa.Array, pa.Array | None]:
    """fast_values() where fast is true, slow() of the remaining non-null values elsewhere.

    Nulls count as fast: every fast conversion keeps a null a null.
    """
    fast = pc.or_(pc.fill_null(fast, False), pc.is_null(array))
    if pc.all(fast).as_py() is not False:  # (True for an empty page)
        return fast_values(), None
    if not pc.any(fast).as_py():
        return slow(array)
    rest = pc.if_else(fast, pa.scalar(None, array.type), array)
    slow_values, errors = slow(rest)
    return pc.if_else(fast, fast_values(), slow_values), errors


def text(array: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """to_str column-wise: stripped text, blanks as null."""
    def slow(rest: pa.Array) -> tuple[pa.Array, pa.Array | None]:
        (values,), errors = per_value(rest, lambda v: (to_str(v),), [pa.string()])
        return values, errors
    return _combine(pc.match_substring_regex(array, _NOTHING_TO_STRIP), lambda: array, array, slow)


def boolean(array: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """to_bool column-wise."""
    def slow(rest: pa.Array) -> tuple[pa.Array, pa.Array | None]:
        (values,), errors = per_value(rest, lambda v: (to_bool(v),), [pa.bool_()])
        return values, errors
    return _combine(pc.is_in(array, pa.array(["true", "false"])), lambda: pc.equal(array, "true"), array, slow)


def timestamp(array: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """to_datetime column-wise: UTC microseconds; impossible dates are errors."""
    def slow(rest: pa.Array) -> tuple[pa.Array, pa.Array | None]:
        (values,), errors = per_value(rest, lambda v: (to_datetime(v),), [TIMESTAMP])
        return values, errors

    fast = pc.fill_null(pc.match_substring_regex(array, _UTC_ISO), False)
    if not pc.any(fast).as_py():
        return slow(array)
    try:
        cast = pc.if_else(fast, array, pa.scalar(None, array.type)).cast(TIMESTAMP)
    except pa.ArrowInvalid:  # e.g. a 13th month: the Python way names it
        return slow(array)
    in_range = pc.and_(pc.greater_equal(cast, _EARLIEST), pc.less(cast, _LATEST))
    return _combine(pc.and_(fast, pc.fill_null(in_range, False)), lambda: cast, array, slow)


def date(array: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """to_date column-wise."""
    def slow(rest: pa.Array) -> tuple[pa.Array, pa.Array | None]:
        (values,), errors = per_value(rest, lambda v: (to_date(v),), [pa.date32()])
        return values, errors

    fast = pc.fill_null(pc.match_substring_regex(array, _ISO_DATE), False)
    try:
        cast = pc.if_else(fast, array, pa.scalar(None, array.type)).cast(pa.date32())
    except pa.ArrowInvalid:
        return slow(array)
    return _combine(fast, lambda: cast, array, slow)


def first_error(errors: Sequence[pa.Array | None]) -> pa.Array | None:
    """Per row, the first non-null error text of the given columns (in their order); None if no row has one."""
    present = [e for e in errors if e is not None and e.null_count < len(e)]
    if not present:
        return None
    return pc.coalesce(*present) if len(present) > 1 else present[0]

"""Pages of records as Arrow columns: the coercions of transform.values and the normalisers, column-wise.

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
import ctypes
import ctypes.util
import io
import os
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from transform.email_normalizer import ALREADY_NORMAL, MAX_LOCAL_PART, email_domain, normalize_email
from transform.phone_normalizer import (
    NANP_WRITTEN,
    PLAIN_WRITTEN,
    RegionPlan,
    country_calling_code,
    nanp_validity,
    parse_phone,
    region_for_country,
    region_plan,
)
from transform.values import MAX_ROW_BYTES, text_problem, to_bool, to_date, to_datetime, to_float, to_int, to_str

TIMESTAMP = pa.timestamp("us", tz="UTC")
if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
    # Arrow's default pool (mimalloc) keeps freed pages per thread: measured 40 MB more peak RSS over a
    # million-contact sync than the system allocator, at the same speed. An explicit setting wins.
    pa.set_memory_pool(pa.system_memory_pool())


def _keep_malloc_thresholds() -> None:
    """glibc only: fix malloc's mmap and trim thresholds at their defaults (128 KiB) instead of letting them grow.

    glibc raises its mmap threshold to the size of each large block freed (a page's column, a CSV body, DuckDB's
    scan buffers), so the next page's blocks come from the heap and stay in RSS once freed: a million-contact sync
    with 20 custom fields peaked about 30 MB higher (407 MB against 377 MB, same rows/s). Setting a threshold
    turns that adjustment off. MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_ in the environment win.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
    if hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version"):
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 128 * 1024)
        libc.mallopt(m_trim_threshold, 128 * 1024)


_keep_malloc_thresholds()
# Shapes whose vectorised conversion equals the Python one (checked by tests/transform/test_columns.py).
_NOTHING_TO_STRIP = r"^[!-~](?s:.*[!-~])?$"
_UTC_ISO = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|\+00:?00)$"
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
_WHOLE = r"^-?\d{1,15}$"
_DECIMAL = r"^-?\d{1,15}(\.\d{1,15})?$"
_EARLIEST = pa.scalar(datetime(1990, 1, 1, tzinfo=timezone.utc), TIMESTAMP)
_LATEST = pa.scalar(datetime(2100, 1, 1, tzinfo=timezone.utc), TIMESTAMP)
# The column read_csv and text_table add when some row holds a cell no warehouse can store (invalid
# UTF-8, a lone surrogate): per row, why (null elsewhere). The cell itself is null.
UNSTORABLE = "_unstorable"


def _with_unstorable(table: pa.Table, errors: list[pa.Array | None]) -> pa.Table:
    reasons = first_error(errors)
    return table if reasons is None else table.append_column(UNSTORABLE, reasons)


def _utf8(name: str, cells: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """Binary cells as text; a cell that is not UTF-8 is null with its reason."""
    try:
        return cells.cast(pa.string()), None
    except pa.ArrowInvalid:
        pass
    texts: list[str | None] = []
    errors: list[str | None] = []
    for cell in cells.to_pylist():
        try:
            texts.append(None if cell is None else cell.decode("utf-8"))
            errors.append(None)
        except UnicodeDecodeError as error:
            texts.append(None)
            errors.append(f"invalid UTF-8 in {name} at byte {error.start}: {cell[:80]!r}")
    return pa.array(texts, pa.string()), pa.array(errors, pa.string())


def read_csv(content: bytes) -> pa.Table:
    """A CSV page with a header row as string columns; an empty cell is null, any other text is kept.

    A cell that is not UTF-8 is null, and its row's reason is in the UNSTORABLE column.
    """
    # Only the header is decoded here (to type every column); Arrow reads the bytes, BOM included, as
    # binary first: one invalid byte must cost its record, not the page.
    header = next(csv.reader([content.split(b"\n", 1)[0].decode("utf-8-sig", "replace")]), [])
    if not header:
        return pa.table({})
    options = pa_csv.ConvertOptions(column_types={c: pa.binary() for c in header}, strings_can_be_null=True,
                                    null_values=[""])
    table = pa_csv.read_csv(io.BytesIO(content), convert_options=options,
                            read_options=pa_csv.ReadOptions(use_threads=False))
    converted = [_utf8(name, table.column(name).combine_chunks()) for name in table.column_names]
    return _with_unstorable(pa.table({n: c for n, (c, _) in zip(table.column_names, converted)}),
                            [e for _, e in converted])


def unstorable_rows(page: pa.Table) -> pa.Array | None:
    """Per row, why it cannot be stored: a cell read_csv or text_table could not take, a NUL character,
    or text beyond MAX_ROW_BYTES; None when every row is fine."""
    errors = [page.column(UNSTORABLE).combine_chunks()] if UNSTORABLE in page.column_names else []
    size = None
    for name in page.column_names:
        column = page.column(name).combine_chunks()
        if name == UNSTORABLE or column.type != pa.string():
            continue
        errors.append(pc.if_else(pc.fill_null(pc.match_substring(column, "\x00"), False),
                                 pa.scalar(f"NUL character in {name}"), pa.scalar(None, pa.string())))
        length = pc.fill_null(pc.binary_length(column), 0)
        size = length if size is None else pc.add(size, length)
    if size is not None:
        errors.append(pc.if_else(pc.greater(size, MAX_ROW_BYTES),
                                 pa.scalar(f"row beyond the warehouse's {MAX_ROW_BYTES:,} bytes"),
                                 pa.scalar(None, pa.string())))
    return first_error(errors)


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _text_column(name: str, cells: list[str | None]) -> tuple[pa.Array, pa.Array | None]:
    try:
        return pa.array(cells, pa.string()), None
    except (UnicodeEncodeError, pa.ArrowException):  # a lone surrogate ("\ud800" is valid JSON)
        problems = [None if cell is None else text_problem(cell) for cell in cells]
        return (pa.array([None if p else c for c, p in zip(cells, problems)], pa.string()),
                pa.array([f"{p} in {name}" if p else None for p in problems], pa.string()))


def text_table(records: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> pa.Table:
    """JSON-shaped records as the string columns a CSV page gives (true/false, numbers as text).

    A cell that is no storable text is null, and its row's reason is in the UNSTORABLE column.
    """
    records = list(records)
    converted = {c: _text_column(c, [_as_text(r.get(c)) for r in records]) for c in columns}
    return _with_unstorable(pa.table({c: array for c, (array, _) in converted.items()}),
                            [errors for _, errors in converted.values()])


def per_value(array: pa.Array, fn: Callable[[str], tuple], types: Sequence[pa.DataType]) -> tuple[list[pa.Array], pa.Array | None]:
    """fn applied to each distinct non-null value once; fn returns one value per output type.

    Nulls give nulls. A value fn raises on gives nulls and its error text.
    """
    encoded = array.dictionary_encode()
    outputs: list[list[Any]] = [[] for _ in types]
    errors: list[str | None] = []
    for value in encoded.dictionary.to_pylist():
        error_text: str | None = None
        try:
            produced = fn(value)
        except Exception as error:  # the record is rejected with this reason, the page goes on
            produced, error_text = (None,) * len(types), f"{type(error).__name__}: {error}"
        for output, item in zip(outputs, produced):
            output.append(item)
        errors.append(error_text)
    arrays = [pa.array(values, type=t).take(encoded.indices) for values, t in zip(outputs, types)]
    failed = pa.array(errors, pa.string()).take(encoded.indices) if any(errors) else None
    return arrays, failed


def _combine(fast: pa.Array, fast_values: Callable[[], list[pa.Array]], array: pa.Array,
             slow: Callable[[pa.Array], tuple[list[pa.Array], pa.Array | None]]) -> tuple[list[pa.Array], pa.Array | None]:
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
    return [pc.if_else(fast, f, v) for f, v in zip(fast_values(), slow_values)], errors


def _one(fast: pa.Array, fast_value: Callable[[], pa.Array], array: pa.Array, fn: Callable[[str], Any],
         out_type: pa.DataType) -> tuple[pa.Array, pa.Array | None]:
    """_combine for one output: fast_value() on the fast rows, fn per distinct value on the others."""
    (values,), errors = _combine(fast, lambda: [fast_value()], array,
                                 lambda rest: per_value(rest, lambda v: (fn(v),), [out_type]))
    return values, errors


def _only(mask: pa.Array, array: pa.Array) -> pa.Array:
    return pc.if_else(pc.fill_null(mask, False), array, pa.scalar(None, array.type))


def text(array: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """to_str column-wise: stripped text, blanks as null."""
    return _one(pc.match_substring_regex(array, _NOTHING_TO_STRIP), lambda: array, array, to_str, pa.string())


def boolean(array: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """to_bool column-wise."""
    return _one(pc.is_in(array, pa.array(["true", "false"])), lambda: pc.equal(array, "true"), array, to_bool,
                pa.bool_())


def int64(value: Any) -> int | None:
    """to_int, refusing a number beyond INT64 (the warehouse's integer)."""
    number = to_int(value)
    if number is not None and not -2**63 <= number < 2**63:
        raise ValueError(f"beyond INT64: {value!r}")
    return number


def integer(array: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """int64 column-wise: plain digits are cast, anything else ("12.0", "1e3", junk) takes int64."""
    fast = pc.match_substring_regex(array, _WHOLE)
    return _one(fast, lambda: _only(fast, array).cast(pa.int64()), array, int64, pa.int64())


def number(array: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """to_float column-wise: plain decimals are cast (Arrow parses them correctly rounded, as float() does)."""
    fast = pc.match_substring_regex(array, _DECIMAL)
    return _one(fast, lambda: _only(fast, array).cast(pa.float64()), array, to_float, pa.float64())


def timestamp(array: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """to_datetime column-wise: UTC microseconds; impossible dates are errors."""
    fast = pc.match_substring_regex(array, _UTC_ISO)
    try:
        cast = _only(fast, array).cast(TIMESTAMP)
    except pa.ArrowInvalid:  # e.g. a 13th month: the Python way names it
        return _one(pa.repeat(False, len(array)), lambda: pa.nulls(len(array), TIMESTAMP), array, to_datetime, TIMESTAMP)
    in_range = pc.and_(pc.greater_equal(cast, _EARLIEST), pc.less(cast, _LATEST))
    return _one(pc.and_(fast, in_range), lambda: cast, array, to_datetime, TIMESTAMP)


def date(array: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """to_date column-wise."""
    fast = pc.match_substring_regex(array, _ISO_DATE)
    try:
        cast = _only(fast, array).cast(pa.date32())
    except pa.ArrowInvalid:
        return _one(pa.repeat(False, len(array)), lambda: pa.nulls(len(array), pa.date32()), array, to_date, pa.date32())
    return _one(fast, lambda: cast, array, to_date, pa.date32())


def _email_parts(value: str) -> tuple[str | None, str | None]:
    email = normalize_email(value)
    return email, email_domain(email)


def emails(array: pa.Array) -> tuple[list[pa.Array], pa.Array | None]:
    """normalize_email and email_domain column-wise: [email, domain]. Addresses already in normal form
    (ALREADY_NORMAL, which normalize_email returns unchanged) skip Python."""
    fast = pc.and_(pc.match_substring_regex(array, ALREADY_NORMAL),
                   pc.less_equal(pc.find_substring(array, "@"), MAX_LOCAL_PART))
    return _combine(fast, lambda: [array, pc.replace_substring_regex(array, "^[^@]*@", "")], array,
                    lambda rest: per_value(rest, _email_parts, [pa.string(), pa.string()]))


def _phone_parts(value: str, region: str) -> tuple[str | None, str | None]:
    parsed = parse_phone(value, region)
    return parsed.e164, parsed.extension


def phones(array: pa.Array, regions: pa.Array | str) -> tuple[list[pa.Array], pa.Array | None]:
    """parse_phone column-wise, each number in its row's region (one region for all, or a column of them):
    [E.164, extension]. Each distinct (number, region) pair is parsed once; a row without a region has neither."""
    if isinstance(regions, str):
        return _phones_in(array, regions)
    distinct = pc.unique(regions).to_pylist()
    if not distinct:  # no rows
        return [pa.nulls(0, pa.string()), pa.nulls(0, pa.string())], None
    if len(distinct) == 1 and distinct[0] is not None:
        return _phones_in(array, distinct[0])
    # Each region's rows are read together, then put back in their places (the taken row numbers, concatenated,
    # are a permutation; its inverse orders the results).
    taken, outputs, errors = [], [], []
    for region in distinct:
        rows = pc.indices_nonzero(pc.is_null(regions) if region is None else pc.fill_null(pc.equal(regions, region), False))
        values = array.take(rows)
        if region is None:
            produced, failed = [pa.nulls(len(rows), pa.string()), pa.nulls(len(rows), pa.string())], None
        else:
            produced, failed = _phones_in(values, region)
        taken.append(rows)
        outputs.append(produced)
        errors.append(pa.nulls(len(rows), pa.string()) if failed is None else failed)
    back = pc.sort_indices(pa.concat_arrays(taken))
    e164, extension = (pa.concat_arrays([o[i] for o in outputs]).take(back) for i in (0, 1))
    failed_all = pa.concat_arrays(errors).take(back)
    return [e164, extension], failed_all if failed_all.null_count < len(failed_all) else None


def country_regions(countries: Sequence[pa.Array]) -> pa.Array:
    """Per row, the phone region of the first of `countries` that names a known country (region_for_country); null when none does."""
    found = [per_value(c, lambda v: (region_for_country(v),), [pa.string()])[0][0] for c in countries]
    return pc.coalesce(*found) if len(found) > 1 else found[0]


def calling_codes(regions: pa.Array) -> pa.Array:
    """Per row, the calling code ("+49") of a phone region; null for null."""
    return per_value(regions, lambda v: (country_calling_code(v),), [pa.string()])[0][0]


def _phones_in(array: pa.Array, region: str) -> tuple[list[pa.Array], pa.Array | None]:
    """parse_phone column-wise in one region: [E.164, extension]. Plain written forms valid in the region skip
    Python (the +1 plan's NANP_WRITTEN, any other region's PLAIN_WRITTEN and RegionPlan); the rest is parsed per value."""
    def slow(rest: pa.Array) -> tuple[list[pa.Array], pa.Array | None]:
        return per_value(rest, lambda v: _phone_parts(v, region), [pa.string(), pa.string()])

    read = _nanp_fast(array, region.upper()) or _plan_fast(array, region.upper())
    if read is None:
        return slow(array)
    fast, fast_values = read
    return _combine(fast, fast_values, array, slow)


FastRead = tuple[pa.Array, Callable[[], list[pa.Array]]]  # which rows, and [E.164, extension] for them


def _nanp_fast(array: pa.Array, region: str) -> FastRead | None:
    """The +1 plan's plain forms: digits from NANP_WRITTEN, validity from the region's own patterns, as in parse_phone."""
    validity = nanp_validity(region)
    if validity is None:
        return None
    parts = pc.extract_regex(array, f"^(?:{NANP_WRITTEN})$")
    national = pc.binary_join_element_wise(*(pc.struct_field(parts, g) for g in ("area", "area_bare", "exchange", "line")), "")
    try:
        fast = pc.and_(pc.match_substring_regex(national, f"^(?:{validity.general})$"),
                       pc.match_substring_regex(national, f"^(?:{validity.any_type})$"))
    except pa.ArrowInvalid:  # a metadata pattern RE2 does not take (none in the +1 regions today)
        return None

    def fast_values() -> list[pa.Array]:
        extension = pc.struct_field(parts, "extension")
        return [pc.binary_join_element_wise("+1", national, ""),
                pc.if_else(pc.equal(extension, ""), pa.scalar(None, pa.string()), extension)]
    return fast, fast_values


def _plan_fast(array: pa.Array, region: str) -> FastRead | None:
    """Any other region's plain forms, read as its RegionPlan says phonenumbers reads them."""
    plan = region_plan(region)
    if plan is None:
        return None
    parts = pc.extract_regex(array, PLAIN_WRITTEN)
    international = pc.not_equal(pc.struct_field(parts, "international"), "")
    digits = pc.replace_substring_regex(pc.struct_field(parts, "body"), "[^0-9]", "")
    with_code = pc.starts_with(digits, plan.country_code)
    try:
        national_form = pc.invert(pc.or_(with_code, pc.match_substring_regex(digits, f"^(?:{plan.international_prefix})")))
        rest = pc.if_else(international, pc.utf8_slice_codeunits(digits, len(plan.country_code)), digits)
        if plan.national_prefix:
            rest = _without_national_prefix(rest, plan)
        tagged = pc.binary_join_element_wise(pc.cast(pc.utf8_length(rest), pa.string()), rest, ":")
        valid = pc.and_(pc.match_substring_regex(tagged, f"^(?:{plan.general})$"),
                        pc.match_substring_regex(tagged, f"^(?:{plan.typed})$"))
    except pa.ArrowInvalid:  # a metadata pattern RE2 does not take: the full way reads the region
        return None
    fast = pc.and_(pc.if_else(international, with_code, national_form), valid)
    return fast, lambda: [pc.binary_join_element_wise(f"+{plan.country_code}", rest, ""),
                          pa.nulls(len(array), pa.string())]


def _without_national_prefix(digits: pa.Array, plan: RegionPlan) -> pa.Array:
    """The digits after the region's national prefix where it matches their start, with its transform rule's
    expansion before them where the prefix's last group took part (as phonenumbers' prefix stripping does)."""
    prefix = f"^(?:{plan.national_prefix})"
    after = pc.replace_substring_regex(digits, prefix, "", max_replacements=1)
    if not plan.transform or not plan.transform_when:
        return after
    groups = pc.extract_regex(digits, prefix)
    pieces = [pc.struct_field(groups, piece) if i % 2 else piece for i, piece in enumerate(plan.transform) if piece]
    transformed = pc.binary_join_element_wise(*pieces, after, "")
    return pc.if_else(pc.fill_null(pc.not_equal(pc.struct_field(groups, plan.transform_when), ""), False), transformed, after)


def first_error(errors: Sequence[pa.Array | None]) -> pa.Array | None:
    """Per row, the first non-null error text of the given columns (in their order); None if no row has one."""
    present = [e for e in errors if e is not None and e.null_count < len(e)]
    if not present:
        return None
    return pc.coalesce(*present) if len(present) > 1 else present[0]

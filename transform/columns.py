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
    PARSE_MAX_CHARS,
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
# The column read_csv adds when some row is malformed (more or fewer cells than the header): that row's raw
# text (null elsewhere); its cells are null and UNSTORABLE says why.
MALFORMED_ROW = "_csv_row"


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

    A cell that is not UTF-8 is null, and its row's reason is in the UNSTORABLE column. A row with more or fewer
    cells than the header is a row of nulls with its reason in UNSTORABLE and its raw text in MALFORMED_ROW.
    """
    # Only the header is decoded here (to type every column); Arrow reads the bytes, BOM included, as
    # binary first: one invalid byte, or one malformed row, must cost its record, not the page.
    header = next(csv.reader([content.split(b"\n", 1)[0].decode("utf-8-sig", "replace")]), [])
    if not header:
        return pa.table({})
    malformed: list[tuple[int, int, str]] = []  # (row number, cells, raw text)

    def skip(row: Any) -> str:
        malformed.append((row.number, row.actual_columns, row.text))
        return "skip"
    options = pa_csv.ConvertOptions(column_types={c: pa.binary() for c in header}, strings_can_be_null=True,
                                    null_values=[""])
    try:
        table = pa_csv.read_csv(io.BytesIO(content), convert_options=options,
                                # One block for the page: a cell longer than Arrow's 1 MB block cannot straddle two.
                                read_options=pa_csv.ReadOptions(use_threads=False, block_size=max(1 << 20, len(content) + 1)),
                                parse_options=pa_csv.ParseOptions(invalid_row_handler=skip))
    except pa.ArrowInvalid:  # Arrow cannot hand over a malformed row that is not UTF-8 either: Python reads the page
        table, malformed = _csv_rows(content, header)
    converted = [_utf8(name, table.column(name).combine_chunks()) for name in table.column_names]
    return _with_malformed(_with_unstorable(pa.table({n: c for n, (c, _) in zip(table.column_names, converted)}),
                                            [e for _, e in converted]), malformed, len(header))


def _csv_rows(content: bytes, header: Sequence[str]) -> tuple[pa.Table, list[tuple[int, int, str]]]:
    """read_csv's parse in Python, for a page Arrow cannot read: the well-formed rows as binary cells, and each
    malformed row's (number, cells, text with the bytes that are not UTF-8 escaped)."""
    csv.field_size_limit(max(csv.field_size_limit(), len(content)))  # a cell may be as long as the page
    rows = csv.reader(io.StringIO(content.decode("utf-8-sig", "surrogateescape"), newline=""))
    next(rows, None)
    cells: list[list[bytes | None]] = [[] for _ in header]
    malformed = []
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            text = io.StringIO()
            csv.writer(text, lineterminator="", quoting=csv.QUOTE_ALL).writerow(row)
            raw = text.getvalue().encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            malformed.append((number, len(row), raw))
            continue
        for column, cell in zip(cells, row):
            column.append(cell.encode("utf-8", "surrogateescape") if cell else None)
    return pa.table({name: pa.array(column, pa.binary()) for name, column in zip(header, cells)}), malformed


def _with_malformed(table: pa.Table, malformed: Sequence[tuple[int, int, str]], width: int) -> pa.Table:
    """The table with a row of nulls for each malformed row: its reason in UNSTORABLE, its text in MALFORMED_ROW."""
    if not malformed:
        return table
    if UNSTORABLE not in table.column_names:
        table = table.append_column(UNSTORABLE, pa.nulls(table.num_rows, pa.string()))
    table = table.append_column(MALFORMED_ROW, pa.nulls(table.num_rows, pa.string()))
    extra = {name: pa.nulls(len(malformed), pa.string()) for name in table.column_names}
    extra[UNSTORABLE] = pa.array([f"malformed CSV row {number}: {cells} cells where the header has {width}"
                                  for number, cells, _ in malformed], pa.string())
    extra[MALFORMED_ROW] = pa.array([text for _, _, text in malformed], pa.string())
    return pa.concat_tables([table, pa.table(extra).select(table.column_names)])


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


class _NotAValue(str):
    """What _as_text gives for a JSON object or array: no cell's text, the kind of thing it was."""


_JSON_KINDS = ((Mapping, _NotAValue("object")), ((list, tuple), _NotAValue("array")))


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):  # the common case first: the abstract Mapping check costs ten times more
        return str(value)
    # str() of an object or array would store "OrderedDict([...])" or "['x', 'y']" as if Salesforce sent it.
    return next((kind for types, kind in _JSON_KINDS if isinstance(value, types)), None) or str(value)


def _text_column(name: str, cells: list[str | None]) -> tuple[pa.Array, pa.Array | None]:
    if any(cell.__class__ is _NotAValue for cell in cells):
        problems = [f"a JSON {cell} in {name}, not a value" if cell.__class__ is _NotAValue else None for cell in cells]
        values, errors = _text_column(name, [None if p else c for c, p in zip(cells, problems)])
        problem_column = pa.array(problems, pa.string())
        return values, problem_column if errors is None else pc.coalesce(problem_column, errors)
    try:
        return pa.array(cells, pa.string()), None
    except (UnicodeEncodeError, pa.ArrowException):  # a lone surrogate ("\ud800" is valid JSON)
        problems = [None if cell is None else text_problem(cell) for cell in cells]
        return (pa.array([None if p else c for c, p in zip(cells, problems)], pa.string()),
                pa.array([f"{p} in {name}" if p else None for p in problems], pa.string()))


def text_table(records: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> pa.Table:
    """JSON-shaped records as the string columns a CSV page gives (true/false, numbers as text).

    A cell that is no storable text (a JSON object or array among them) is null, and its row's reason is in the
    UNSTORABLE column.
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
    """normalize_email and email_domain column-wise: [email, domain]. An address that is in normal form
    (ALREADY_NORMAL, which normalize_email returns unchanged) once ASCII whitespace around it, upper-case ASCII
    letters and dots after its domain are undone, as normalize_email undoes them, skips Python."""
    plain = pc.utf8_rtrim(pc.ascii_lower(pc.ascii_trim_whitespace(array)), characters=".")
    fast = pc.and_(pc.match_substring_regex(plain, ALREADY_NORMAL),
                   pc.less_equal(pc.find_substring(plain, "@"), MAX_LOCAL_PART))
    return _combine(fast, lambda: [plain, pc.replace_substring_regex(plain, "^[^@]*@", "")], array,
                    lambda rest: per_value(rest, _email_parts, [pa.string(), pa.string()]))


def _phone_parts(value: str, region: str) -> tuple[str | None, str | None]:
    parsed = parse_phone(value, region)
    return parsed.e164, parsed.extension


def _tagged_phone_parts(tagged: str) -> tuple[str | None, str | None]:
    """_phone_parts of "<length of region>:<region>|<value>" (the length: a region may hold any character)."""
    length, _, rest = tagged.partition(":")
    return _phone_parts(rest[int(length) + 1:], rest[:int(length)])


def phones(array: pa.Array, regions: pa.Array | str, fallback: str | None = None) -> tuple[list[pa.Array], pa.Array | None]:
    """parse_phone column-wise, each number in its row's region (one region for all, or a column of them):
    [E.164, extension]. A row without a region has neither. With a fallback region, parse_phone_or_fallback
    column-wise: the numbers invalid in their row's region (only those) are read again, column-wise, in it.
    """
    (e164, extension), errors = _phones_in(array, regions)
    if not fallback:
        return [e164, extension], errors
    row_regions = pa.repeat(pa.scalar(regions, pa.string()), len(array)) if isinstance(regions, str) else regions
    retry = pc.and_(pc.and_(pc.is_null(e164), pc.is_valid(array)),
                    pc.not_equal(pc.utf8_upper(row_regions), fallback.upper()))
    if not pc.any(pc.fill_null(retry, False)).as_py():
        return [e164, extension], errors
    (again, again_extension), _ = _phones_in(_only(retry, array), fallback)
    found = pc.fill_null(pc.and_(retry, pc.is_valid(again)), False)
    return [pc.if_else(found, again, e164), pc.if_else(found, again_extension, extension)], errors


def _phones_in(array: pa.Array, regions: pa.Array | str) -> tuple[list[pa.Array], pa.Array | None]:
    """phones without a fallback: each number in its row's region.

    Plain written forms valid in their region skip Python: the +1 plan's (NANP_WRITTEN), a region at a time,
    and every other region's with a RegionPlan, all at once. The rest is parsed once per distinct (region, number).
    """
    regions = pc.utf8_upper(pa.repeat(pa.scalar(regions, pa.string()), len(array)) if isinstance(regions, str) else regions)
    distinct = [r for r in pc.unique(regions).to_pylist() if r is not None]
    nanp = [r for r in distinct if nanp_validity(r)]
    reads = [read for read in (_nanp_fast(_only(pc.equal(regions, r), array), r) for r in nanp) if read]
    plans = {r: plan for r in distinct if r not in nanp and (plan := region_plan(r))}
    planned = _plans_fast(_only(pc.is_in(regions, pa.array(list(plans), pa.string())), array), regions, plans) if plans else None
    reads += [planned] if planned else []

    def slow(rest: pa.Array) -> tuple[list[pa.Array], pa.Array | None]:
        tagged = pc.binary_join_element_wise(pc.cast(pc.utf8_length(regions), pa.string()), ":", regions, "|", rest, "")
        return per_value(tagged, _tagged_phone_parts, [pa.string(), pa.string()])

    if not reads:
        return slow(array)
    fast = reads[0][0]
    for mask, _ in reads[1:]:
        fast = pc.or_(pc.fill_null(fast, False), pc.fill_null(mask, False))

    def fast_values() -> list[pa.Array]:
        outputs = [pa.nulls(len(array), pa.string()), pa.nulls(len(array), pa.string())]
        for mask, values in reads:
            outputs = [pc.if_else(pc.fill_null(mask, False), new, old) for new, old in zip(values(), outputs)]
        return outputs
    return _combine(fast, fast_values, array, slow)


def country_regions(countries: Sequence[pa.Array]) -> pa.Array:
    """Per row, the phone region of the first of `countries` that names a known country (region_for_country); null when none does."""
    found = [per_value(c, lambda v: (region_for_country(v),), [pa.string()])[0][0] for c in countries]
    return pc.coalesce(*found) if len(found) > 1 else found[0]


def calling_codes(regions: pa.Array) -> pa.Array:
    """Per row, the calling code ("+49") of a phone region; null for null."""
    return per_value(regions, lambda v: (country_calling_code(v),), [pa.string()])[0][0]


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


def _keyed(patterns: Mapping[str, str]) -> str:
    """One pattern for "<region>|<text>" strings: each region's own pattern after its name."""
    return "^(?:" + "|".join(f"{region}\\|(?:{pattern})" for region, pattern in patterns.items()) + ")"


def _plans_fast(array: pa.Array, regions: pa.Array, plans: Mapping[str, RegionPlan]) -> FastRead | None:
    """The plain forms of the regions with a RegionPlan, read as the plans say phonenumbers reads them: all
    regions in one pass, each row's text led by its region's name ("DE|030...") and matched by patterns keyed
    by region (one regular expression per step, not one per region)."""
    # parse_phone strips the text first (" 0049..." is international) and phonenumbers refuses over 250 characters.
    text = pc.ascii_trim_whitespace(array)
    parts = pc.extract_regex(_only(pc.less_equal(pc.utf8_length(text), PARSE_MAX_CHARS), text), PLAIN_WRITTEN)
    international = pc.not_equal(pc.struct_field(parts, "international"), "")
    digits = pc.replace_substring_regex(pc.struct_field(parts, "body"), "[^0-9]", "")
    tagged = pc.binary_join_element_wise(regions, digits, "|")
    codes = _keyed({r: p.country_code for r, p in plans.items()})
    try:
        with_code = pc.match_substring_regex(tagged, codes)
        national_form = pc.invert(pc.or_(with_code, pc.match_substring_regex(
            tagged, _keyed({r: p.international_prefix for r, p in plans.items()}))))
        rest = pc.if_else(international, pc.replace_substring_regex(tagged, codes, "", max_replacements=1), digits)
        national = _without_national_prefix(pc.binary_join_element_wise(regions, rest, "|"), regions, plans)
        lengths = pc.cast(pc.utf8_length(national), pa.string())
        measured = pc.binary_join_element_wise(regions, "|", lengths, ":", national, "")
        valid = pc.and_(pc.match_substring_regex(measured, _keyed({r: p.general for r, p in plans.items()}) + "$"),
                        pc.match_substring_regex(measured, _keyed({r: p.typed for r, p in plans.items()}) + "$"))
    except pa.ArrowInvalid:  # a metadata pattern RE2 does not take: the full way reads these rows
        return None
    fast = pc.and_(pc.if_else(international, with_code, national_form), valid)
    country_codes = pa.array([p.country_code for p in plans.values()], pa.string()).take(
        pc.index_in(regions, value_set=pa.array(list(plans), pa.string())))
    return fast, lambda: [pc.binary_join_element_wise("+", country_codes, national, ""), pa.nulls(len(array), pa.string())]


def _without_national_prefix(tagged: pa.Array, regions: pa.Array, plans: Mapping[str, RegionPlan]) -> pa.Array:
    """The digits of "<region>|<digits>" after the region's national prefix where it matches their start, with its
    transform rule's expansion before them where the prefix's last group took part (phonenumbers' prefix stripping)."""
    with_prefix = {r: p.national_prefix for r, p in plans.items() if p.national_prefix}
    if not with_prefix:
        return pc.replace_substring_regex(tagged, r"^[^|]*\|", "", max_replacements=1)
    prefixes = _keyed(with_prefix)
    after = pc.replace_substring_regex(tagged, prefixes, "", max_replacements=1)
    after = pc.replace_substring_regex(after, r"^[^|]*\|", "", max_replacements=1)  # a region whose prefix did not match
    transforming = [p for p in plans.values() if p.transform]
    if not transforming:
        return after
    groups = pc.extract_regex(tagged, prefixes)
    for plan in transforming:
        pieces = [pc.struct_field(groups, piece) if i % 2 else piece for i, piece in enumerate(plan.transform) if piece]
        took_part = pc.and_(pc.equal(regions, plan.region), pc.not_equal(pc.struct_field(groups, plan.transform_when), ""))
        after = pc.if_else(pc.fill_null(took_part, False), pc.binary_join_element_wise(*pieces, after, ""), after)
    return after


def first_error(errors: Sequence[pa.Array | None]) -> pa.Array | None:
    """Per row, the first non-null error text of the given columns (in their order); None if no row has one."""
    present = [e for e in errors if e is not None and e.null_count < len(e)]
    if not present:
        return None
    return pc.coalesce(*present) if len(present) > 1 else present[0]

"""Coercion of API values to Python types, for JSON and CSV sources alike (pure, no I/O).

APIs send the same field as a JSON number, a JSON string ("1002"), a CSV cell ("" for null) or
epoch milliseconds; these functions accept all of them and raise ValueError on nonsense, so a
transform can turn that into a rejected record with the reason.

poison_reason finds what no warehouse stores (a lone surrogate, which valid JSON can carry as
"\ud800"; a NUL character; a row beyond BigQuery's row size): the record is rejected, not the run.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

_TRUE = {"true", "1", "yes", "t"}
_FALSE = {"false", "0", "no", "f"}
# Anything before 1990 or after 2100 is a broken clock or a unit mix-up, not an event.
_EARLIEST = datetime(1990, 1, 1, tzinfo=timezone.utc)
_LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)
MAX_ROW_BYTES = 100 * 1024 * 1024  # BigQuery's maximum row size (load jobs and query results)


def blank(value: Any) -> bool:
    """True for None and empty or whitespace-only strings."""
    return value is None or (isinstance(value, str) and not value.strip())


def to_str(value: Any) -> str | None:
    """A stripped string, or None for blanks."""
    if blank(value):
        return None
    return str(value).strip()


def to_bool(value: Any) -> bool | None:
    """true/false from a bool, "true"/"false", 1/0; None for blanks."""
    if blank(value):
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def to_int(value: Any) -> int | None:
    """An int from a number or a numeric string ("1002", "12.0"); None for blanks."""
    if blank(value):
        return None
    if isinstance(value, bool):
        raise ValueError(f"not an integer: {value!r}")
    if isinstance(value, int):
        return value
    number = float(str(value).strip())
    if not number.is_integer():
        raise ValueError(f"not an integer: {value!r}")
    return int(number)


def to_float(value: Any) -> float | None:
    """A float from a number or numeric string; None for blanks."""
    if blank(value):
        return None
    return float(str(value).strip()) if not isinstance(value, (int, float)) else float(value)


def _checked(moment: datetime, original: Any) -> datetime:
    if not _EARLIEST <= moment < _LATEST:
        raise ValueError(f"impossible date: {original!r}")
    return moment


def to_datetime(value: Any) -> datetime | None:
    """A UTC datetime from a datetime, an ISO-8601 string (Salesforce's +0000 too) or epoch ms; None for blanks."""
    try:
        return _to_datetime(value)
    except (OverflowError, OSError):  # year 9999 with a negative offset, epoch ms beyond any calendar
        raise ValueError(f"impossible date: {value!r}") from None


def _to_datetime(value: Any) -> datetime | None:
    if blank(value):
        return None
    if isinstance(value, datetime):
        aware = value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return _checked(aware, value)
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        return _checked(datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc), value)
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = f"{text[:-2]}:{text[-2:]}"  # +0000 -> +00:00
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return _checked(moment.astimezone(timezone.utc), value)


def to_date(value: Any) -> date | None:
    """A date from a date or YYYY-MM-DD string; None for blanks."""
    if blank(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value).strip()[:10])


def text_problem(text: str) -> str | None:
    """Why a text cannot be stored (a NUL character, a lone surrogate), or None."""
    if "\x00" in text:
        return f"NUL character at offset {text.index(chr(0))}"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"not Unicode text: lone surrogate {text[error.start]!r} at offset {error.start}"
    return None


def poison_reason(value: Any) -> str | None:
    """Why a row (or any value: dicts and lists are walked) cannot be stored, or None.

    A text with a NUL or a lone surrogate, or texts together beyond MAX_ROW_BYTES.
    """
    size = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if item.isascii():  # no lone surrogate is ASCII: only a NUL can be wrong (the common case, kept cheap)
                if "\x00" in item:
                    return text_problem(item)
                size += len(item)
                continue
            problem = text_problem(item)
            if problem:
                return problem
            size += len(item.encode("utf-8"))
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
    if size > MAX_ROW_BYTES:
        return f"row of {size:,} bytes of text, beyond the warehouse's {MAX_ROW_BYTES:,}"
    return None


def storable_text(text: str) -> str:
    """text with lone surrogates and NUL characters written as escapes, so a rejected record's raw text stores."""
    if text_problem(text) is None:
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch (Dialpad's and HubSpot's timestamps)."""
    return int(moment.timestamp() * 1000)


def json_ready(value: Any) -> Any:
    """A value as JSON carries it (a load job's rows, the analysts' JSON and CSV): times in ISO 8601 (UTC when
    zoned), NUMERIC as its exact text, lists and records value by value."""
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

"""Coercion of API values to Python types, for JSON and CSV sources alike (pure, no I/O).

APIs send the same field as a JSON number, a JSON string ("1002"), a CSV cell ("" for null) or
epoch milliseconds; these functions accept all of them and raise ValueError on nonsense, so a
transform can turn that into a rejected record with the reason.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

_TRUE = {"true", "1", "yes", "t"}
_FALSE = {"false", "0", "no", "f"}
# Anything before 1990 or after 2100 is a broken clock or a unit mix-up, not an event.
_EARLIEST = datetime(1990, 1, 1, tzinfo=timezone.utc)
_LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)


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

"""Amounts and dates as spreadsheets write them, read the way the file they come from writes them (pure).

A value alone is ambiguous (`1,234` is a thousand or one point two; `03/04/2026` is March or April), the file
is not: `decimal_mark` and `day_first` decide once per file from a sample of its column, and `parse_amount` /
`parse_date` then read every cell of it the same way.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Iterable

# Symbols and codes a CRM export writes beside an amount, and the ISO 4217 code each stands for.
CURRENCY_SYMBOLS = {"€": "EUR", "$": "USD", "US$": "USD", "£": "GBP", "¥": "JPY", "₹": "INR", "CHF": "CHF",
                    "kr": "SEK", "R$": "BRL", "A$": "AUD", "C$": "CAD", "zł": "PLN"}
_CODE = re.compile(r"\b([A-Z]{3})\b")
_SYMBOL = re.compile(r"US\$|R\$|A\$|C\$|zł|kr|[€$£¥₹]")
_SPACES = re.compile(r"[\s\u00a0\u202f']")  # thousands groups: space, no-break spaces, Swiss apostrophe
_TWO_DECIMALS = re.compile(r"[.,]\d{1,2}$")
_NUMERIC_DATE = re.compile(r"^(\d{1,4})[/.\-](\d{1,2})[/.\-](\d{1,4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_TEXT_DATE_FORMATS = ("%b %d, %Y", "%B %d, %Y", "%d %b %Y", "%d %B %Y", "%d-%b-%Y", "%d-%b-%y")


@dataclass(frozen=True)
class Amount:
    value: Decimal
    currency: str | None


def currency_of(text: str) -> str | None:
    """The ISO code an amount's text names by symbol or code (`1.234,56 €` -> EUR), or None."""
    symbol = _SYMBOL.search(text)
    if symbol:
        return CURRENCY_SYMBOLS[symbol.group(0)]
    code = _CODE.search(text)
    return code.group(1) if code else None


def _digits_and_marks(text: str) -> str:
    """The amount's text without currency, spaces and sign decoration: digits, `.` and `,` (and a leading -)."""
    negative = text.strip().startswith("(") and text.strip().endswith(")") or "-" in text
    body = _SPACES.sub("", _CODE.sub("", _SYMBOL.sub("", text))).strip("()+-")
    return ("-" if negative else "") + body


def decimal_mark(samples: Iterable[str], delimiter: str) -> str:
    """`.` or `,`: the file's decimal mark, from its amounts (the last mark of a value with both; a mark
    before one or two final digits), else from the delimiter (a semicolon file is European Excel's)."""
    votes = {".": 0, ",": 0}
    for text in samples:
        body = _digits_and_marks(text)
        if "." in body and "," in body:
            votes[max(".,", key=body.rfind)] += 1
        elif _TWO_DECIMALS.search(body):
            votes[body[-3] if body[-3] in ".," else body[-2]] += 1
    if votes["."] != votes[","]:
        return max(votes, key=lambda mark: votes[mark])
    return "," if delimiter == ";" else "."


def parse_amount(text: str | None, mark: str) -> Amount | None:
    """The amount of a cell in a file whose decimal mark is `mark`; None for a blank; ValueError for text that is
    not an amount."""
    if text is None or not text.strip():
        return None
    body = _digits_and_marks(text)
    grouping = "," if mark == "." else "."
    number = body.replace(grouping, "").replace(mark, ".")
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise ValueError(f"not an amount: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not an amount: {text!r}")
    return Amount(value, currency_of(text))


def parse_percent(text: str | None, mark: str) -> float | None:
    """A probability in percent (`75`, `75 %`; `0.75` without a sign read as a fraction); None for a blank."""
    amount = parse_amount((text or "").replace("%", ""), mark)
    if amount is None:
        return None
    value = float(amount.value)
    if "%" not in (text or "") and 0 < value < 1:
        value *= 100
    if not 0 <= value <= 100:
        raise ValueError(f"not a probability: {text!r}")
    return value


def day_first(samples: Iterable[str], delimiter: str) -> bool:
    """Whether the file writes dates day first: a first part over 12 says so, a second part over 12 says not;
    dotted dates are day first; otherwise a semicolon file is European Excel's (day first), a comma one American."""
    for text in samples:
        match = _NUMERIC_DATE.match(text.strip())
        if not match or len(match.group(1)) == 4:
            continue
        first, second = int(match.group(1)), int(match.group(2))
        if first > 12 >= second or "." in text:
            return True
        if second > 12 >= first:
            return False
    return delimiter == ";"


def parse_date(text: str | None, first_is_day: bool) -> date | None:
    """The date of a cell (ISO, numeric in the file's order, `Dec 31, 2026`, with or without a time); None for a
    blank; ValueError otherwise."""
    if text is None or not text.strip():
        return None
    stripped = text.strip()
    match = _NUMERIC_DATE.match(stripped)
    if match:
        a, b, c = (int(part) for part in match.group(1, 2, 3))
        if len(match.group(1)) == 4:
            year, month, day = a, b, c
        else:
            day, month = (a, b) if first_is_day else (b, a)
            year = c + 2000 if c < 100 else c
        try:
            return date(year, month, day)
        except ValueError:
            raise ValueError(f"not a date: {text!r}") from None
    for form in _TEXT_DATE_FORMATS:
        try:
            return datetime.strptime(stripped.split(" 00:00")[0], form).date()
        except ValueError:
            continue
    raise ValueError(f"not a date: {text!r}")

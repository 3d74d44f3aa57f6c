"""Phone numbers as people write them -> E.164, with the extension kept apart.

phonenumbers does the parsing (vanity letters included). A national number is read in the default
region from settings; "00" international prefixes are read as "+". A number is given an E.164 form
only when phonenumbers says it is valid: an invalid one keeps its raw text and a reason, never a guess.
Each distinct (value, region) is parsed once (parsing costs ~40 us).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

_HAS_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class ParsedPhone:
    """The outcome of reading one phone number."""

    raw: str
    e164: str | None
    extension: str | None
    country_code: int | None
    reason: str | None  # why there is no E.164 form

    @property
    def is_valid(self) -> bool:
        return self.e164 is not None


_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    NumberParseException.NOT_A_NUMBER: "not a number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}


def _is_valid(number: phonenumbers.PhoneNumber, region: str) -> bool:
    # is_valid_number first finds the number's region, scanning every region of a shared country code
    # (25 for +1); most numbers are from the default region, so ask that region first.
    if number.country_code == phonenumbers.country_code_for_region(region) and \
            phonenumbers.is_valid_number_for_region(number, region):
        return True
    return phonenumbers.is_valid_number(number)


@lru_cache(maxsize=16_384)
def parse_phone(value: str | None, default_region: str = "US") -> ParsedPhone:
    """The number in value read with default_region for national formats."""
    raw = (value or "").strip()
    if not _HAS_DIGIT.search(raw):
        return ParsedPhone(raw=raw, e164=None, extension=None, country_code=None, reason="no number")
    text = raw.replace("\u00a0", " ")
    if text.startswith("00"):
        # The international prefix most of the world dials; phonenumbers reads it only in those regions.
        text = "+" + text[2:].lstrip()
    try:
        number = phonenumbers.parse(text, default_region.upper())
    except NumberParseException as error:
        return ParsedPhone(raw=raw, e164=None, extension=None, country_code=None,
                           reason=_PARSE_ERRORS.get(error.error_type, "not a number"))
    extension = number.extension or None
    if not _is_valid(number, default_region.upper()):
        return ParsedPhone(raw=raw, e164=None, extension=extension, country_code=number.country_code,
                           reason="not a valid number")
    return ParsedPhone(raw=raw, e164=phonenumbers.format_number(number, PhoneNumberFormat.E164),
                       extension=extension, country_code=number.country_code, reason=None)


def to_e164(value: str | None, default_region: str = "US") -> str | None:
    """The E.164 form of value, or None when it is not a valid number."""
    return parse_phone(value, default_region).e164


def last_ten_digits(e164: str | None) -> str | None:
    """The last ten digits of an E.164 number's national part (a weak key, for suggestions only)."""
    if not e164:
        return None
    try:
        national = str(phonenumbers.parse(e164, None).national_number)
    except NumberParseException:
        return None
    return national[-10:] if len(national) >= 10 else None

"""Phone numbers as people write them -> E.164, with the extension kept apart.

phonenumbers does the parsing (vanity letters included). A national number is read in the region of
the record's own country (region_for_country: ISO codes or names as CRMs hold them, from pycountry),
else in the default region from settings; "00" international prefixes are read as "+". A number is given an E.164 form
only when phonenumbers says it is valid: an invalid one keeps its raw text and a reason, never a guess.
Each distinct (value, region) is parsed once (parsing costs ~20 us).

Whole columns skip phonenumbers where its outcome is known from patterns. North American numbers in a
handful of written forms ("(415) 555-0123", "+1 415.555.0123", "1-415-555-0123"), with a default region
of the +1 plan: the digits come out of one regex (NANP_WRITTEN) and the region's own metadata patterns say
whether the number is valid, exactly as is_valid_number_for_region does (general pattern, then any number
type, each with its possible lengths). Any other region's plain forms (digits and separators, nationally or
after "+"/"00"): RegionPlan, the same steps with the region's country code, international and national
prefixes and transform rule. Whatever a fast path does not accept goes the full way; tests compare both on
every region's numbers and on many forms.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import phonenumbers
import pycountry
from phonenumbers import NumberParseException, PhoneNumberFormat

from transform.country_names import country_names, folded

_HAS_DIGIT = re.compile(r"\d")
# The plain written forms of the fast path: +1 / 1 prefix, area code (in parentheses or not), exchange, line,
# extension; ASCII digits and separators only. Area code and exchange start with 2-9, so phonenumbers can
# neither strip a national prefix nor see a leading zero. Named groups: transform.columns runs it in Arrow too.
NANP_WRITTEN = (r"(?:\+?1[ .-]?)?(?:\((?P<area>[2-9]\d\d)\)|(?P<area_bare>[2-9]\d\d))[ .-]?(?P<exchange>[2-9]\d\d)"
                r"[ .-]?(?P<line>\d{4})(?: ?(?:x|ext\.?) ?(?P<extension>\d{1,6}))?")
_NANP_WRITTEN = re.compile(NANP_WRITTEN, re.ASCII)
_TYPE_DESCS = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail",
               "fixed_line", "mobile")


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


class NanpValidity:
    """is_valid_number_for_region of a +1 region, for ten-digit national numbers: two of its own patterns.

    phonenumbers calls a number valid when it matches the general pattern and any number type's pattern
    (a type whose possible lengths exclude the length, or that has no pattern, matches nothing).
    """

    def __init__(self, general: str, any_type: str):
        self.general, self.any_type = general, any_type
        self._general = re.compile(general, re.ASCII)
        self._any_type = re.compile(any_type, re.ASCII)

    def is_valid(self, national: str) -> bool:
        return self._general.fullmatch(national) is not None and self._any_type.fullmatch(national) is not None


@lru_cache(maxsize=1024)
def nanp_validity(region: str) -> NanpValidity | None:
    """The fast path's validity check for a region of the +1 plan; None elsewhere."""
    if phonenumbers.country_code_for_region(region) != 1:
        return None
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    general = metadata.general_desc if metadata else None
    if general is None or not general.national_number_pattern or (general.possible_length and 10 not in general.possible_length):
        return None
    types = [d.national_number_pattern for d in (getattr(metadata, name) for name in _TYPE_DESCS)
             if d and d.national_number_pattern and (not d.possible_length or 10 in d.possible_length)]
    if not types:
        return None
    return NanpValidity(general.national_number_pattern, "|".join(f"(?:{p})" for p in types))


# Written forms every region's plan reads column-wise: "+" or "00", then ASCII digits and the separators
# people type ( .-/()); no letters, no extension. Named groups: transform.columns runs it in Arrow.
PARSE_MAX_CHARS = 250  # phonenumbers.parse refuses longer text as too long
PLAIN_WRITTEN = r"^(?P<international>\+|00)?(?P<body>[0-9 ().\-/]*[0-9][0-9 ().\-/]*)$"


@dataclass(frozen=True)
class RegionPlan:
    """A region's numbering plan as patterns: what phonenumbers.parse and is_valid_number_for_region do with
    a number in a PLAIN_WRITTEN form, for reading whole columns without phonenumbers.

    Read in the region, such a number's digits go: after "+" or "00", the country code (no shorter start of
    it is a code, checked, so phonenumbers reads exactly it) and the rest; written nationally, all of them,
    unless they start with the country code or the international prefix (phonenumbers may then take them
    as international: the full way decides). Then the national prefix is dropped where its pattern matches
    the start, and where the pattern's last group took part and the region has a transform rule, the rule's
    expansion goes before the rest ("0(11)..." -> "11..." in Gabon). phonenumbers keeps the digits as they
    were only when the result is not a valid number or not of a possible length, which this plan never
    accepts. The result is the national significant number, leading zeros included, and valid when the
    general description and one number type's description take it: its pattern, and its possible lengths
    (the general ones without those valid only locally). Both patterns here read "<length>:<number>", so
    one match checks both. E.164 is then "+", the code and that number.

    Regions sharing their code's metadata with a main region (Jersey under +44) and the +1 plan (its own fast
    path) have no plan.
    """

    region: str
    country_code: str
    national_prefix: str | None  # its capturing groups named <region>_g1, ... (Arrow's extract_regex reads named groups)
    transform: tuple[str, ...]  # the rule (literal text, group name, literal text, ...); () when there is none
    transform_when: str  # the prefix's last group: the rule applies where it took part
    international_prefix: str
    general: str
    typed: str


@lru_cache(maxsize=1024)
def region_plan(region: str) -> RegionPlan | None:
    """The plan of a region other than +1 whose parse is patterns only; None where the full way must read."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.country_code in (None, 1):
        return None
    code = str(metadata.country_code)
    if phonenumbers.region_code_for_country_code(metadata.country_code) != region or \
            any(int(code[:n]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE for n in range(1, len(code))):
        return None
    general = metadata.general_desc
    if general is None or not general.national_number_pattern or not metadata.international_prefix:
        return None
    lengths = [n for n in general.possible_length if n not in set(general.possible_length_local_only or ())]
    typed = [f"{_lengths(d.possible_length or lengths)}:(?:{d.national_number_pattern})"
             for d in (getattr(metadata, name) for name in _TYPE_DESCS) if d and d.national_number_pattern]
    prefix = _named_groups(metadata.national_prefix_for_parsing or "", f"{region}_g")
    if not lengths or not typed or prefix is None:
        return None
    transform: tuple[str, ...] = ()
    if metadata.national_prefix_transform_rule and prefix[1]:
        transform = tuple(f"{region}_g{piece}" if i % 2 else piece
                          for i, piece in enumerate(re.split(r"\\(\d)", metadata.national_prefix_transform_rule)))
    return RegionPlan(region=region, country_code=code, national_prefix=prefix[0] or None, transform=transform,
                      transform_when=f"{region}_g{prefix[1]}" if transform else "",
                      international_prefix=metadata.international_prefix,
                      general=f"{_lengths(lengths)}:(?:{general.national_number_pattern})", typed="|".join(typed))


def _named_groups(pattern: str, name: str) -> tuple[str, int] | None:
    """pattern with its capturing groups named <name>1, <name>2, ... in order, and their number; None when a group can
    match the empty string (Arrow gives "" for a group that took no part: "" must not also be a match)."""
    named: list[str] = []
    opened: list[tuple[int, int]] = []  # where each open group starts, and its number (0: not capturing)
    texts: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            named.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class or char == "[":
            in_class = char != "]" or pattern[i - 1] == "["  # "[]...]": a "]" first in a class is itself
        elif char == "(":
            group = 0 if pattern.startswith("(?", i) else len(texts) + 1
            opened.append((i, group))
            if group:
                texts.append("")
                named.append(f"(?P<{name}{group}>")
                i += 1
                continue
        elif char == ")":
            start, group = opened.pop()
            if group:
                texts[group - 1] = pattern[start + 1:i]
        named.append(char)
        i += 1
    if len(texts) != re.compile(pattern).groups or any(re.fullmatch(t, "") for t in texts):
        return None
    return "".join(named), len(texts)


def _lengths(lengths: Sequence[int]) -> str:
    return f"(?:{'|'.join(str(n) for n in lengths)})"


def _nanp_read(text: str, region: str) -> tuple[str, str | None] | None:
    """The fast path: (E.164, extension) of a valid +1 number in a plain written form, or None to go the full way."""
    validity = nanp_validity(region)
    if validity is None:
        return None
    written = _NANP_WRITTEN.fullmatch(text)
    if written is None:
        return None
    national = f"{written['area'] or written['area_bare']}{written['exchange']}{written['line']}"
    if not validity.is_valid(national):
        return None  # maybe valid in another +1 region: the full way decides
    return f"+1{national}", written["extension"]


@lru_cache(maxsize=16_384)
def parse_phone(value: str | None, default_region: str = "US") -> ParsedPhone:
    """The number in value read with default_region for national formats."""
    raw = (value or "").strip()
    if not _HAS_DIGIT.search(raw):
        return ParsedPhone(raw=raw, e164=None, extension=None, country_code=None, reason="no number")
    text = raw.replace("\u00a0", " ")
    fast = _nanp_read(text, default_region.upper())
    if fast is not None:
        return ParsedPhone(raw=raw, e164=fast[0], extension=fast[1], country_code=1, reason=None)
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


def parse_phone_or_fallback(value: str | None, region: str, fallback: str | None) -> ParsedPhone:
    """The number in value read in region; when it is no valid number there, read in fallback (the org's own region:
    a US org writes `011 44 20 7686 5244`, its own international prefix, on a UK contact), if valid there."""
    parsed = parse_phone(value, region)
    if parsed.e164 is not None or not fallback or fallback.upper() == region.upper():
        return parsed
    other = parse_phone(value, fallback)
    return other if other.e164 is not None else parsed


def to_e164(value: str | None, default_region: str = "US") -> str | None:
    """The E.164 form of value, or None when it is not a valid number."""
    return parse_phone(value, default_region).e164


# ISO 3166-1 "exceptionally reserved" codes people write for a country (pycountry lists assigned codes only).
_RESERVED_CODES = {"uk": "GB", "el": "GR"}


def _fuzzy_region(text: str) -> str | None:
    try:
        found = {country.alpha_2 for country in pycountry.countries.search_fuzzy(text)}
    except LookupError:
        return None
    return found.pop() if len(found) == 1 else None  # "Korea": two countries, no guess


@lru_cache(maxsize=4096)
def region_for_country(country: str | None) -> str | None:
    """The phone region (ISO 3166-1 alpha-2) of a country as a CRM holds it, or None when unknown.

    Codes ("DE", "DEU", "276"), English names, official and common names, libphonenumber's names
    ("Turkey"), names in any language pycountry translates ("Deutschland"), with case, accents and dots ignored ("U.S.A."); then
    pycountry's fuzzy search (former names, subdivisions such as "England") when it points at one
    country only. A region phonenumbers has no numbering plan for gives None.
    """
    text = " ".join((country or "").split())
    if not text:
        return None
    folded_text = folded(text)
    region = _RESERVED_CODES.get(folded_text)
    if region is None:
        try:
            region = pycountry.countries.lookup(text).alpha_2
        except LookupError:
            region = country_names().get(folded_text) or (_fuzzy_region(text) if len(folded_text) > 3 else None)
    if region is None or phonenumbers.country_code_for_region(region) == 0:
        return None
    return region


def country_calling_code(region: str | None) -> str | None:
    """"+49" for DE: the calling code of a phone region, or None."""
    code = phonenumbers.country_code_for_region(region) if region else 0
    return f"+{code}" if code else None

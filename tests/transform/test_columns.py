"""Column-wise conversions give exactly what the one-value functions give, errors included."""
from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pytest

from transform import columns
from transform.values import to_bool, to_date, to_datetime, to_float, to_str

TEXTS = ["Ann", "  Ann ", "", "   ", None, "Jürgen", "O'Brien", "\u00a0x\u00a0", "a\tb", "x\n", "\x1fy", "€", "12"]
BOOLS = ["true", "false", "TRUE", " yes ", "0", "1", "f", None, "", "maybe"]
STAMPS = ["2024-05-01T10:00:00.000+0000", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00.123456+00:00",
          "2024-05-01T12:00:00.000+0200", "1714557600000", "2024-05-01", " 2024-05-01T10:00:00Z ", None, "",
          "1900-01-01T00:00:00Z", "2150-01-01T00:00:00Z", "2024-13-01T00:00:00Z", "yesterday"]
INTEGERS = ["12", "-7", "0012", "12.0", " 3 ", "1e3", "12.5", None, "", "x", "123456789012345678", "99999999999999999999"]
NUMBERS = ["1200.50", "-0.1", "0.30000000000000004", "3", "1e-7", " 2.5 ", "1,5", None, "", "abc", "12345678901234.123456789",
           "0.1234567890123456789"]
DATES = ["2024-05-02", "2024-05-02T10:00:00Z", " 2024-05-02", None, "", "2024-02-30", "May 2"]


def expected(fn, values):
    """What the one-value function gives for each value: (value, error text)."""
    out = []
    for value in values:
        try:
            out.append((fn(value), None))
        except Exception as error:
            out.append((None, f"{type(error).__name__}: {error}"))
    return out


def got(convert, values):
    array, errors = convert(pa.array(values, pa.string()))
    errors = errors.to_pylist() if errors is not None else [None] * len(values)
    return list(zip(array.to_pylist(), errors))


@pytest.mark.parametrize("convert, fn, values", [
    (columns.text, to_str, TEXTS), (columns.boolean, to_bool, BOOLS), (columns.date, to_date, DATES),
    (columns.integer, columns.int64, INTEGERS), (columns.number, to_float, NUMBERS),
], ids=["text", "boolean", "date", "integer", "number"])
def test_conversions_equal_the_one_value_functions(convert, fn, values):
    """Fast shapes and Python fallbacks together give the one-value results, with the same error texts."""
    assert got(convert, values) == expected(fn, values)


def test_timestamps_equal_to_datetime_including_errors():
    """UTC ISO stamps (vectorised), other offsets, epoch ms and impossible dates (Python) all agree."""
    result = got(columns.timestamp, STAMPS)
    want = expected(to_datetime, STAMPS)
    assert [(v.astimezone(timezone.utc) if v else v, e) for v, e in result] == want
    assert result[0][0] == datetime(2024, 5, 1, 10, tzinfo=timezone.utc)
    assert "impossible date" in result[9][1] and "impossible date" in result[10][1]
    assert result[11][1] and result[12][1]  # 13th month and prose: rejected with Python's reason


def test_each_distinct_value_is_converted_once():
    """per_value calls the function once per distinct non-null value and spreads the results back."""
    calls = []
    array = pa.array(["a", "b", "a", None, "b", "a"])
    (out,), errors = columns.per_value(array, lambda v: (calls.append(v) or v.upper(),), [pa.string()])
    assert out.to_pylist() == ["A", "B", "A", None, "B", "A"] and errors is None
    assert sorted(calls) == ["a", "b"]


def test_csv_page_keeps_text_and_reads_empty_as_null():
    """Every cell stays text (no type guessing, "NULL" is a name), an empty cell is null, a BOM is dropped."""
    page = columns.read_csv('\ufeff"Id","LastName","Amount"\n"001","NULL","0012"\n"002","","1e3"\n'.encode())
    assert page.column_names == ["Id", "LastName", "Amount"]
    assert page.to_pylist() == [{"Id": "001", "LastName": "NULL", "Amount": "0012"},
                                {"Id": "002", "LastName": None, "Amount": "1e3"}]


def test_json_records_become_the_same_text_cells():
    """true/false, numbers and nulls from JSON read like their CSV cells; absent fields are null."""
    page = columns.text_table([{"A": True, "B": 12.5, "C": None}, {"A": False, "B": 3}], ["A", "B", "C", "D"])
    assert page.to_pylist() == [{"A": "true", "B": "12.5", "C": None, "D": None},
                                {"A": "false", "B": "3", "C": None, "D": None}]


EMAILS = ["ann.lee@example.com", "Ann.Lee@Example.COM", ' "Ann Lee" <ann@x.io> ', "ann@x.io.", "a..b@x.com",
          ".a@x.com", "a@x", "a@-x.com", "a@x.123", "x" * 65 + "@x.com", "x" * 64 + "@x.com", "mailto:a@b.co",
          "a+tag@gmail.com", "ann@münchen.de", "a@b@c.com", "no-at-sign", "a_b-c@sub.do-main.co.uk", None,
          "  Ann.Lee@Example.COM\t", "ANN@X.IO..", "ann@x.io .", "\u00a0ann@x.io", "ann@x.io\u200b", "MAILTO:ann@x.io",
          "ann.@x.io.", "Ann@X.IO\x1c", "\x1cann@x.io", "ANN@EXAMPLE.ÇOM", "x" * 64 + "@X.COM.", " " + "x" * 65 + "@x.com",
          "<j@acme.com.>", "J <J@Acme.com.>"]


def test_emails_equal_normalize_email():
    """Addresses already in normal form (vectorised) and all others (Python) give normalize_email's result."""
    from transform.email_normalizer import email_domain, normalize_email

    (email, domain), errors = columns.emails(pa.array(EMAILS, pa.string()))
    want = [normalize_email(v) for v in EMAILS]
    assert email.to_pylist() == want and errors is None
    assert domain.to_pylist() == [email_domain(e) for e in want]


def test_phones_equal_parse_phone():
    """Plain +1 forms (vectorised) and every other form (Python) give parse_phone's E.164 and extension."""
    from transform.phone_normalizer import parse_phone

    values = ["(415) 555-0123", "415.555.0123 x12", "+1 (212) 555-0199 ext. 7", "1-800-555-0199", "(416) 555-0123",
              "(555) 555-0123", "415-555-0123 x1234567", "+44 20 7946 0958", "00 49 30 901820", "anonymous", None,
              "(415) 555-\u0660\u0661\u0662\u0663", "415-555-0123 ext 99", "2125550199"]
    for region in ("US", "CA", "GB"):
        (e164, extension), _ = columns.phones(pa.array(values, pa.string()), region)
        parsed = [parse_phone(v, region) if v else None for v in values]
        assert e164.to_pylist() == [p.e164 if p else None for p in parsed], region
        assert extension.to_pylist() == [p.extension if p else None for p in parsed], region


def _numbers_of_every_region(seed=5):
    """(written number, region) pairs: each region's example numbers of every type, written nationally,
    internationally, as E.164, with "00", without separators, dotted and slashed, and as slips of a digit."""
    import random

    import phonenumbers
    from phonenumbers import PhoneNumberFormat, PhoneNumberType

    rng = random.Random(seed)
    pairs = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE,
                     PhoneNumberType.PREMIUM_RATE, PhoneNumberType.VOIP, PhoneNumberType.UAN):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            national = phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL)
            e164 = phonenumbers.format_number(example, PhoneNumberFormat.E164)
            slip = list(e164)
            slip[rng.randrange(3, len(slip))] = str(rng.randrange(10))
            written = [national, phonenumbers.format_number(example, PhoneNumberFormat.INTERNATIONAL), e164,
                       f"00{e164[1:]}", national.replace(" ", ""), ".".join(national.split()), "/".join(national.split()),
                       "".join(slip), national[:-1], national + str(rng.randrange(10)), f"0{national}",
                       f"{e164[:3]} (0) {e164[3:]}", phonenumbers.format_number(example, PhoneNumberFormat.RFC3966)]
            pairs += [(w, region) for w in written]
    return pairs


def test_phones_in_every_region_equal_parse_phone(monkeypatch):
    """Every region's numbers, valid or slipped, read column-wise give parse_phone's E.164 and extension; the
    valid plain forms of regions with a RegionPlan never reach phonenumbers, transform-rule regions included."""
    import re

    from transform.phone_normalizer import PLAIN_WRITTEN, parse_phone, region_plan

    pairs = _numbers_of_every_region()
    want = [parse_phone(value, region) for value, region in pairs]
    reached = set()
    full_way = columns._phone_parts
    monkeypatch.setattr(columns, "_phone_parts", lambda value, region: reached.add((value, region)) or full_way(value, region))
    (e164, extension), errors = columns.phones(pa.array([v for v, _ in pairs]), pa.array([r for _, r in pairs]))
    wrong = [(pair, got, w.e164) for pair, got, w in zip(pairs, e164.to_pylist(), want) if got != w.e164]
    assert wrong[:10] == [] and errors is None
    assert extension.to_pylist() == [w.extension for w in want]
    assert len(pairs) > 10_000 and sum(w.is_valid for w in want) > len(pairs) // 2

    planned = [pair for pair, w in zip(pairs, want)
               if w.is_valid and region_plan(pair[1]) and re.match(PLAIN_WRITTEN, pair[0])]
    fast = [pair for pair in planned if pair not in reached]
    assert len(planned) > 5_000 and len(fast) > 0.98 * len(planned)
    assert {"DE", "GB", "FR", "IT", "AU", "JP", "BR", "AR", "GA", "MG"} <= {region for _, region in fast}


def test_phones_of_an_empty_page_with_a_region_column():
    """A page of no rows reads to empty columns."""
    (e164, extension), errors = columns.phones(pa.array([], pa.string()), pa.array([], pa.string()))
    assert (len(e164), len(extension), errors) == (0, 0, None)


@pytest.mark.parametrize("value, region", [
    ("030" + "-" * 250 + "12345678", "DE"),  # phonenumbers refuses text over 250 characters
    ("(" * 251 + "030 12345678", "DE"),
    ("+49" + " " * 250 + "30 12345678", "DE"),
    (" 000372776605", "JP"),  # parse_phone strips first: "00..." is then international
    (" 002489793", "TJ"),
    ("  0049 30 12345678 ", "DE"),
    ("030 12345678", "DE|X"),  # a region no country has, holding the slow path's separator
    ("030 12345678", "de"),
])
def test_phones_agree_with_parse_phone_on_odd_text_and_regions(value, region):
    """Long text, spaces before "00" and odd regions read column-wise as parse_phone reads them (found by fuzzing)."""
    from transform.phone_normalizer import parse_phone

    (e164, extension), _ = columns.phones(pa.array([value, "030 12345678"]), pa.array([region, "DE"]))
    want = parse_phone(value, region)
    assert (e164[0].as_py(), extension[0].as_py()) == (want.e164, want.extension)
    assert e164[1].as_py() == "+493012345678"


class TestPhonesWithTheOrgsRegion:
    def test_phones_with_a_fallback_equal_parse_phone_or_fallback(self):
        """Every region's numbers, read column-wise with the org's region (US, then GB) as the fallback, give
        parse_phone_or_fallback's E.164 and extension: only numbers invalid in their row's region change."""
        from transform.phone_normalizer import parse_phone_or_fallback

        pairs = _numbers_of_every_region(seed=9)[::3] + [("011 44 20 7686 5244", "GB"), ("011 44 20 7686 5244", "US"),
                                                         ("415 555 0123", "DE"), ("020 7686 5244", "US"), (None, "GB")]
        for fallback in ("US", "GB"):
            want = [parse_phone_or_fallback(v, r, fallback) if v else None for v, r in pairs]
            (e164, extension), _ = columns.phones(pa.array([v for v, _ in pairs], pa.string()),
                                                  pa.array([r for _, r in pairs]), fallback=fallback)
            wrong = [(pair, got, w and w.e164) for pair, got, w in zip(pairs, e164.to_pylist(), want)
                     if got != (w and w.e164)]
            assert wrong[:10] == [], fallback
            assert extension.to_pylist() == [w and w.extension for w in want], fallback
        assert e164.to_pylist()[-5:] == [None, "+442076865244", "+494155550123", "+442076865244", None]

    def test_the_orgs_prefix_abroad_reads_in_the_orgs_region(self):
        """`011 44 20 7686 5244` on a UK contact of a US org: invalid in GB, +442076865244 read in US."""
        from transform.phone_normalizer import parse_phone, parse_phone_or_fallback

        assert parse_phone("011 44 20 7686 5244", "GB").e164 is None
        assert parse_phone_or_fallback("011 44 20 7686 5244", "GB", "US").e164 == "+442076865244"
        assert parse_phone_or_fallback("020 7686 5244", "GB", "US").e164 == "+442076865244"
        assert parse_phone_or_fallback("not a number", "GB", "US").reason == "no number"

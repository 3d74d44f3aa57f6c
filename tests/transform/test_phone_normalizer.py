"""Phone normalisation on the shapes numbers really arrive in."""
from __future__ import annotations

import pytest

from transform.phone_normalizer import parse_phone, to_e164


@pytest.mark.parametrize("raw, region, e164, extension", [
    ("(415) 555-0123", "US", "+14155550123", None),
    ("415.555.0123", "US", "+14155550123", None),
    ("415-555-0123", "US", "+14155550123", None),
    ("4155550123", "US", "+14155550123", None),
    ("1-415-555-0123", "US", "+14155550123", None),
    ("+1 415 555 0123", "US", "+14155550123", None),
    ("+1 (415) 555-0123", "GB", "+14155550123", None),
    ("001 415 555 0123", "DE", "+14155550123", None),
    ("415-555-0123 x204", "US", "+14155550123", "204"),
    ("415-555-0123 ext. 4", "US", "+14155550123", "4"),
    ("+1 415 555 0123;ext=7", "US", "+14155550123", "7"),
    ("tel:+14155550123", "US", "+14155550123", None),
    ("1-800-FLOWERS", "US", "+18003569377", None),
    ("+44 20 7946 0958", "US", "+442079460958", None),
    ("+44 (0)20 7946 0958", "US", "+442079460958", None),
    ("0044 20 7946 0958", "US", "+442079460958", None),
    ("020 7946 0958", "GB", "+442079460958", None),
    ("+49 30 901820", "US", "+4930901820", None),
    ("030 901820", "DE", "+4930901820", None),
    ("\u00a0+1\u00a0212\u00a0555\u00a00199", "US", "+12125550199", None),
])
def test_valid_numbers_become_e164(raw, region, e164, extension):
    """National, international, dotted, 00-prefixed, vanity and extension forms reach E.164."""
    parsed = parse_phone(raw, region)
    assert (parsed.e164, parsed.extension) == (e164, extension)
    assert parsed.is_valid and parsed.reason is None


@pytest.mark.parametrize("raw, region, reason", [
    ("anonymous", "US", "no number"),
    ("Restricted", "US", "no number"),
    ("", "US", "no number"),
    (None, "US", "no number"),
    ("+1 (555) CALL-NOW", "US", "not a valid number"),
    ("555-0123", "US", "not a valid number"),
    ("12", "US", "not a valid number"),
    ("+999 123 4567", "US", "unknown country code"),
    ("020 7946 0958", "US", "not a valid number"),
    ("+1 415 555 01234567", "US", "not a valid number"),
])
def test_invalid_numbers_are_marked_not_guessed(raw, region, reason):
    """Numbers that are not valid keep no E.164 form and say why."""
    parsed = parse_phone(raw, region)
    assert parsed.e164 is None and not parsed.is_valid and parsed.reason == reason


def test_each_distinct_value_is_parsed_once():
    """Repeated values come from the cache."""
    parse_phone.cache_clear()
    for _ in range(5):
        to_e164("(212) 555-0199", "US")
    info = parse_phone.cache_info()
    assert (info.misses, info.hits) == (1, 4)


def test_fast_path_agrees_with_phonenumbers_on_many_forms_and_numbers(monkeypatch):
    """The +1 fast path gives exactly what the full phonenumbers path gives, and does take most US forms."""
    import random

    from transform import phone_normalizer

    forms = ("({a}) {b}-{c}", "{a}.{b}.{c}", "+1 {a} {b} {c}", "{a}{b}{c}", "1-{a}-{b}-{c}", "+1 ({a}) {b}-{c}",
             "1 ({a}) {b} {c}", "+1{a}{b}{c}", "1{a}{b}{c}", "({a}){b}-{c}", "+1.{a}.{b}.{c}", "{a}-{b}-{c} x{e}",
             "({a}) {b}-{c} ext. {e}", "+1 {a} {b} {c}ext.{e}", "{a}{b}{c}x{e}", "{a}-{b}-{c} ext {e}",
             "{a} {b} {c} #{e}", "1 {a}/{b}-{c}")
    rng = random.Random(7)
    values = []
    for _ in range(2500):
        area = rng.choice((212, 415, 416, 604, 800, 900, 311, 555)) if rng.random() < 0.7 else rng.randrange(0, 1000)
        values.append(rng.choice(forms).format(a=f"{area:03d}", b=f"{rng.randrange(100, 1000):03d}",
                                               c=f"{rng.randrange(10_000):04d}", e=rng.choice(("1", "204", "1234567"))))
    values += ["(415) 555-\u0660\u0661\u0662\u0663", "\uff14\uff11\uff15-555-0123", "415\u2013555\u20130123",
               "(415 555-0123", "415) 555-0123", "+1 415 555 0123 x", "1 800 555 0123 ext.12345678"]
    fast_taken = sum(phone_normalizer._nanp_read(v, "US") is not None for v in values)
    with_fast = {(v, r): phone_normalizer.parse_phone.__wrapped__(v, r) for v in values for r in ("US", "CA", "GB")}
    monkeypatch.setattr(phone_normalizer, "_nanp_read", lambda text, region: None)
    full_way = {(v, r): phone_normalizer.parse_phone.__wrapped__(v, r) for v in values for r in ("US", "CA", "GB")}
    assert with_fast == full_way
    assert fast_taken > len(values) // 3


class TestNumbersInTheirOwnCountry:
    @staticmethod
    def cases(count=40, seed=13):
        """National forms of example numbers of `count` random regions, each with ways a CRM names the country."""
        import random

        import phonenumbers
        import pycountry

        rng = random.Random(seed)
        regions = rng.sample(sorted(r for r in phonenumbers.SUPPORTED_REGIONS
                                    if pycountry.countries.get(alpha_2=r) and r != "001"), count)
        for region in regions:
            country = pycountry.countries.get(alpha_2=region)
            for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE):
                example = phonenumbers.example_number_for_type(region, kind)
                if example is None:
                    continue
                national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
                for name in (country.name, country.alpha_3, region.lower(), f"  {country.name.upper()} "):
                    yield region, name, national

    def test_the_country_names_its_region(self):
        """ISO codes and names in the forms CRMs hold name the region."""
        from transform.phone_normalizer import region_for_country

        wrong = [(name, region) for region, name, _ in self.cases() if region_for_country(name) != region]
        assert wrong == []

    def test_national_forms_parse_as_phonenumbers_does_in_the_right_region(self):
        """Each national form, read in the region of its country's name, is phonenumbers' own parse there;
        the column path over (number, region) pairs agrees."""
        import phonenumbers
        import pyarrow as pa

        from transform import columns
        from transform.phone_normalizer import region_for_country

        cases = list(self.cases())
        assert len({region for region, _, _ in cases}) >= 20
        want = [phonenumbers.format_number(phonenumbers.parse(n, r), phonenumbers.PhoneNumberFormat.E164)
                for r, _, n in cases]
        assert [parse_phone(n, region_for_country(name)).e164 for _, name, n in cases] == want
        regions = columns.country_regions([pa.array([name for _, name, _ in cases])])
        (e164, _), _ = columns.phones(pa.array([n for _, _, n in cases]), regions)
        assert e164.to_pylist() == want

    @pytest.mark.parametrize("country", ["Deutschland", "Turkey", "U.S.A.", "UK", "The Netherlands", "España", "México"])
    def test_country_names_as_people_write_them(self, country):
        """Native names, former names, dotted and reserved codes are understood."""
        from transform.phone_normalizer import region_for_country

        assert region_for_country(country) is not None

    @pytest.mark.parametrize("country", ["Korea, somewhere", "Mars", "", None, "n/a"])
    def test_unknown_countries_give_no_region(self, country):
        """What names no single country gives None (the default region is then used)."""
        from transform.phone_normalizer import region_for_country

        assert region_for_country(country) is None


@pytest.mark.parametrize("pattern, named", [
    ("(183[12])|0", ("(?P<g1>183[12])|0", 1)),
    ("(?:0|90)(?:(1[245])(\\d{10,11}))?", ("(?:0|90)(?:(?P<g1>1[245])(?P<g2>\\d{10,11}))?", 2)),
    ("[(]\\((\\d)[]()]", ("[(]\\((?P<g1>\\d)[]()]", 1)),
    ("0", ("0", 0)),
    ("0(\\d*)", None),  # a group that can match "" is refused: Arrow's "" for "took no part" would be ambiguous
])
def test_national_prefix_groups_are_named_for_arrow(pattern, named):
    """Capturing groups (not classes, escapes or (?: groups) get names g1, g2, ... in order."""
    from transform.phone_normalizer import _named_groups

    assert _named_groups(pattern, "g") == named

"""Email normalisation on the shapes addresses really arrive in."""
from __future__ import annotations

import pytest

from transform.email_normalizer import email_domain, normalize_email, parse_address_list, web_domain


@pytest.mark.parametrize("raw, expected", [
    ("john.smith@acme.com", "john.smith@acme.com"),
    ("John.Smith@Acme.COM", "john.smith@acme.com"),
    ("  jane@example.org  ", "jane@example.org"),
    ('"John Smith" <John.Smith@Acme.com>', "john.smith@acme.com"),
    ("John Smith <john@acme.com>", "john@acme.com"),
    ("<bob@example.org>", "bob@example.org"),
    (" <  Bob@Example.org > ", "bob@example.org"),
    ("mailto:sales@acme.io", "sales@acme.io"),
    ("MAILTO:Sales@Acme.io", "sales@acme.io"),
    ("a@b.com.", "a@b.com"),
    ("user@bücher.de", "user@xn--bcher-kva.de"),
    ("user@XN--BCHER-KVA.de", "user@xn--bcher-kva.de"),
    ('"john doe"@example.com', '"john doe"@example.com'),
    ('"very.unusual.@.unusual.com"@example.com', '"very.unusual.@.unusual.com"@example.com'),
    ("first.last+newsletter@company.co.uk", "first.last+newsletter@company.co.uk"),
    ("o'brien@irish-pub.ie", "o'brien@irish-pub.ie"),
    ("x_y-z@sub.domain.example.com", "x_y-z@sub.domain.example.com"),
    ("Müller <mueller@firma.de>", "mueller@firma.de"),
    ("no-at-sign.example.com", None),
    ("x@localhost", None),
    ("x@@y.com", None),
    ("@acme.com", None),
    ("john@", None),
    ("john..smith@acme.com", None),
    (".john@acme.com", None),
    ("john@acme..com", None),
    ("john@-acme.com", None),
    ("john smith@acme.com", None),
    ("john@192.168.0.1", None),
    ("", None),
    (None, None),
    ("undisclosed-recipients:;", None),
])
def test_normalize_email(raw, expected):
    """Display names, brackets, case, spaces, trailing dots and IDN are normalised; junk gives None."""
    assert normalize_email(raw) == expected


def test_email_domain():
    """The domain of a normalised address."""
    assert email_domain("a@b.co.uk") == "b.co.uk" and email_domain(None) is None and email_domain("nope") is None


@pytest.mark.parametrize("header, expected", [
    ("a@b.com", [("a@b.com", None)]),
    ('"Doe, Jane" <JANE@d.com>, bob@e.org', [("jane@d.com", "Doe, Jane"), ("bob@e.org", None)]),
    ("undisclosed-recipients:;", []),
    ("Team: a@b.com, c@d.com;", [("a@b.com", None), ("c@d.com", None)]),
    ("=?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@firma.de>", [("jm@firma.de", "Jürgen Müller")]),
    ("=?iso-8859-1?b?U2lvYmjhbg==?= <s@x.ie>", [("s@x.ie", "Siobhán")]),
    ("", []),
    ("<mailto:J@Acme.com>", [("j@acme.com", None)]),
    ("Jürgen <j@bäckerei.de>", [("j@xn--bckerei-5wa.de", "Jürgen")]),
    ("<j@acme.com.>", [("j@acme.com", None)]),
    ('"Doe, J." <J@Acme.com.>, k@acme.com., l@b.org..', [("j@acme.com", "Doe, J."), ("k@acme.com", None),
                                                         ("l@b.org", None)]),
    ("Team: j@acme.com.;", [("j@acme.com", None)]),
])
def test_parse_address_list(header, expected):
    """Address headers give (email, display name) pairs; groups flatten; empty groups give nothing."""
    parsed, rejected = parse_address_list(header)
    assert [(p.email, p.display_name) for p in parsed] == expected and rejected == []


@pytest.mark.parametrize("header, raw, reason", [
    ("not an address, also bad", ["not an address", "also bad"], ["not an address"] * 2),
    ("ok@b.com, broken@@x", ["broken@@x"], ["not an address"]),
    ("team@localhost", ["team@localhost"], ["invalid domain"]),
    ("<j@b\ufffdckerei.de>", ["<j@b\ufffdckerei.de>"], ["invalid domain"]),
])
def test_addresses_that_cannot_be_read_are_returned_with_the_reason(header, raw, reason):
    """Nothing is dropped silently: each unusable address comes back with its text and reason."""
    _, rejected = parse_address_list(header)
    assert [r.raw for r in rejected] == raw and [r.reason for r in rejected] == reason


@pytest.mark.parametrize("domain, expected", [
    ("straße.de", "xn--strae-oqa.de"),      # IDNA 2008: ß is kept, not mapped to ss (IDNA 2003)
    ("BÄCKEREI.de", "xn--bckerei-5wa.de"),  # UTS 46 maps case
    ("ﬁnance.com", "finance.com"),          # UTS 46 maps compatibility ligatures
])
def test_domains_use_idna_2008_uts46(domain, expected):
    """Internationalised domains get their IDNA 2008 A-label, as current mail systems do."""
    assert normalize_email(f"a@{domain}") == f"a@{expected}"


@pytest.mark.parametrize("website, expected", [
    ("https://www.Acme.com/about", "acme.com"),
    ("acme.com", "acme.com"),
    ("http://acme.com:8080/x?y=1", "acme.com"),
    ("WWW.ACME.CO.UK", "acme.co.uk"),
    ("www.bücher.de", "xn--bcher-kva.de"),
    ("shop.acme.com.", "shop.acme.com"),
    ("info@acme.com", "acme.com"),
    ("", None),
    ("   ", None),
    ("n/a", None),
])
def test_web_domain(website, expected):
    """Account websites reduce to the host without scheme, www, port or path."""
    assert web_domain(website) == expected

"""The file drop's pure parts: amounts and dates in the file's locale, CRM recognition, stages, encodings."""
from __future__ import annotations

import codecs
from datetime import date
from decimal import Decimal

import pytest

from cloud_functions.file_drop.crm_formats import detect_crm, header_key, standard_stage
from cloud_functions.file_drop.locale_values import day_first, decimal_mark, parse_amount, parse_date, parse_percent
from cloud_functions.file_drop.sniff import Unreadable, detect_encoding, detect_format


class TestAmounts:
    @pytest.mark.parametrize("text, mark, value, currency", [
        ("$1,234.56", ".", "1234.56", "USD"), ("1.234,56 €", ",", "1234.56", "EUR"), ("1 234,56", ",", "1234.56", None),
        ("(1,234.56)", ".", "-1234.56", None), ("-12,5", ",", "-12.5", None), ("EUR 99", ".", "99", "EUR"),
        ("1,234", ".", "1234", None), ("1,234", ",", "1.234", None), ("CHF 1'234.50", ".", "1234.50", "CHF"),
        ("£0.99", ".", "0.99", "GBP"), ("1234", ",", "1234", None),
    ])
    def test_an_amount_is_read_in_the_files_decimal_convention(self, text, mark, value, currency):
        """Symbols, codes, groups and signs as spreadsheets write them; the file's mark decides `1,234`."""
        amount = parse_amount(text, mark)
        assert amount is not None and (amount.value, amount.currency) == (Decimal(value), currency)

    @pytest.mark.parametrize("text", ["n/a", "12..5", "tbd €"])
    def test_text_that_is_no_amount_is_an_error(self, text):
        """A cell that is not a number raises, so its row is rejected with the reason."""
        with pytest.raises(ValueError):
            parse_amount(text, ".")

    @pytest.mark.parametrize("samples, delimiter, mark", [
        (["1,234.56", "99"], ",", "."), (["1.234,56 €"], ",", ","), (["12,50", "3"], ",", ","),
        (["1234", "99"], ";", ","), (["1234"], ",", "."), (["$1,000"], ";", ","),
    ])
    def test_the_file_decides_its_decimal_mark(self, samples, delimiter, mark):
        """Both marks in a value, or one before the last one or two digits, decide; else the delimiter does."""
        assert decimal_mark(samples, delimiter) == mark

    def test_probabilities_are_percent(self):
        """`75`, `75 %` and `0.75` are 75 percent; over 100 is an error."""
        assert [parse_percent(t, ".") for t in ("75", "75 %", "0.75", "")] == [75.0, 75.0, 75.0, None]
        with pytest.raises(ValueError):
            parse_percent("150", ".")


class TestDates:
    @pytest.mark.parametrize("samples, delimiter, first_is_day", [
        (["03/04/2026", "31/12/2026"], ",", True), (["03/04/2026", "12/31/2026"], ";", False),
        (["03.04.2026"], ",", True), (["03/04/2026"], ";", True), (["03/04/2026"], ",", False),
        (["2026-12-31"], ";", True),
    ])
    def test_the_file_decides_its_day_order(self, samples, delimiter, first_is_day):
        """A part over 12 decides; dotted dates are day first; else the delimiter's locale."""
        assert day_first(samples, delimiter) is first_is_day

    @pytest.mark.parametrize("text, first_is_day, expected", [
        ("31/12/2026", True, date(2026, 12, 31)), ("12/31/2026", False, date(2026, 12, 31)),
        ("2026-12-31", False, date(2026, 12, 31)), ("2026-12-31 10:30:00", True, date(2026, 12, 31)),
        ("31.12.26", True, date(2026, 12, 31)), ("Dec 31, 2026", False, date(2026, 12, 31)),
        ("31 December 2026", True, date(2026, 12, 31)), ("", True, None),
    ])
    def test_a_date_is_read_in_the_files_order(self, text, first_is_day, expected):
        """Numeric dates in the file's order, ISO and written-out months alike."""
        assert parse_date(text, first_is_day) == expected

    @pytest.mark.parametrize("text", ["31/13/2026", "soon", "2026-02-30"])
    def test_an_impossible_date_is_an_error(self, text):
        """Not a date: the row is rejected with the reason."""
        with pytest.raises(ValueError):
            parse_date(text, True)


class TestRecognition:
    def test_headers_are_compared_normalised(self):
        """Case, punctuation, prefixes' dashes and trailing spaces do not matter."""
        assert [header_key(h) for h in ("Deal - Title", "Close Date ", "Probability (%)", "account_no")] == [
            "deal title", "close date", "probability", "account no"]

    def test_zoho_and_hubspot_are_told_apart_by_their_signatures(self):
        """Both write `Deal Name`; Zoho's `Closing Date` and HubSpot's `Deal Stage`/`Pipeline` decide."""
        zoho = detect_crm(["Deal Name", "Account Name", "Closing Date", "Deal Owner", "Stage", "Amount"])
        hubspot = detect_crm(["Deal Name", "Deal Stage", "Pipeline", "Company Name", "Deal owner", "Record ID"])
        assert (zoho.crm, zoho.confidence, hubspot.crm) == ("zoho", 1.0, "hubspot")
        assert zoho.mapping["close_date"] == "Closing Date" and "signature headers" in zoho.reason

    def test_an_override_sets_the_crm_and_a_column(self):
        """FILE_DROP_MAPPINGS' crm and columns win over detection."""
        found = detect_crm(["Potential", "Org"], forced="vtiger", overrides={"deal_name": "Potential"})
        assert (found.crm, found.mapping["deal_name"], found.unmapped) == ("vtiger", "Potential", ["Org"])

    @pytest.mark.parametrize("stage, status, standard", [
        ("Closed Won", None, "closed_won"), ("closedlost", None, "closed_lost"), ("Negotiation/Review", None, "negotiation"),
        ("decisionmakerboughtin", None, "negotiation"), ("Demo Scheduled", "won", "closed_won"),
        ("Id. Decision Makers", None, "qualification"), ("Lead In", None, "prospecting"), ("Custom", None, "other"),
        (None, None, None),
    ])
    def test_stages_map_to_standard_stages(self, stage, status, standard):
        """CRM stage names and HubSpot's ids map to the standard stages; a won/lost status wins."""
        assert standard_stage(stage, status) == standard


class TestEncodings:
    @pytest.mark.parametrize("encoding, expected", [
        ("utf-8-sig", "utf-8"), ("utf-16", "utf-16-le"), ("utf-16-be", "utf-16-be"), ("utf-8", "utf-8"),
        ("cp1252", "cp1252"),
    ])
    def test_the_encoding_is_read_from_the_mark_the_bytes_or_charset_normalizer(self, encoding, expected):
        """A byte-order mark, valid UTF-8, else charset-normalizer (Windows-1252 when plausible)."""
        text = "Deal Name;Account Name;Amount\nÜbernahme;Société Générale;1.234,56 €\nØresund;Zoë;12,00 €\n"
        data = text.encode(encoding)
        if encoding == "utf-16-be":
            data = codecs.BOM_UTF16_BE + data
        assert detect_encoding(data)[0] == expected

    def test_a_workbook_is_refused_with_what_it_is(self):
        """An .xlsx (a zip) is not text: the reason says to save it as CSV."""
        with pytest.raises(Unreadable, match="save it as CSV"):
            detect_format(b"PK\x03\x04\x14\x00rest")

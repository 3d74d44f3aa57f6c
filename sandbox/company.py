"""A deterministic fake company for the sandboxes: accounts, contacts and leads, written messily.

Every record is a pure function of (seed, index), so a fake can serve a million contacts without
holding them, and two runs with the same seed see the same data. Each record carries the truth
(`true_email`, `true_phone_e164`) beside the messy form a person typed into the CRM, so tests and
benchmarks can score normalisation and entity resolution against a ground truth.

The mess is the real-world kind: mixed case, stray spaces, display names pasted into email fields,
trailing dots; phones in national, international, dotted, "00"-prefixed and extension forms;
role addresses (info@, sales@) shared by several contacts; free-mail users; leads converted into
contacts; accounts whose website is written with scheme, www and path. A share of the accounts is
abroad (three in ten, in 20 countries): they, their contacts and leads have numbers of that country,
written mostly in its national form ("030 12345678", "(02) 1234 5678"), and a country as CRMs hold it
(a name, a native name or an ISO code; a contact now and then none, its account's then applies).
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Iterator

FIRST_NAMES = ("Maria", "James", "Wei", "Aisha", "Lukas", "Sofia", "Mateo", "Olga", "Kenji", "Fatima",
               "Liam", "Chloe", "Ravi", "Ana", "Noah", "Emma", "Omar", "Zoe", "Jonas", "Priya", "Jürgen", "Siobhán")
LAST_NAMES = ("Garcia", "Smith", "Chen", "Okafor", "Müller", "Rossi", "Silva", "Ivanova", "Tanaka", "Khan",
              "Brown", "Martin", "Patel", "Costa", "Wilson", "Dubois", "Haddad", "Novak", "Berg", "Iyer", "O'Brien")
WORDS = ("north", "wind", "blue", "peak", "river", "stone", "bright", "cedar", "quantum", "harbor", "iron",
         "maple", "summit", "pixel", "atlas", "nova", "delta", "orbit", "lumen", "vertex")
SUFFIXES = ("labs", "systems", "group", "partners", "logistics", "health", "capital", "foods", "robotics", "media")
TLDS = ("com", "io", "co.uk", "de", "net")
INDUSTRIES = ("Technology", "Healthcare", "Finance", "Retail", "Manufacturing", "Logistics", "Media")
FREE_MAIL = ("gmail.com", "googlemail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com")
ROLE_LOCALS = ("info", "sales", "support", "hello", "office")
TITLES = ("CEO", "CTO", "VP Sales", "Head of Operations", "Procurement Manager", "Engineer", "Analyst")
LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Not Converted")
# US area codes and UK/DE ranges that phonenumbers accepts as valid.
US_AREA_CODES = (212, 415, 646, 617, 312, 206, 303, 512, 702, 305, 404, 713, 202, 480, 503, 619)
US_EXCHANGES = tuple(e for e in range(200, 1000) if e % 100 != 11)  # N11 codes are services, never subscribers
US_NUMBERS = len(US_AREA_CODES) * len(US_EXCHANGES) * 10_000
_SPREAD = 48_271  # coprime with US_NUMBERS: index -> number is one-to-one, so true phones never collide

# Countries abroad as CRMs hold them (names, native names, ISO codes), by region; every 5-digit ending of
# these regions' example numbers is a valid number of the same type (checked against phonenumbers).
ABROAD = {"GB": ("United Kingdom", "UK", "GB"), "DE": ("Germany", "Deutschland", "DE"), "FR": ("France",),
          "AU": ("Australia", "AU"), "JP": ("Japan",), "BR": ("Brazil", "Brasil"), "IN": ("India",),
          "ES": ("Spain", "España"), "NL": ("Netherlands",), "MX": ("Mexico", "México"), "SE": ("Sweden", "SE"),
          "CH": ("Switzerland", "Schweiz"), "IE": ("Ireland",), "SG": ("Singapore",), "AT": ("Austria", "Österreich"),
          "ZA": ("South Africa",), "NZ": ("New Zealand",), "IT": ("Italy", "Italia"), "PL": ("Poland", "Polska"),
          "TR": ("Turkey", "Türkiye")}
ABROAD_EVERY_TEN = (3, 6, 9)  # accounts abroad: those whose index ends so
_NATIONAL_ENDINGS = 100_000  # index -> the last five digits, one-to-one below this many (index * 7 + salt)

EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)
# Record i of a kind was created at EPOCH + i * STEP_SECONDS: SystemModstamp order is index order, which
# lets a fake serve "WHERE SystemModstamp >= t ORDER BY SystemModstamp" over a million rows by bisection.
STEP_SECONDS = 30


def sf_id(prefix: str, index: int) -> str:
    """An 18-character Salesforce-shaped id, unique per prefix and index."""
    return f"{prefix}{index:012d}AAA"


def _rng(seed: int, kind: str, index: int) -> random.Random:
    return random.Random(f"{seed}:{kind}:{index}")


def true_us_phone(index: int, salt: int = 0) -> str:
    """A valid US number in E.164, different for every (index, salt) with index * 7 + salt below US_NUMBERS."""
    n = ((index * 7 + salt) * _SPREAD) % US_NUMBERS
    area = US_AREA_CODES[n % len(US_AREA_CODES)]
    rest = n // len(US_AREA_CODES)
    exchange = US_EXCHANGES[rest % len(US_EXCHANGES)]
    line = (rest // len(US_EXCHANGES)) % 10_000
    return f"+1{area}{exchange:03d}{line:04d}"


@lru_cache(maxsize=None)
def _example(region: str, mobile: bool) -> tuple[int, str]:
    """(country code, national significant number) of phonenumbers' example number of that type."""
    import phonenumbers

    kind = phonenumbers.PhoneNumberType.MOBILE if mobile else phonenumbers.PhoneNumberType.FIXED_LINE
    example = phonenumbers.example_number_for_type(region, kind)
    if example is None or example.country_code is None:
        raise ValueError(f"phonenumbers has no example {'mobile' if mobile else 'fixed line'} number for {region}")
    return example.country_code, phonenumbers.national_significant_number(example)


def true_national_phone(region: str, index: int, salt: int = 0, mobile: bool = False) -> str:
    """A valid number of region in E.164 (fixed line or mobile), different for every (index, salt) with
    index * 7 + salt below 100,000 (its last five digits; the rest is the region's example number's)."""
    code, significant = _example(region, mobile)
    ending = ((index * 7 + salt) * _SPREAD) % _NATIONAL_ENDINGS
    return f"+{code}{significant[:-5]}{ending:05d}"


def national_form(e164: str) -> str:
    """e164 in its country's national format ("030 12345678" in Germany, "(02) 1234 5678" in Australia)."""
    import phonenumbers

    return phonenumbers.format_number(phonenumbers.parse(e164, None), phonenumbers.PhoneNumberFormat.NATIONAL)


def messy_national(e164: str, rng: random.Random) -> str:
    """e164 (of a country other than the US) written as people there type it: mostly its national form."""
    import phonenumbers

    national = national_form(e164)
    forms = (national, national, national.replace(" ", ""), ".".join(re.findall(r"\d+", national)),
             phonenumbers.format_number(phonenumbers.parse(e164, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL),
             f"00{e164[1:]}")
    return rng.choice(forms)


def _true_phone(region: str, index: int, salt: int, mobile: bool = False) -> str:
    return true_us_phone(index, salt) if region == "US" else true_national_phone(region, index, salt, mobile)


def _messy(region: str, e164: str, rng: random.Random) -> str:
    return messy_phone(e164, rng) if region == "US" else messy_national(e164, rng)


def _written_country(region: str, rng: random.Random) -> str:
    return "United States" if region == "US" else rng.choice(ABROAD[region])


def messy_phone(e164: str, rng: random.Random) -> str:
    """e164 written the way a person might type it."""
    forms: tuple[str, ...]
    if e164.startswith("+1"):
        a, b, c = e164[2:5], e164[5:8], e164[8:]
        forms = (f"({a}) {b}-{c}", f"{a}.{b}.{c}", f"+1 {a} {b} {c}", f"{a}{b}{c}", f"1-{a}-{b}-{c}",
                 f"{a}-{b}-{c} x{rng.randint(10, 999)}", f"+1 ({a}) {b}-{c} ext. {rng.randint(1, 99)}", f"{a}-{b}-{c}")
    else:
        digits = e164[1:]
        forms = (e164, f"00{digits}", f"+{digits[:2]} {digits[2:4]} {digits[4:8]} {digits[8:]}")
    return rng.choice(forms)


def messy_email(email: str, rng: random.Random, display_name: str | None = None) -> str:
    """email written the way a person might type or paste it."""
    roll = rng.random()
    if roll < 0.55:
        return email
    if roll < 0.70:
        local, _, domain = email.partition("@")
        return f"{local.title()}@{domain.capitalize()}"
    if roll < 0.80:
        return f"  {email} "
    if roll < 0.88 and display_name:
        return f'"{display_name}" <{email}>'
    if roll < 0.94:
        return email.upper()
    return email + "."


@dataclass(frozen=True)
class CompanySize:
    accounts: int = 50
    contacts: int = 500
    leads: int = 200


# The company the local runner's sandboxes serve (`make run`).
LOCAL_RUN_SIZE = CompanySize(accounts=50, contacts=2000, leads=500)


class FakeCompany:
    """The CRM of one fake company, every record derived from (seed, index)."""

    def __init__(self, seed: int = 42, size: CompanySize | None = None):
        self.seed = seed
        self.size = size or CompanySize()
        self._domains: dict[int, str] = {}

    # -- accounts
    def account(self, index: int) -> dict[str, Any]:
        rng = _rng(self.seed, "account", index)
        name_words = (rng.choice(WORDS), rng.choice(WORDS), rng.choice(SUFFIXES))
        domain = f"{name_words[0]}{name_words[1]}-{name_words[2]}-{index}.{rng.choice(TLDS)}"
        website = rng.choice((f"https://www.{domain}/", domain, f"http://{domain}", f"www.{domain}",
                              f"https://{domain}/about", f"WWW.{domain.upper()}"))
        created = EPOCH + timedelta(seconds=index * STEP_SECONDS)
        region = self.account_region(index)
        phone = _true_phone(region, index, 5)
        return {
            "Id": sf_id("001", index), "Name": " ".join(w.capitalize() for w in name_words),
            "Website": website if rng.random() > 0.05 else None, "Phone": _messy(region, phone, rng),
            "Type": rng.choice(("Customer", "Prospect", "Partner")), "Industry": rng.choice(INDUSTRIES),
            "BillingCountry": _written_country(region, _rng(self.seed, "account-country-name", index)),
            "ShippingCountry": None, "OwnerId": sf_id("005", index % 7), "CreatedDate": created,
            "LastModifiedDate": created + timedelta(hours=1), "SystemModstamp": created + timedelta(hours=1),
            "IsDeleted": False,
            "true_domain": domain, "true_phone_e164": phone, "true_region": region,
        }

    def account_region(self, index: int) -> str:
        """The account's country as a phonenumbers region: one of ABROAD for three accounts in ten, else US."""
        if index % 10 not in ABROAD_EVERY_TEN:
            return "US"
        return _rng(self.seed, "account-country", index).choice(sorted(ABROAD))

    def accounts(self) -> Iterator[dict[str, Any]]:
        return (self.account(i) for i in range(self.size.accounts))

    # -- people
    def _person(self, kind: str, index: int) -> dict[str, Any]:
        rng = _rng(self.seed, kind, index)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        account_index = index % max(1, self.size.accounts)
        domain = self.account_domain(account_index)
        ascii_first = first.replace("ü", "ue").replace("á", "a").lower()
        ascii_last = last.replace("ü", "ue").replace("'", "").lower()
        roll = rng.random()
        if roll < 0.12:
            email = f"{ascii_first}.{ascii_last}{index}@{rng.choice(FREE_MAIL)}"
        elif roll < 0.16:
            email = f"{rng.choice(ROLE_LOCALS)}@{domain}"  # shared: several people carry it
        else:
            email = f"{ascii_first}.{ascii_last}.{kind[0]}{index}@{domain}"
        region = self.account_region(account_index)  # people live in their account's country
        phone = _true_phone(region, index, 1 if kind == "contact" else 3)
        mobile = _true_phone(region, index, 2 if kind == "contact" else 4, mobile=True)
        created = EPOCH + timedelta(seconds=index * STEP_SECONDS)
        country = _rng(self.seed, f"{kind}-country", index)
        return {
            "FirstName": first, "LastName": last, "Title": rng.choice(TITLES),
            "Email": messy_email(email, rng, f"{first} {last}") if rng.random() > 0.03 else None,
            "Phone": _messy(region, phone, rng) if rng.random() > 0.1 else None,
            "MobilePhone": _messy(region, mobile, rng) if rng.random() > 0.4 else None,
            # Now and then a contact abroad has no MailingCountry: its account's BillingCountry then applies.
            "written_country": None if region != "US" and kind == "contact" and country.random() < 0.1
            else _written_country(region, country), "true_region": region,
            "OwnerId": sf_id("005", index % 7), "CreatedDate": created,
            "LastModifiedDate": created + timedelta(hours=1), "SystemModstamp": created + timedelta(hours=1),
            "IsDeleted": False, "true_email": email, "true_phone_e164": phone, "true_mobile_e164": mobile,
            "account_index": account_index,
        }

    def account_domain(self, index: int) -> str:
        if index not in self._domains:
            self._domains[index] = self.account(index)["true_domain"]
        return self._domains[index]

    def contact(self, index: int) -> dict[str, Any]:
        person = self._person("contact", index)
        return {"Id": sf_id("003", index), "AccountId": sf_id("001", person["account_index"]),
                "MailingCountry": person.pop("written_country"), "LeadSource": "Web", **person}

    def contacts(self) -> Iterator[dict[str, Any]]:
        return (self.contact(i) for i in range(self.size.contacts))

    def lead(self, index: int) -> dict[str, Any]:
        person = self._person("lead", index)
        rng = _rng(self.seed, "lead-status", index)
        converted = rng.random() < 0.2 and self.size.contacts > 0
        lead = {"Id": sf_id("00Q", index), "Company": self.account(person["account_index"])["Name"],
                "Status": "Closed - Converted" if converted else rng.choice(LEAD_STATUSES),
                "LeadSource": rng.choice(("Web", "Event", "Referral")), "Country": person.pop("written_country"),
                "IsConverted": converted, "ConvertedContactId": None, "ConvertedAccountId": None,
                "ConvertedDate": None, **person}
        if converted:
            # A converted lead keeps the contact's address: it resolves to that contact.
            contact_index = index % self.size.contacts
            contact = self.contact(contact_index)
            lead.update(ConvertedContactId=contact["Id"], ConvertedAccountId=contact["AccountId"],
                        ConvertedDate=(lead["CreatedDate"] + timedelta(days=3)).date(),
                        Email=contact["Email"], true_email=contact["true_email"])
        return lead

    def leads(self) -> Iterator[dict[str, Any]]:
        return (self.lead(i) for i in range(self.size.leads))

    def employees(self, count: int = 3) -> list[str]:
        """Mailboxes of the company's own sales people (the Gmail and Dialpad users)."""
        return [f"{name}@ourcompany.example" for name in ("alex", "sam", "jordan", "casey", "riley")[:count]]

"""Country names as CRMs hold them -> ISO 3166-1 alpha-2: a table generated from the pinned libraries.

Three sources, an earlier one winning: ISO 3166 names (pycountry: name, official and common names),
libphonenumber's region names (CLDR's, in about 50 languages: "Turkey" as well as "Türkei"), then the
translations iso-codes ships with pycountry ("Deutschland"). A name two countries share within one source is
left out rather than guessed (a catalogue that calls Malaysia "Mexico" cannot take Mexico away). Names are
compared folded: case, accents, dots and a leading "the" ignored.

The table is built here and kept in country_names.tsv beside this file, because building it imports
libphonenumber's names in every language: about 110 MB held while a sync runs, for 32,000 names. A test
builds it again from the installed libraries and compares, so a library upgrade that changes a name
fails the suite until the file is written again:

    .venv/bin/python -m transform.country_names     # rewrites transform/country_names.tsv
"""
from __future__ import annotations

import gettext
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Callable

import pycountry

TABLE = Path(__file__).with_name("country_names.tsv")


def folded(name: str) -> str:
    """A country name compared loosely: case, accents, dots and a leading "the" ignored."""
    text = unicodedata.normalize("NFKD", name.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c)).replace(".", "")
    text = " ".join(text.split())
    return text[4:] if text.startswith("the ") else text


def _pycountry_names(translate: Callable[[str], str] = lambda name: name) -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for country in pycountry.countries:
        for attribute in ("name", "official_name", "common_name"):
            name = getattr(country, attribute, None)
            if name:
                names.setdefault(folded(translate(name)), set()).add(country.alpha_2)
    return names


def _libphonenumber_names() -> dict[str, set[str]]:
    from phonenumbers.geodata.locale import LOCALE_DATA  # ~110 MB: only when the table is built

    names: dict[str, set[str]] = {}
    for region, by_language in LOCALE_DATA.items():
        for name in by_language.values():
            if name.startswith("*"):  # "*aa": the same name as language aa
                name = by_language.get(name[1:], "")
            if name and not name.startswith("*"):
                names.setdefault(folded(name), set()).add(region)
    return names


def _translated_names() -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for catalog in sorted(Path(pycountry.LOCALES_DIR).glob("*/LC_MESSAGES/iso3166-1.mo")):
        with catalog.open("rb") as handle:
            translations = gettext.GNUTranslations(handle)
        for name, regions in _pycountry_names(translations.gettext).items():
            names.setdefault(name, set()).update(regions)
    return names


def build() -> dict[str, str]:
    """Folded name -> alpha-2 from the installed libraries, each name once."""
    found: dict[str, str] = {}
    for source in (_pycountry_names, _libphonenumber_names, _translated_names):
        for name, regions in source().items():
            if name and name not in found and len(regions) == 1:
                found[name] = next(iter(regions))
    return found


def as_text(names: dict[str, str]) -> str:
    """The table's file form: one "name<TAB>code" line per name, sorted."""
    return "".join(f"{name}\t{code}\n" for name, code in sorted(names.items()))


@lru_cache(maxsize=1)
def country_names() -> dict[str, str]:
    """The table as kept in country_names.tsv."""
    lines = TABLE.read_text(encoding="utf-8").splitlines()
    return dict(line.split("\t") for line in lines)


if __name__ == "__main__":
    names = build()
    TABLE.write_text(as_text(names), encoding="utf-8")
    print(f"wrote {len(names):,} names to {TABLE}")

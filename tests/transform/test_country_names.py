"""The kept table of country names is the one the pinned libraries build."""
from transform import country_names


def test_the_kept_table_is_what_the_installed_libraries_build():
    """A library upgrade that changes a name fails here until `python -m transform.country_names` writes the file again."""
    built = country_names.build()
    kept = country_names.country_names()
    assert len(kept) > 30_000
    missing = sorted(set(built) - set(kept))[:10]
    extra = sorted(set(kept) - set(built))[:10]
    changed = sorted(name for name in set(built) & set(kept) if built[name] != kept[name])[:10]
    assert (missing, extra, changed) == ([], [], [])
    assert country_names.TABLE.read_text(encoding="utf-8") == country_names.as_text(built)


def test_names_in_other_languages():
    """libphonenumber's and iso-codes' names are in it, folded; every value is an alpha-2 code."""
    names = country_names.country_names()
    assert names[country_names.folded("Deutschland")] == "DE"
    assert names[country_names.folded("Türkei")] == "TR"
    assert names[country_names.folded("The Netherlands")] == "NL"
    assert all(len(code) == 2 and code.isupper() for code in names.values())

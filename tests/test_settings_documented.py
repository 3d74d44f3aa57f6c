"""Every setting is documented: in README.md's table and in .env.example."""
from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_setting_is_documented(name):
    """The variable appears in the README's configuration table and in .env.example."""
    variable = name.upper()
    assert f"`{variable}`" in (ROOT / "README.md").read_text()
    assert f"{variable}=" in (ROOT / ".env.example").read_text()


def test_lists_read_from_comma_separated_text(monkeypatch):
    """MAILBOXES and the other lists are comma-separated in the environment."""
    monkeypatch.setenv("MAILBOXES", " Alex@Example.com, sam@example.com ,")
    assert Settings(_env_file=None).mailboxes == ["alex@example.com", "sam@example.com"]


def test_a_misspelt_dotenv_key_is_named_with_the_setting_it_looks_like(tmp_path):
    """A .env key that is no setting is listed, with the closest setting when one is close; settings are not."""
    from config.settings import unknown_dotenv_keys

    dotenv = tmp_path / ".env"
    dotenv.write_text("MAILBOXES=a@b.com\nMAILBOXS=a@b.com\nWAREHOSE=duckdb\nFAVOURITE_COLOUR=blue\n")
    assert unknown_dotenv_keys(dotenv) == [("MAILBOXS", "MAILBOXES"), ("WAREHOSE", "WAREHOUSE"),
                                           ("FAVOURITE_COLOUR", None)]
    assert unknown_dotenv_keys(tmp_path / "missing.env") == []


def test_bigquery_needs_its_project(monkeypatch):
    """WAREHOUSE=bigquery without GCP_PROJECT is refused, naming both, instead of using a made-up project."""
    import pydantic

    monkeypatch.delenv("GCP_PROJECT", raising=False)
    with pytest.raises(pydantic.ValidationError, match="WAREHOUSE=bigquery needs GCP_PROJECT"):
        Settings(_env_file=None, warehouse="bigquery")
    assert Settings(_env_file=None, warehouse="bigquery", gcp_project="p").gcp_project == "p"

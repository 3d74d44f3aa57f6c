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

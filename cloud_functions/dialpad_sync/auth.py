"""Dialpad's credential: the company API key (secret `dialpad-api-key`), sent as a bearer token."""
from __future__ import annotations

from config.secrets import SecretStore
from config.settings import Settings

API_KEY_SECRET = "dialpad-api-key"


def api_key(secrets: SecretStore) -> str:
    """The API key; SecretNotFoundError naming where it is looked for when it is not set."""
    return secrets.get(API_KEY_SECRET)


def configured(secrets: SecretStore, settings: Settings) -> None:
    """Raises SecretNotFoundError when the API key is not set (the registry's credentials check)."""
    api_key(secrets)

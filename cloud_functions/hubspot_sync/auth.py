"""HubSpot's credential: a private app's access token (secret `hubspot-api-key`), for the SDK and plain REST."""
from __future__ import annotations

from config.secrets import SecretStore
from config.settings import Settings

TOKEN_SECRET = "hubspot-api-key"


def access_token(secrets: SecretStore) -> str:
    """The private app token; SecretNotFoundError naming where it is looked for when it is not set."""
    return secrets.get(TOKEN_SECRET)


def configured(secrets: SecretStore, settings: Settings) -> None:
    """Raises SecretNotFoundError when the token is not set (the registry's credentials check)."""
    access_token(secrets)

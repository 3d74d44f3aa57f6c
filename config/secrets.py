"""Secrets by name: Secret Manager in the cloud, environment variables or a local file on a laptop.

Names are those of scripts/setup_secrets.sh (`salesforce-password`, `dialpad-api-key`, ...). Locally a
secret `dialpad-api-key` is read from the variable DIALPAD_API_KEY, then from the ignored JSON file
settings.local_secrets_file. Every value read is registered with observability.logger so that no log line or
error text can carry it. Values are cached for the life of the process (one Secret Manager call each).
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Callable

from config.settings import Settings
from observability.logger import get_logger, register_secret

log = get_logger(__name__)


class SecretNotFoundError(LookupError):
    """A secret the run needs is not configured; the message names the secret, never a value."""


class CredentialsIncomplete(SecretNotFoundError):
    """Some of the secrets of one way to authenticate are set, not all: never a reason to fall back."""


def env_var_name(secret_name: str) -> str:
    """The environment variable that holds a secret locally: dialpad-api-key -> DIALPAD_API_KEY."""
    return secret_name.upper().replace("-", "_")


class SecretStore:
    """Reads and caches secrets from the configured backend."""

    def __init__(self, settings: Settings, client_factory: Callable[[], Any] | None = None):
        self._settings = settings
        self._client_factory = client_factory or _secret_manager_client
        self._client: Any = None
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> str:
        """The secret's value; SecretNotFoundError when it is not configured."""
        with self._lock:
            if name not in self._cache:
                value = self._read(name)
                register_secret(value)
                self._cache[name] = _trimmed(name, value)
            return self._cache[name]

    def get_optional(self, name: str) -> str | None:
        """The secret's value, or None when it is not configured."""
        try:
            return self.get(name)
        except SecretNotFoundError:
            return None

    def _read(self, name: str) -> str:
        if self._settings.secrets_backend == "secret_manager":
            return self._read_secret_manager(name)
        return self._read_local(name)

    def where(self, name: str) -> str:
        """Where the secret `name` is looked for, as a person would set it."""
        if self._settings.secrets_backend == "secret_manager":
            return f"Secret Manager secret {name!r} in project {self._settings.gcp_project!r}"
        return f"the environment variable {env_var_name(name)} or {name!r} in {self._settings.local_secrets_file}"

    def _read_local(self, name: str) -> str:
        value = os.environ.get(env_var_name(name))
        if value:
            return value
        value = _read_secrets_file(self._settings.local_secrets_file).get(name)
        if value:
            return str(value)
        raise SecretNotFoundError(f"secret {name!r} is not configured: set {self.where(name)}"
                                  f"{_dotenv_hint(env_var_name(name))}")

    def _read_secret_manager(self, name: str) -> str:
        from google.api_core import exceptions

        if self._client is None:
            self._client = self._client_factory()
        path = f"projects/{self._settings.gcp_project}/secrets/{name}/versions/latest"
        try:
            response = self._client.access_secret_version(request={"name": path})
        except (exceptions.NotFound, exceptions.PermissionDenied) as error:
            raise SecretNotFoundError(
                f"secret {name!r} cannot be read from Secret Manager in project "
                f"{self._settings.gcp_project!r}: {type(error).__name__}") from None
        return response.payload.data.decode("utf-8")


def _trimmed(name: str, value: str) -> str:
    """The value without surrounding whitespace, which no credential has: `echo` adds a newline that requests
    refuses in a header (and its error quotes the whole header). Says so, naming the secret only."""
    trimmed = value.strip()
    if trimmed != value:
        log.warning(f"secret {name!r} had whitespace around it (saved with echo rather than printf?): "
                    "it is used trimmed", extra={"json_fields": {"secret": name}})
    return trimmed


def _dotenv_hint(variable: str) -> str:
    """A note when the variable sits in ./.env, which settings read and secrets do not."""
    dotenv = Path(".env")
    try:
        found = dotenv.is_file() and any(line.strip().startswith(f"{variable}=") for line in dotenv.read_text().splitlines())
    except OSError:
        found = False
    return f" ({variable} is in .env, which holds settings only: secrets are never read from it)" if found else ""


def _read_secrets_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        # The position only: the text around it may be a secret.
        raise SecretNotFoundError(f"local secrets file {path} is not valid JSON (line {error.lineno})") from None
    if not isinstance(data, dict):
        raise SecretNotFoundError(f"local secrets file {path} must hold a JSON object of name: value")
    return data


def _secret_manager_client() -> Any:
    from google.cloud import secretmanager

    return secretmanager.SecretManagerServiceClient()

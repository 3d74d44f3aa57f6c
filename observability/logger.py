"""JSON-lines logging that Cloud Logging parses, with run context and secret redaction.

Every line carries `severity` and `message`; inside `log_context(...)` it also carries the run id,
source and object. Every secret value read through config.secrets is registered here and
replaced by `[REDACTED]` in every line, so a secret cannot leak through a log or an error text.
"""
from __future__ import annotations

import base64
import contextlib
import contextvars
import json
import logging
import sys
import threading
import urllib.parse
from datetime import date, datetime
from typing import Any, Iterator

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context", default={})  # noqa: B039 - never mutated: log_context sets a new dict
_secrets: set[str] = set()
_secrets_lock = threading.Lock()
REDACTED = "[REDACTED]"
# Values this short would redact ordinary words; no real credential is this short.
_MIN_SECRET_LENGTH = 4


def register_secret(value: str) -> None:
    """Remember a secret value, and every form an error text may quote it in, so that redact() hides them."""
    forms = {form for form in written_forms(value) if len(form) >= _MIN_SECRET_LENGTH}
    with _secrets_lock:
        _secrets.update(forms)


def written_forms(value: str) -> set[str]:
    """The ways a text can carry a secret: as is and trimmed, escaped as repr and JSON do (an error that
    quotes a header value, `'Bearer abc\\n'`), URL-encoded, in base64 wherever it falls in the encoded bytes
    (a Basic header of `user:secret`), and each line of a multi-line secret (a PEM key)."""
    texts = {value, value.strip(), *(line.strip() for line in value.splitlines() if len(line.strip()) >= 16)}
    forms: set[str] = set()
    for text in texts:
        forms |= {text, repr(text)[1:-1], text.encode("unicode_escape").decode("ascii"),
                  json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1],
                  urllib.parse.quote(text, safe=""), urllib.parse.quote_plus(text, safe="")}
        forms |= _base64_cores(text.encode("utf-8"))
    # An error text quoted once more (a repr inside a JSON body, a log line of a logged error) escapes again.
    forms |= {json.dumps(form)[1:-1] for form in forms} | {repr(form)[1:-1] for form in forms}
    return {form for form in forms if form}


def _base64_cores(data: bytes) -> set[str]:
    """The base64 characters that depend on `data` alone, for each of the three ways it can align in a longer
    encoded text (standard and URL-safe alphabets). Too short a secret has no core worth hiding."""
    cores: set[str] = set()
    if len(data) < 9:
        return cores
    for offset in range(3):
        start, end = -(-8 * offset // 6), 8 * (offset + len(data)) // 6
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            cores.add(encode(b"\0" * offset + data).decode("ascii")[start:end])
    return cores


def redact(text: str) -> str:
    """Return text with every registered secret value replaced by [REDACTED]."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def context_value(name: str) -> Any:
    """A field of the current log context (run_id, source, ...), or None outside one."""
    return _context.get().get(name)


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields (run_id, source, stream, ...) to every log line written inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    """The fields log_context() currently adds to each line."""
    return dict(_context.get())


def _default(value: Any) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: severity, message, logger, context and extra json_fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            **_context.get(),
        }
        entry.update(getattr(record, "json_fields", {}) or {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=_default, ensure_ascii=False))


_handler: logging.Handler | None = None


def configure_logging(level: str = "INFO") -> None:
    """Send the root logger's output at `level` and above to stderr as JSON lines (one handler per process).

    The level is the handler's too, so a logger set lower for its own handlers (the local runner's
    progress display) adds nothing to the JSON lines."""
    global _handler
    root = logging.getLogger()
    root.setLevel(level.upper())
    if _handler is None:
        _handler = logging.StreamHandler(sys.stderr)
        _handler.setFormatter(JsonFormatter())
        root.addHandler(_handler)
    _handler.setLevel(level.upper())


def get_logger(name: str) -> logging.Logger:
    """A standard logger; structured fields go in extra={"json_fields": {...}}."""
    return logging.getLogger(name)

"""Keep secrets out of everything hedgebot prints, serves or writes.

Every secret is registered here when it is resolved; `redact` replaces any
registered value (and the secret parts of URLs) in a text before it leaves
the process. Logs pass through `redact_processor`; the HTTP endpoint, alert
senders and reports call `redact` on error texts they show.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, MutableMapping
from typing import Any

MASK = "***"
_MIN_LENGTH = 4  # shorter "secrets" would mask ordinary words and digits

_lock = threading.Lock()
_secrets: set[str] = set()

# Telegram bot tokens (`123456:ABC...`) and credentials in URLs (`https://user:pass@host`).
_TELEGRAM_TOKEN = re.compile(r"\bbot\d{3,}:[A-Za-z0-9_-]{20,}")
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


def register_secret(value: str) -> str:
    """Remember a secret so that it is masked wherever it would appear; return it unchanged."""
    text = value.strip()
    if len(text) >= _MIN_LENGTH:
        with _lock:
            _secrets.add(text)
    return value


def redact(text: str) -> str:
    """Return `text` with every registered secret and URL credential masked."""
    if not text:
        return text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _TELEGRAM_TOKEN.sub(f"bot{MASK}", text)
    return _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)


def redact_value(value: Any) -> Any:
    """Return a JSON-like value with every string in it redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    return value


def redact_processor(logger: Any, method: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """A structlog processor that masks secrets in every field of a log line."""
    return {key: redact_value(value) if isinstance(value, (str, Mapping, list, tuple)) else _text_if_error(value) for key, value in event.items()}


def _text_if_error(value: Any) -> Any:
    if isinstance(value, BaseException):
        return redact(repr(value))
    return value

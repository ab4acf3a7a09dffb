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
# A signed request's query (Binance: `?timestamp=...&signature=...`) replays the request until it expires.
_SIGNED_QUERY = re.compile(r"\?(?=[^\s\"'<>]*\b(?:signature|timestamp)=)[^\s\"'<>]*", re.IGNORECASE)
_SIGNATURE = re.compile(r"\b(?P<name>signature|sign)=[^\s\"'&<>]+", re.IGNORECASE)
# A long run of letters and digits mixing both, as API keys, secrets and tokens are.
_TOKEN_WORD = re.compile(r"[A-Za-z0-9+=]{16,}")


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
    text = _SIGNED_QUERY.sub(f"?{MASK}", text)
    text = _SIGNATURE.sub(lambda m: f"{m.group('name')}={MASK}", text)
    return _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)


def looks_like_credential(text: str) -> bool:
    """Return whether `text` looks like it carries a credential: URL credentials, a bot token, a long random token."""
    if _URL_USERINFO.search(text) or _TELEGRAM_TOKEN.search(text) or _SIGNATURE.search(text):
        return True
    for word in _TOKEN_WORD.findall(text):
        if sum(c.isdigit() for c in word) >= 2 and sum(c.isalpha() for c in word) >= 2:
            return True
    return False


# A figure written as text (Decimals are stored as strings): it carries no secret, and masking a digit run
# inside it (a secret made of digits) would change the figure.
_FIGURE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def redact_value(value: Any) -> Any:
    """Return a JSON-like value with every string in it redacted (figures written as text are left whole)."""
    if isinstance(value, str):
        return value if _FIGURE.fullmatch(value) else redact(value)
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

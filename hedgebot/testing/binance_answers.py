"""What every part of the Binance emulator answers alike: refusals, numbers, signatures and parameters.

It owns the refusal (`BinanceError`, answered as `{"code": ..., "msg": ...}`), Binance's way of writing a
decimal, the HMAC-SHA256 signature of a request, the reading of a decimal parameter, and the atomic write
of a state file. The book, the REST routes, the streams and the options desk all use it; it imports none
of them, and no web framework.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

_EIGHT = Decimal("0.00000001")


class BinanceError(Exception):
    """A refusal answered as `{"code": ..., "msg": ...}`."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status

    @property
    def body(self) -> dict[str, Any]:
        """Return the refusal as Binance's JSON body."""
        return {"code": self.code, "msg": self.msg}


def plain(value: Decimal) -> str:
    """Format a decimal the way Binance does: plain, at most 8 decimals, no exponent."""
    value = value.quantize(_EIGHT)
    return format(value.normalize(), "f") if value != 0 else "0"


def signature(secret: str, payload: str) -> str:
    """Return Binance's signature of `payload`: HMAC-SHA256 under the key's secret, in hex."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def signed_by(secret: str, payload: str, sent: str) -> bool:
    """Tell whether `sent` is the signature of `payload` under `secret` (compared in constant time)."""
    return hmac.compare_digest(signature(secret, payload), sent)


def decimal_param(params: dict[str, str], *names: str, msg: str | None = None) -> tuple[Decimal, ...]:
    """Read each of `names` as a decimal, or refuse with -1102 naming the first (or saying `msg`)."""
    try:
        return tuple(Decimal(params[name]) for name in names)
    except (KeyError, ArithmeticError):
        raise BinanceError(-1102, msg or mandatory(names[0])) from None


def mandatory(name: str) -> str:
    """Return Binance's -1102 message for a parameter missing or malformed."""
    return f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."


def write_json_atomically(path: Path, data: Any) -> None:
    """Write `data` as JSON to `path` through a temporary file, so a reader never sees half of it."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)

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


# Binance's refusals that more than one endpoint answers, each named for what it refuses.


def invalid_symbol() -> BinanceError:
    """Refuse a symbol the API does not list (-1121)."""
    return BinanceError(-1121, "Invalid symbol.")


def invalid_side() -> BinanceError:
    """Refuse an order side other than BUY or SELL (-1117)."""
    return BinanceError(-1117, "Invalid side.")


def invalid_order_type() -> BinanceError:
    """Refuse an order type the endpoint does not take (-1116)."""
    return BinanceError(-1116, "Invalid orderType.")


def invalid_limit() -> BinanceError:
    """Refuse a `limit` parameter out of its range (-1130)."""
    return BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")


def duplicate_client_id() -> BinanceError:
    """Refuse a client order id already taken (-4116)."""
    return BinanceError(-4116, "ClientOrderId is duplicated.")


def reduce_only_rejected() -> BinanceError:
    """Refuse a reduce-only order that would not reduce (-2022)."""
    return BinanceError(-2022, "ReduceOnly Order is rejected.")


def no_such_order() -> BinanceError:
    """Answer a lookup that finds no order (-2013)."""
    return BinanceError(-2013, "Order does not exist.")


def key_refused() -> BinanceError:
    """Refuse an API key that is unknown or lacks the permission (-2015, HTTP 401)."""
    return BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)


def bad_signature() -> BinanceError:
    """Refuse a request whose signature is not the HMAC of its payload under the key's secret (-1022)."""
    return BinanceError(-1022, "Signature for this request is not valid.")

"""Exchange dialects for `CcxtVenue`, by the ccxt id an account's `exchange` names."""

from __future__ import annotations

from hedgebot.exchange.dialects.aster import Aster
from hedgebot.exchange.dialects.base import Dialect
from hedgebot.exchange.dialects.binancecoinm import BinanceCoinm
from hedgebot.exchange.dialects.binanceusdm import BinanceUsdm
from hedgebot.exchange.dialects.bybit import Bybit
from hedgebot.exchange.dialects.okx import Okx

DIALECTS: dict[str, type[Dialect]] = {
    "binanceusdm": BinanceUsdm,
    "binancecoinm": BinanceCoinm,
    "bybit": Bybit,
    "okx": Okx,
    "aster": Aster,
}


def dialect_for(exchange_id: str) -> Dialect:
    """Return the dialect of a ccxt exchange id, or raise KeyError naming the supported ones."""
    try:
        return DIALECTS[exchange_id]()
    except KeyError:
        raise KeyError(
            f"exchange {exchange_id!r} has no live venue yet (supported: {', '.join(sorted(DIALECTS))})"
        ) from None

"""Binance -1006 ("An unexpected response was received from the message bus. Execution status unknown.") is not in
the dialect's table; ccxt maps it to OperationFailed (USDⓈ-M) / BadResponse (portfolio margin), which `_translate` turns
into a PermanentError: the order is journaled REJECTED and a new one is sent, though Binance says its execution status is
unknown (the issue-16 doubled order again)."""

from __future__ import annotations

import ccxt

from hedgebot.clock import SimClock
from hedgebot.exchange.ccxt_venue import CcxtVenue
from hedgebot.exchange.dialects.binanceusdm import BinanceUsdm
from hedgebot.exchange.port import PermanentError, RequestTimeout


async def test_binance_execution_status_unknown_is_an_unknown_outcome_not_a_rejection() -> None:
    venue = CcxtVenue.connect(BinanceUsdm(), SimClock(1_700_000_000.0))
    try:
        body = '{"code":-1006,"msg":"An unexpected response was received from the message bus. Execution status unknown."}'
        for raised in (ccxt.OperationFailed(f"binanceusdm {body}"), ccxt.ExchangeError(f"binanceusdm {body}")):
            translated = venue._translate(raised)
            assert isinstance(translated, RequestTimeout) and not isinstance(translated, PermanentError), (
                f"{type(raised).__name__} -1006 becomes {type(translated).__name__}"
            )
    finally:
        await venue.close()

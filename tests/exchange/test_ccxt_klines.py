"""Candles through an unmodified ccxt build against the Binance emulator: GET /fapi/v1/klines, the forming candle
the exchange hands out dropped, the limit Binance refuses refused."""

from __future__ import annotations

import pytest

from hedgebot.exchange.port import PermanentError
from tests.emulator_rig import BTC, START, emulator_rig
from tests.helpers import D, SYMBOL

pytestmark = pytest.mark.slow


async def test_the_ccxt_venue_reads_closed_klines_from_the_exchange_and_drops_the_forming_one() -> None:
    async with emulator_rig() as rig:
        first = START - START % 60 + 60
        rig.clock.advance(first - rig.clock.now())
        for minute in range(5):
            rig.emulator.set_mark(BTC, D(50_000 + 10 * minute))
            rig.clock.advance(30)
            rig.emulator.set_mark(BTC, D(50_005 + 10 * minute))
            rig.clock.advance(30)
        rig.emulator.set_mark(BTC, D(49_000))  # the sixth minute, still forming
        rig.clock.advance(10)
        candles = await rig.venue.fetch_ohlcv(SYMBOL, "1m", first, 200)
        assert [c.start for c in candles] == [first + 60 * n for n in range(5)]
        assert [(c.open, c.high, c.close) for c in candles[:2]] == [
            (D(50_000), D(50_005), D(50_005)), (D(50_010), D(50_015), D(50_015)),
        ]
        asked = [path for method, path in rig.emulator.requests if "klines" in path]
        assert asked, rig.emulator.requests[-3:]
        with pytest.raises(PermanentError, match="limit 1501"):
            await rig.venue.fetch_ohlcv(SYMBOL, "1m", first, 1501)

"""Candles as the exchange serves them: the paper venue hands out only closed candles of the prices it has seen,
in pages no larger than the exchange's, and has no history from before it started."""

from __future__ import annotations

import pytest

from hedgebot.clock import SimClock
from hedgebot.exchange.funding import NoFunding
from hedgebot.exchange.paper import PaperMarket, PaperVenue
from hedgebot.exchange.port import InvalidOrder, PermanentError
from tests.helpers import D, SYMBOL, btc_market

START = 1_600_000_000.0 - 1_600_000_000.0 % 3600  # on the hour


def _venue() -> tuple[PaperVenue, SimClock]:
    clock = SimClock(start=START)
    venue = PaperVenue(clock, [PaperMarket(btc_market(), NoFunding())], spot={}, futures={"USDT": D("1000")})
    return venue, clock


async def test_the_paper_venue_serves_closed_hourly_candles_of_the_prices_it_saw_and_not_the_forming_one() -> None:
    venue, clock = _venue()
    for minute in range(150):  # two and a half hours, one price a minute rising by 1
        await clock.set(START + minute * 60)
        venue.update_price(SYMBOL, clock.now(), D(50_000 + minute))
    candles = await venue.fetch_ohlcv(SYMBOL, "1h", START - 86_400, 500)
    assert [c.start for c in candles] == [START, START + 3600]  # the third hour is still forming
    first = candles[0]
    assert (first.open, first.high, first.low, first.close) == (D(50_000), D(50_059), D(50_000), D(50_059))
    assert candles[1].close == D(50_119)
    assert [c.start for c in await venue.fetch_ohlcv(SYMBOL, "1h", START + 1, 500)] == [START + 3600]
    assert len(await venue.fetch_ohlcv(SYMBOL, "1m", START, 100)) == 100


async def test_a_paper_account_started_now_has_no_history_to_backfill_from() -> None:
    venue, _ = _venue()
    venue.update_price(SYMBOL, START, D(50_000))
    assert await venue.fetch_ohlcv(SYMBOL, "1h", START - 30 * 86_400, 1500) == []


async def test_a_page_larger_than_the_exchanges_an_unknown_timeframe_and_an_unlisted_market_are_refused() -> None:
    venue, _ = _venue()
    with pytest.raises(PermanentError, match="limit 1501 is outside 1..1500"):
        await venue.fetch_ohlcv(SYMBOL, "1h", START, 1501)
    with pytest.raises(PermanentError, match="timeframe '2h'"):
        await venue.fetch_ohlcv(SYMBOL, "2h", START, 10)
    with pytest.raises(InvalidOrder, match="lists no contract"):
        await venue.fetch_ohlcv("DOGE/USDT:USDT", "1h", START, 10)


class _Klines:
    """ccxt's fetch_ohlcv as the exchange answers it: the forming candle last."""

    def __init__(self, rows: list[list[object]]) -> None:
        self.rows = rows
        self.asked: list[tuple[str, str, int, int]] = []

    async def fetch_ohlcv(self, symbol: str, timeframe: str, since: int, limit: int) -> list[list[object]]:
        self.asked.append((symbol, timeframe, since, limit))
        return self.rows


def _ccxt_venue(rows: list[list[object]], now: float) -> tuple[object, _Klines]:
    from hedgebot.exchange.ccxt_venue import CcxtVenue
    from hedgebot.exchange.dialects import dialect_for

    futures = _Klines(rows)
    venue = CcxtVenue(dialect_for("binanceusdm"), futures, None, SimClock(start=now))
    venue.clock_offset = 0.0
    return venue, futures


async def test_the_ccxt_venue_drops_the_candle_still_forming_and_asks_in_milliseconds() -> None:
    hour = 3_600_000
    start = int(START * 1000)
    rows = [[start + n * hour, "100", "110", "90", str(100 + n), "5"] for n in range(3)]
    venue, futures = _ccxt_venue(rows, START + 2.5 * 3600)
    candles = await venue.fetch_ohlcv(SYMBOL, "1h", START, 500)  # type: ignore[attr-defined]
    assert [(c.start, c.close) for c in candles] == [(START, D(100)), (START + 3600, D(101))]
    assert futures.asked == [(SYMBOL, "1h", start, 500)]


@pytest.mark.parametrize(("row", "said"), [(["x", 1, 2, 3, 4], "not \\[time, open"), ([0, "1", "2", "0", "1"], "not positive"), ([0, "1", "2", "1", None], "sent no")])
async def test_a_malformed_candle_from_the_exchange_is_refused_naming_it(row: list[object], said: str) -> None:
    from hedgebot.exchange.port import BadData

    venue, _ = _ccxt_venue([row], START + 86_400)
    with pytest.raises(BadData, match=said):
        await venue.fetch_ohlcv(SYMBOL, "1h", 0, 500)  # type: ignore[attr-defined]

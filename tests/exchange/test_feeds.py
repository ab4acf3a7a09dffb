"""Price feeds: candle files in both layouts, the synthetic path, live prices through ccxt's interface."""

from __future__ import annotations

from typing import Any

import ccxt
import pytest

from hedgebot.exchange.feeds import LiveFeed, ReplayFeed, SyntheticFeed, read_candles
from hedgebot.exchange.port import BadData, VenueUnavailable
from tests.helpers import D, shared_file


def test_freqtrade_and_binance_kline_layouts_are_read(tmp_path) -> None:
    (tmp_path / "ft.csv").write_text("date,open,high,low,close,volume\n2020-01-01T00:00:00Z,7195.24,7196.25,7175.46,7177.02,511.8\n")
    (tmp_path / "kl.csv").write_text("1584048420000,5659.41,5671.28,5625.23,5627.84,426.186,1584048479999,1,1,1,1,0\n")
    (ft,) = read_candles(tmp_path / "ft.csv")
    (kl,) = read_candles(tmp_path / "kl.csv")
    assert (ft.time, ft.open, ft.high, ft.low, ft.close) == (1577836800.0, D("7195.24"), D("7196.25"), D("7175.46"), D("7177.02"))
    assert (kl.time, kl.close) == (1584048420.0, D("5627.84"))


def test_bad_rows_are_refused_naming_the_file_line_and_value(tmp_path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("date,open,high,low,close,volume\n2020-01-01T00:00:00Z,1,2,0.5,1.5,1\n2020-01-01T01:00:00Z,1,2,0.5,-3,1\n")
    with pytest.raises(BadData, match=r"bad\.csv:3: price '-3'"):
        read_candles(path)
    path.write_text("date,open,high,low,close,volume\n2020-01-01T00:00:00Z,1,0.9,0.5,1.5,1\n")
    with pytest.raises(BadData, match="high/low"):
        read_candles(path)


def test_the_shared_real_data_reads_with_its_gaps() -> None:
    candles = read_candles(shared_file("BTCUSDT-1h-spot-2020-2021.csv"))
    assert len(candles) == 17_513 and max(c.high for c in candles) == D("69000")
    gaps = [b.time - a.time for a, b in zip(candles, candles[1:], strict=False)]
    assert max(gaps) > 3600 and min(gaps) == 3600
    perp = read_candles(shared_file("BTCUSDT-1m-perp-2020-03-12.csv"))
    assert min(c.low for c in perp) == D("3621.81")


async def test_the_synthetic_path_is_seeded_and_jumps() -> None:
    def path(seed: int) -> SyntheticFeed:
        return SyntheticFeed(D("50000"), 60, volatility=0.8, jump_probability=0.05, jump_size=0.1, seed=seed)

    a, b, c = path(1), path(1), path(2)
    first = [await a.next() for _ in range(500)]
    assert first == [await b.next() for _ in range(500)]
    assert first != [await c.next() for _ in range(500)]
    moves = [abs(y.close / x.close - 1) for x, y in zip(first, first[1:], strict=False)]
    assert max(moves) > D("0.08") and all(x.close > 0 for x in first)


async def test_a_replay_ends_or_loops() -> None:
    candles = [await SyntheticFeed(D("100"), 1, seed=3).next()]
    once, looped = ReplayFeed(candles), ReplayFeed(candles, loop=True)
    assert await once.next() == candles[0] and await once.next() is None
    assert [await looped.next() for _ in range(3)] == candles * 3


class StubExchange:
    """Answers as ccxt's binanceusdm does, without the network."""

    id = "binanceusdm"
    has = {"fetchMarkPrice": True}

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    async def fetch_mark_price(self, symbol: str) -> dict:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    async def close(self) -> None:
        return None


async def test_live_prices_come_from_the_mark_price() -> None:
    feed = LiveFeed("binanceusdm", "BTC/USDT:USDT", exchange=StubExchange({"markPrice": 64321.5, "timestamp": 1_700_000_000_000}))
    candle = await feed.next()
    assert (candle.close, candle.time) == (D("64321.5"), 1_700_000_000.0)


async def test_live_feed_failures_become_port_errors() -> None:
    with pytest.raises(VenueUnavailable):
        await LiveFeed("x", "BTC/USDT:USDT", exchange=StubExchange(ccxt.RequestTimeout("slow"))).next()
    for answer in ({"markPrice": None}, {"markPrice": 0}, {"markPrice": "nan"}):
        with pytest.raises(BadData):
            await LiveFeed("x", "BTC/USDT:USDT", exchange=StubExchange(answer)).next()


class StubFunding(StubExchange):
    async def fetch_funding_rate(self, symbol: str) -> dict:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def test_live_funding_settles_the_last_polled_rate_at_each_interval() -> None:
    from hedgebot.exchange.funding import LiveFunding

    funding = LiveFunding("binanceusdm", "BTC/USDT:USDT", exchange=StubFunding({"fundingRate": 0.00025}))
    assert funding.settlements(0, 86_400) == []  # no rate invented before the first poll
    assert await funding.refresh() == D("0.00025")
    assert funding.settlements(0, 86_400) == [(28_800.0, D("0.00025")), (57_600.0, D("0.00025")), (86_400.0, D("0.00025"))]
    for bad in ({"fundingRate": None}, {"fundingRate": 5}):
        with pytest.raises(BadData):
            await LiveFunding("x", "BTC/USDT:USDT", exchange=StubFunding(bad)).refresh()
    with pytest.raises(VenueUnavailable):
        await LiveFunding("x", "BTC/USDT:USDT", exchange=StubFunding(ccxt.NetworkError("down"))).refresh()


def test_a_repeated_row_is_named_with_iso_8601_times(tmp_path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text(
        "date,open,high,low,close,volume\n2020-01-01T00:00:00Z,1,2,0.5,1.5,1\n"
        "2020-01-01T01:00:00Z,1,2,0.5,1.5,1\n2020-01-01T01:00:00Z,1,2,0.5,1.5,1\n"
    )
    with pytest.raises(BadData) as raised:
        read_candles(path)
    assert "dup.csv:4: time 2020-01-01T01:00:00Z does not follow 2020-01-01T01:00:00Z" in str(raised.value)
    assert "1577840400" not in str(raised.value)


async def test_public_price_and_funding_polls_are_not_paced_by_ccxts_wall_clock_throttle() -> None:
    """ccxt's throttle counts on the wall clock: after a step back it would hold each poll for the step's length."""
    from hedgebot.exchange.feeds import LiveFeed
    from hedgebot.exchange.funding import LiveFunding

    feed = LiveFeed("binanceusdm", "BTC/USDT:USDT")
    funding = LiveFunding("binanceusdm", "BTC/USDT:USDT")
    try:
        for client in (feed._exchange, funding._exchange):
            assert client.enableRateLimit is False
    finally:
        await feed.close()
        await funding.close()

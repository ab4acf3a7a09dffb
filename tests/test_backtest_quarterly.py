"""Issue 21's roll, judged on real history: a quarterly hedge replayed on Binance hourly BTC, 2020-2021
(../shared/data), across eight quarterly deliveries. The quarterlies' prices are a model (spot plus a basis derived
from the funding file, decaying to zero at delivery); no historical quarterly prices ship with the project.
Skipped, with the reason, when ../shared is absent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hedgebot.backtest import run_backtest
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.feeds import read_candles
from hedgebot.exchange.funding import ReplayFunding
from tests.helpers import D, hedge_config, shared_file

pytestmark = pytest.mark.slow


async def test_a_quarterly_hedge_rolls_before_every_delivery_never_below_target_minus_band_nor_above_a_slice_over() -> None:
    candles = read_candles(shared_file("BTCUSDT-1h-spot-2020-2021.csv"))
    funding = ReplayFunding.from_csv(shared_file("BTCUSDT-fundingRate-2020-2021.csv"))
    market = default_market("BTC/USDT:USDT")
    assert market is not None
    hedge = hedge_config(instrument="usdm-quarterly", max_order=D("0.5"), leverage=2, margin_mode="cross")
    result = await run_backtest(candles, market, funding, hedge, {"BTC": D(1)}, {"USDT": D(200000)})
    metrics = result.metrics
    assert metrics["instrument"] == "usdm-quarterly"
    assert metrics["rolls"] >= 4, metrics  # 2020-03-27 to 2021-12-31: eight deliveries
    assert metrics["short_within_roll_bounds"] is True, metrics
    assert metrics["short_lowest_drift"] >= -float(hedge.band)
    assert metrics["short_highest_excess"] <= float(hedge.max_order)
    assert metrics["liquidations"] == 0 and metrics["coins_sold"] == 0
    assert metrics["funding_quote"] == 0, "a quarterly pays and earns no funding"
    assert result.events.get("roll_completed") == metrics["rolls"]
    assert result.final_short == D(1), "the hedge ends whole, on the contract it rolled to"


async def test_the_bounds_figure_sees_a_roll_that_could_not_finish_before_delivery() -> None:
    # Too little margin for the roll's slices late in 2020's rally: the expiring leg is delivered with part of the
    # short still on it, and the figure says the short fell below its band.
    candles = read_candles(shared_file("BTCUSDT-1h-spot-2020-2021.csv"))[:9000]
    funding = ReplayFunding.from_csv(shared_file("BTCUSDT-fundingRate-2020-2021.csv"))
    market = default_market("BTC/USDT:USDT")
    assert market is not None
    hedge = hedge_config(instrument="usdm-quarterly", max_order=D("0.5"), leverage=2, margin_mode="cross")
    metrics = (await run_backtest(candles, market, funding, hedge, {"BTC": D(2)}, {"USDT": D(60000)})).metrics
    assert metrics["short_within_roll_bounds"] is False
    assert metrics["short_lowest_drift"] < -float(hedge.band)


async def test_a_cheapest_hedge_replayed_over_2020_2021_chooses_at_opening_and_at_every_roll_window() -> None:
    # A configured 10 % basis (a model) against the funding file's 30-day averages: the quarterly while funding
    # pays less, the perpetual through the rich funding of 2021's rally, each move through the journaled roll.
    candles = read_candles(shared_file("BTCUSDT-1h-spot-2020-2021.csv"))
    funding = ReplayFunding.from_csv(shared_file("BTCUSDT-fundingRate-2020-2021.csv"))
    market = default_market("BTC/USDT:USDT")
    assert market is not None
    hedge = hedge_config(instrument="cheapest", max_order=D("0.5"), leverage=2, margin_mode="cross")
    result = await run_backtest(
        candles, market, funding, hedge, {"BTC": D(1)}, {"USDT": D(200000)}, quarterly_basis=Decimal("0.10"),
    )
    metrics = result.metrics
    assert metrics["instrument"] == "cheapest"
    choices = metrics["instrument_choices"]
    assert choices[0]["when"] == "opening" and all(c["when"] == "roll window" for c in choices[1:])
    assert len(choices) >= 8, "a choice at opening and at each of the quarterly deliveries' windows"
    for choice in choices:
        carries = {symbol: Decimal(rate) for symbol, rate in choice["carries"].items()}
        assert choice["contract"] in carries, "each choice names what it compared"
        perpetual = carries.pop(market.symbol)
        [quarterly] = carries.values()
        if choice["contract"] == market.symbol:
            assert perpetual >= quarterly, "the perpetual is chosen only when it earns the most"
            if choice["held"] not in (None, market.symbol):
                assert perpetual - quarterly > hedge.switch_advantage, f"a quarterly hedge moved for too little: {choice}"
        elif choice["held"] == market.symbol:
            assert quarterly - perpetual > hedge.switch_advantage, f"the perpetual was left for too little: {choice}"
    held = {c["contract"] == market.symbol for c in choices}
    assert held == {True, False}, "over two years both the perpetual and the quarterlies were chosen"
    assert metrics["rolls"] >= 4
    assert metrics["short_within_roll_bounds"] is True, metrics
    assert metrics["liquidations"] == 0 and metrics["coins_sold"] == 0
    assert metrics["funding_quote"] != 0, "funding is paid or earned while the perpetual is held"
    assert result.final_short == D(1)

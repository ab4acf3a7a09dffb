"""Issue 21's coin-only holder: 10 BTC and no stablecoin, hedged at 1x on the coin-margined perpetual, on real history.

Binance hourly BTC and funding, 2020-2021 (../shared/data; the judged run also covers 2022, which does
not ship with the project). Skipped, with the reason, when ../shared is absent.
"""

from __future__ import annotations

import pytest

from hedgebot.backtest import run_backtest
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.feeds import read_candles
from hedgebot.exchange.funding import ReplayFunding
from tests.helpers import D, hedge_config, shared_file

pytestmark = pytest.mark.slow


async def test_a_coin_only_holder_hedged_at_1x_on_the_coin_margined_perpetual_is_never_liquidated_sells_no_coin_and_holds_its_dollar_value() -> None:
    candles = read_candles(shared_file("BTCUSDT-1h-spot-2020-2021.csv"))
    funding = ReplayFunding.from_csv(shared_file("BTCUSDT-fundingRate-2020-2021.csv"))
    market = default_market("BTC/USD:BTC")
    assert market is not None and market.inverse
    hedge = hedge_config(symbol="BTC/USD:BTC", instrument="coinm-perp", leverage=1, max_order=D(20),
                         margin_guard={"sources": ["futures_wallet", "spot_stablecoin"]})
    result = await run_backtest(candles, market, funding, hedge, {"BTC": D(10)}, {})
    metrics = result.metrics
    assert metrics["liquidations"] == 0
    assert metrics["coins_sold"] == 0 and metrics["instrument"] == "coinm-perp" and metrics["rolls"] == 0
    assert metrics["margin_asset"] == "BTC"
    # The 2020-2021 rally took BTC from 7,200 to 69,000: the hedged dollar value barely moved.
    assert metrics["hedge_value_volatility"] <= 0.05 * metrics["unhedged_value_volatility"], metrics
    assert metrics["max_abs_drift_ratio"] < 0.1


async def test_coins_already_in_the_coin_margined_wallet_count_as_coins_in_the_unhedged_baseline() -> None:
    candles = read_candles(shared_file("BTCUSDT-1h-spot-2020-2021.csv"))[:2000]
    funding = ReplayFunding.from_csv(shared_file("BTCUSDT-fundingRate-2020-2021.csv"))
    market = default_market("BTC/USD:BTC")
    hedge = hedge_config(symbol="BTC/USD:BTC", instrument="coinm-perp", leverage=1, max_order=D(20),
                         margin_guard={"sources": ["futures_wallet", "spot_stablecoin"]})
    in_spot = (await run_backtest(candles, market, funding, hedge, {"BTC": D(10)}, {})).metrics
    in_futures = (await run_backtest(candles, market, funding, hedge, {}, {"BTC": D(10)})).metrics
    assert in_futures["unhedged_value_end"] == pytest.approx(in_spot["unhedged_value_end"])
    assert in_futures["unhedged_value_volatility"] == pytest.approx(in_spot["unhedged_value_volatility"])
    assert in_futures["unhedged_value_end"] > 10 * float(candles[-1].close) * 0.99  # ten coins, not ten dollars

"""Backtests of a long hedge for a planned purchase, on synthetic paths (seeded): a rally while the coins are
bought in parts keeps the long equal to what is left to buy and the purchase's cost flat; a crash does not
liquidate a long whose guard has money."""

from __future__ import annotations

import math
import random
from decimal import Decimal

from hedgebot.backtest import SpotChange, run_backtest
from hedgebot.domain.instrument import HedgeSide
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.feeds import Candle
from hedgebot.exchange.funding import ConstantFunding
from tests.helpers import D, SYMBOL, hedge_config

START = 1_609_459_200.0
HOUR = 3600.0


def _path(n: int, drift: float, seed: int, start: float = 30000.0) -> list[Candle]:
    """Return `n` hourly candles moving by `drift` per hour on average, with seeded noise."""
    rng = random.Random(seed)
    price = start
    out = []
    for i in range(n):
        close = price * math.exp(drift + rng.gauss(0, 0.004))
        hi, lo = max(price, close) * 1.001, min(price, close) * 0.999
        out.append(Candle(START + i * HOUR, D(f"{price:.2f}"), D(f"{hi:.2f}"), D(f"{lo:.2f}"), D(f"{close:.2f}")))
        price = close
    return out


def _buying(amount: str, **overrides: object):
    return hedge_config(side=HedgeSide.LONG, amount=D(amount), tick_seconds=HOUR, max_order=D("10"), **overrides)


async def test_a_rally_while_the_coins_are_bought_in_parts_keeps_the_long_at_what_is_left_and_the_cost_flat() -> None:
    candles = _path(600, 0.0012, seed=11)  # about doubles
    purchases = [SpotChange(START + day * 24 * HOUR + 1, "BTC", D("1")) for day in (5, 10, 15, 20)]
    result = await run_backtest(
        candles, default_market(SYMBOL), ConstantFunding(D("0.0001")), _buying("5"),
        {"BTC": D(0), "USDT": D(0)}, {"USDT": D(100000)}, interval_seconds=HOUR, spot_changes=purchases,
    )
    m = result.metrics
    assert m["instrument"] == "usdm-perp" and m["side"] == "long"
    assert result.liquidations == 0
    assert result.final_exposure == D("1") and result.final_short == D("1")  # 4 of 5 bought: the long is the fifth left
    assert float(result.last_price) > 1.8 * float(result.first_price)
    # The planned purchase's price rise is paid by the long: the hedged cost barely moves, the unhedged one soars.
    assert m["hedge_value_volatility"] < m["unhedged_value_volatility"] / 5
    assert m["max_abs_drift_ratio"] <= 0.05


async def test_a_crash_does_not_liquidate_a_long_whose_guard_has_money() -> None:
    candles = _path(400, -0.0015, seed=7)  # falls by about 45 %
    result = await run_backtest(
        candles, default_market(SYMBOL), ConstantFunding(D("0.0001")), _buying("3", leverage=3),
        {"BTC": D(0), "USDT": D(60000)}, {"USDT": D(40000)}, interval_seconds=HOUR,
    )
    assert float(result.last_price) < 0.6 * float(result.first_price)
    assert result.liquidations == 0 and result.topups > 0
    assert result.final_short == D("3")
    assert result.metrics["min_liquidation_distance"] >= 0.15  # the guard kept the long away from its liquidation

"""Replay Binance 2020-2021 hourly BTC and funding through the keeper; print the margin figures.

Run: .venv/bin/python bench/backtest_bull_run.py   (needs ../shared/data beside the repository)
"""

from __future__ import annotations

import asyncio
import sys
import time
from decimal import Decimal
from pathlib import Path

from hedgebot.backtest import run_backtest
from hedgebot.config import HedgeConfig
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.feeds import read_candles
from hedgebot.exchange.funding import ReplayFunding

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

SCENARIOS = {
    "guard on, stablecoin in spot": ({"enabled": True}, "700000"),
    "guard on, sell spot only": ({"enabled": True, "sources": ["futures_wallet", "sell_spot"]}, "0"),
    "guard off": ({"enabled": False}, "700000"),
}


async def main() -> int:
    candles_path = DATA / "BTCUSDT-1h-spot-2020-2021.csv"
    funding_path = DATA / "BTCUSDT-fundingRate-2020-2021.csv"
    if not candles_path.exists() or not funding_path.exists():
        print(f"skipped: {DATA} is absent (real market data lives in ../shared beside the repository)")
        return 0
    candles = read_candles(candles_path)
    funding = ReplayFunding.from_csv(funding_path)
    market = default_market("BTC/USDT:USDT")
    assert market is not None
    print("10 BTC spot, full hedge, 3x isolated short, 30,000 USDT in the futures wallet; hourly candles 2020-2021")
    for name, (guard, spot_usdt) in SCENARIOS.items():
        hedge = HedgeConfig(name="btc", asset="BTC", symbol=market.symbol, ratio=Decimal(1), leverage=3, max_order=Decimal(5), margin_guard=guard)
        started = time.perf_counter()
        result = await run_backtest(candles, market, funding, hedge, {"BTC": Decimal(10), "USDT": Decimal(spot_usdt)}, {"USDT": Decimal(30000)})
        elapsed = time.perf_counter() - started
        print(f"\n{name} (spot USDT {spot_usdt}): {elapsed:.1f} s wall, {elapsed / result.candles * 1e3:.2f} ms per candle")
        for key, value in result.summary().items():
            print(f"  {key:<24} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

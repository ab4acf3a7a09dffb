"""Replay Binance 2020-2021 hourly BTC and funding through the keeper; print the margin guard's figures.

Run: .venv/bin/python bench/backtest_bull_run.py [--quick]   (needs ../shared/data beside the repository)

For each scenario it prints the runway the keeper computed at the start (how far a rally the
margin sources pay for), whether the short was liquidated, the account's value against
start + funding - fees, the coins sold for margin and what a sale left idle in spot, and the
alerts raised (each raised once; `repeated` are the lifecycle's reminders while it lasts).
"""

from __future__ import annotations

import asyncio
import sys
import time
from decimal import Decimal
from pathlib import Path

from _bench import emit, print_machine
from _bench import parser as bench_parser
from hedgebot.backtest import run_backtest
from hedgebot.config import HedgeConfig
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.feeds import read_candles
from hedgebot.exchange.funding import ReplayFunding

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# name: (margin_guard section, spot USDT, futures USDT, candle slice)
SCENARIOS: dict[str, tuple[dict, str, str, slice]] = {
    "guard on, 700,000 USDT in spot": ({"enabled": True}, "700000", "30000", slice(None)),
    "guard on, futures wallet then sell spot, no stablecoin": (
        {"enabled": True, "sources": ["futures_wallet", "sell_spot"]}, "0", "30000", slice(None),
    ),
    "guard on, 100,000 USDT in spot (a runway too short)": ({"enabled": True}, "100000", "30000", slice(None)),
    "2021 only (from 28,572), guard on, 700,000 USDT in spot": ({"enabled": True}, "700000", "110000", slice(8760, None)),
    "2021 only, guard on, futures wallet then sell spot": (
        {"enabled": True, "sources": ["futures_wallet", "sell_spot"]}, "0", "110000", slice(8760, None),
    ),
    "guard off": ({"enabled": False}, "700000", "30000", slice(None)),
}


async def main(quick: bool) -> int:
    candles_path = DATA / "BTCUSDT-1h-spot-2020-2021.csv"
    funding_path = DATA / "BTCUSDT-fundingRate-2020-2021.csv"
    if not candles_path.exists() or not funding_path.exists():
        print(f"skipped: {DATA} is absent (real market data lives in ../shared beside the repository)")
        emit({"skipped": str(DATA)})
        return 0
    print_machine()
    candles = read_candles(candles_path)
    funding = ReplayFunding.from_csv(funding_path)
    market = default_market("BTC/USDT:USDT")
    assert market is not None
    figures: dict[str, dict[str, object]] = {}
    print("10 BTC spot, full hedge, 3x isolated short; Binance hourly candles and funding")
    for name, (guard, spot_usdt, futures_usdt, window) in SCENARIOS.items():
        hedge = HedgeConfig(name="btc", asset="BTC", symbol=market.symbol, ratio=Decimal(1), leverage=3, max_order=Decimal(5), margin_guard=guard)
        chosen = candles[window]
        if quick:
            chosen = chosen[:500]  # three weeks: seconds, not minutes
        started = time.perf_counter()
        result = await run_backtest(
            chosen, market, funding, hedge, {"BTC": Decimal(10), "USDT": Decimal(spot_usdt)}, {"USDT": Decimal(futures_usdt)}
        )
        elapsed = time.perf_counter() - started
        peak = result.peak_price
        runway = result.runway_at_start
        verdict = "-" if runway is None else ("sufficed" if runway >= peak else "did not suffice")
        print(f"\n{name} (futures USDT {futures_usdt}): {elapsed:.1f} s wall, {elapsed / result.candles * 1e3:.2f} ms per candle")
        print(f"  {'runway vs peak':<24} {runway if runway is None else f'{runway:.2f}'} vs {peak}: the runway {verdict}")
        for key, value in result.summary().items():
            print(f"  {key:<24} {value}")
        critical_raised = sum(v for k, v in result.alerts.items() if k.endswith("raised") and k.split()[0] in {"margin_unfunded", "reopen_unfunded", "liquidated", "margin_sale_failed"})
        print(f"  {'critical alerts raised':<24} {critical_raised}")
        figures[name] = {
            "wall_seconds": round(elapsed, 2), "candles": result.candles, "liquidations": result.liquidations,
            "runway_at_start": runway, "peak_price": peak, "critical_alerts_raised": critical_raised,
        }
    emit(figures)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(bench_parser(__doc__).parse_args().quick)))

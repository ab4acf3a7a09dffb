"""Hedge quality on real history: the band policy against a fixed-interval one.

Run: .venv/bin/python bench/quality.py [--quick]     (needs ../shared/data beside the repository)

Binance BTC/USDT hourly candles and BTCUSDT funding, 2020-2021, through the
real keeper and paper venue. The account: 10 BTC spot, 1,500,000 USDT spot,
30,000 USDT in the futures wallet, a full 3x isolated short with the margin
guard on. The spot-change script is a miner's and a fund's life: 0.03 BTC
mined every day at 00:00, 2 BTC withdrawn on the 1st of each month, and
1.5 BTC deposited on the 15th. The fixed-interval policy trades back to the
exact target every 60 minutes (as Hummingbot's hedge strategy does) and
looks at nothing in between.

Goals: the band policy at least as tight (time outside the 2 % band and the
largest drift no worse), at least 30 % fewer orders, and no liquidation.
Ends with a JSON object.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from _bench import emit, goal, machine, print_machine
from _bench import parser as bench_parser
from hedgebot.backtest import BacktestResult, FixedInterval, SpotChange, run_backtest
from hedgebot.clock import run_simulated
from hedgebot.config import HedgeConfig
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.feeds import read_candles
from hedgebot.exchange.funding import ReplayFunding

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def spot_script(start: float, end: float) -> list[SpotChange]:
    """Return the miner's and fund's spot changes between `start` and `end`."""
    changes: list[SpotChange] = []
    day = int(start // 86400 + 1) * 86400
    while day < end:
        date = datetime.fromtimestamp(day, UTC)
        changes.append(SpotChange(day, "BTC", Decimal("0.03")))
        if date.day == 1:
            changes.append(SpotChange(day + 9 * 3600, "BTC", Decimal("-2")))
        if date.day == 15:
            changes.append(SpotChange(day + 15 * 3600, "BTC", Decimal("1.5")))
        day += 86400
    return changes


def figures(result: BacktestResult) -> dict[str, Any]:
    m = result.metrics
    return {
        "orders": m["orders"],
        "fees_quote": round(float(m["fees_quote"]), 2),
        "time_outside_band_ratio": round(m["time_outside_band_ratio"], 5),
        "max_abs_drift_ratio": round(m["max_abs_drift_ratio"], 5),
        "hedge_value_volatility": round(m["hedge_value_volatility"], 5),
        "liquidations": m["liquidations"],
        "min_liquidation_distance": round(m["min_liquidation_distance"], 4),
        "topups": m["topups"],
    }


def main() -> int:
    args = bench_parser(__doc__).parse_args()
    candles_path = DATA / "BTCUSDT-1h-spot-2020-2021.csv"
    funding_path = DATA / "BTCUSDT-fundingRate-2020-2021.csv"
    if not candles_path.exists() or not funding_path.exists():
        print(json.dumps({"skipped": f"{DATA} is absent (real market data lives in ../shared beside the repository)"}))
        return 0
    print_machine()
    candles = read_candles(candles_path)
    if args.quick:
        candles = candles[:720]  # a month: seconds, not minutes
    funding = ReplayFunding.from_csv(funding_path)
    market = default_market("BTC/USDT:USDT")
    assert market is not None
    hedge = HedgeConfig(
        name="btc", asset="BTC", symbol=market.symbol, ratio=Decimal(1), band=Decimal("0.02"), leverage=3,
        max_order=Decimal(5), margin_guard={"enabled": True},
    )
    changes = spot_script(candles[0].time, candles[-1].time)
    out: dict[str, Any] = {"candles": len(candles), "spot_changes": len(changes), "machine": machine()}
    for name, fixed in (("band", None), ("interval:60m", FixedInterval(3600))):
        started = time.perf_counter()
        result = run_simulated(
            run_backtest(
                candles, market, funding, hedge, {"BTC": Decimal(10), "USDT": Decimal(1_500_000)}, {"USDT": Decimal(30_000)},
                spot_changes=changes, fixed=fixed, record_equity=False,
            )
        )
        out[name] = figures(result)
        out[name]["wall_seconds"] = round(time.perf_counter() - started, 1)
    band, fixed_ = out["band"], out["interval:60m"]
    print(f"{'policy':<14} {'orders':>7} {'fees':>10} {'outside band':>13} {'max drift':>10} {'hedge vol':>10} {'liquidations':>13}")
    for name in ("band", "interval:60m"):
        f = out[name]
        print(f"{name:<14} {f['orders']:>7} {f['fees_quote']:>10.2f} {f['time_outside_band_ratio']:>12.3%} "
              f"{f['max_abs_drift_ratio']:>9.3%} {f['hedge_value_volatility']:>9.3%} {f['liquidations']:>13}")
    fewer = 1 - band["orders"] / fixed_["orders"] if fixed_["orders"] else 0.0
    out["orders_fewer_ratio"] = round(fewer, 4)
    out["goals"] = {
        "at_least_as_tight": band["time_outside_band_ratio"] <= fixed_["time_outside_band_ratio"]
        and band["max_abs_drift_ratio"] <= fixed_["max_abs_drift_ratio"],
        "at_least_30_percent_fewer_orders": fewer >= 0.30,
        "no_liquidations_with_the_guard_on": band["liquidations"] == 0,
    }
    print(f"band policy: {fewer:.1%} fewer orders; goals: {out['goals']}")
    out["goal_met"] = all(out.pop("goals").values())
    emit(out, [
        goal("band policy: orders fewer than the 60-minute interval", round(fewer, 4), 0.30, upper=False),
        goal("band policy: time outside the band vs the interval's", band["time_outside_band_ratio"],
             fixed_["time_outside_band_ratio"] or 1e-9),
        goal("band policy: largest drift vs the interval's", band["max_abs_drift_ratio"], fixed_["max_abs_drift_ratio"] or 1e-9),
        goal("liquidations with the guard on", band["liquidations"], 0.5),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The 10-BTC holder of issue 19: 10 BTC, no stablecoin, 50,000 USDT of futures margin, full hedge at 3x,
`sell_spot` among the guard's sources, Binance hourly BTC from 2021-01-01; with and without
`margin_guard.fund_target_by_selling`.

Run: .venv/bin/python bench/backtest_fund_by_selling.py [--quick]   (needs ../shared/data beside the repository)

Prints, per run: whether the target was reached, the time under-hedged, the final short and
exposure, coins sold, liquidations, critical alerts, and the hedged value's volatility as a
share of the unhedged holding's.
"""

from __future__ import annotations

import asyncio
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
START = 1_609_459_200  # 2021-01-01 UTC


async def main(quick: bool) -> None:
    print_machine()
    candles = [c for c in read_candles(DATA / "BTCUSDT-1h-spot-2020-2021.csv") if c.time >= START]
    if quick:
        candles = candles[:500]  # three weeks: seconds, not minutes
    figures: dict[str, dict[str, object]] = {}
    funding = ReplayFunding.from_csv(DATA / "BTCUSDT-fundingRate-2020-2021.csv")
    market = default_market("BTC/USDT:USDT")
    assert market is not None
    for opt_in in (False, True):
        hedge = HedgeConfig(
            name="btc", asset="BTC", symbol="BTC/USDT:USDT", ratio=Decimal(1), leverage=3, max_order=Decimal(5),
            margin_guard={"sources": ["futures_wallet", "sell_spot"], "fund_target_by_selling": opt_in},
        )
        began = time.monotonic()
        r = await run_backtest(candles, market, funding, hedge, {"BTC": Decimal(10)}, {"USDT": Decimal(50000)})
        m = r.metrics
        share = m["hedge_value_volatility"] / m["unhedged_value_volatility"]
        print(
            f"fund_target_by_selling={opt_in}: target reached {m['target_reached']}, under-hedged "
            f"{m['time_under_hedged_ratio']:.2%} of the time, final short {r.final_short} of exposure {r.final_exposure}, "
            f"coins sold {r.coins_sold}, liquidations {r.liquidations}, critical alerts {r.critical_alerts}, "
            f"max |drift| {m['max_abs_drift_ratio']:.4f}, outside band {m['time_outside_band_ratio']:.2%}, "
            f"hedged vol {m['hedge_value_volatility']:.4f} / unhedged {m['unhedged_value_volatility']:.4f} = {share:.2%} "
            f"({time.monotonic() - began:.0f} s)"
        )
        figures[f"fund_target_by_selling={opt_in}"] = {
            "target_reached": m["target_reached"], "time_under_hedged_ratio": m["time_under_hedged_ratio"],
            "coins_sold": r.coins_sold, "liquidations": r.liquidations, "critical_alerts": r.critical_alerts,
            "hedged_volatility_share": share, "wall_seconds": round(time.monotonic() - began, 2),
        }
    emit(figures)


if __name__ == "__main__":
    asyncio.run(main(bench_parser(__doc__).parse_args().quick))

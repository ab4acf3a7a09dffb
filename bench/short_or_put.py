"""Short or put: what each cost on the same holding, replayed on Binance hourly BTC 2020-2021 (../shared/data).

Run: .venv/bin/python bench/short_or_put.py [--quick]

1 BTC held throughout. The short: a perpetual at 2x cross margin, Binance's settled funding from the
funding file, 200,000 USDT in the futures wallet. The put: ratio 1, floor 0.85, 30-day expiry rolled
2 days ahead, bought on the paper options book whose prices are a MODEL (the trailing 30-day realised
volatility x 1.2, Black-Scholes, a 2 % spread either side of the mark, Deribit's fee); no historical
option prices ship with the project. It prints, per year held: what the short paid or earned in funding
and fees, the margin it locked (at the start, at the peak), its lowest runway, and what the puts cost in
premiums and fees against what they paid back.
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
from hedgebot.commands.backtest.put import run_put_backtest
from hedgebot.config import HedgeConfig
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.feeds import read_candles
from hedgebot.exchange.funding import ReplayFunding

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
YEAR = 365.25 * 86400


async def main(quick: bool) -> int:
    candles_path = DATA / "BTCUSDT-1h-spot-2020-2021.csv"
    funding_path = DATA / "BTCUSDT-fundingRate-2020-2021.csv"
    if not candles_path.exists() or not funding_path.exists():
        print(f"skipped: {DATA} is absent (real market data lives in ../shared beside the repository)")
        emit({"skipped": str(DATA)})
        return 0
    print_machine()
    candles = read_candles(candles_path)
    if quick:
        candles = candles[:2000]
    funding = ReplayFunding.from_csv(funding_path)
    market = default_market("BTC/USDT:USDT")
    assert market is not None
    years = (candles[-1].time - candles[0].time) / YEAR
    first, last = candles[0].open, candles[-1].close
    peak = max(c.high for c in candles)
    print(f"{len(candles)} hourly candles, {years:.2f} years, {first} -> {last} (peak {peak}); 1 BTC held")

    started = time.perf_counter()
    short = HedgeConfig(name="btc", asset="BTC", symbol=market.symbol, ratio=Decimal(1), leverage=2, margin_mode="cross",
                        max_order=Decimal("0.5"))
    result = await run_backtest(candles, market, funding, short, {"BTC": Decimal(1)}, {"USDT": Decimal(200000)})
    m = result.metrics
    funding_paid = -Decimal(str(m["funding_quote"]))  # positive: the short paid
    fees = Decimal(str(m["fees_quote"]))
    locked_start = first / short.leverage
    locked_peak = peak / short.leverage
    print(f"\nshort (perpetual, 2x cross): {time.perf_counter() - started:.1f} s")
    print(f"  funding paid (negative: earned) {funding_paid:.2f} USDT, {funding_paid / Decimal(years):.2f} a year")
    print(f"  fees {fees:.2f} USDT; liquidations {m['liquidations']}; coins sold {m['coins_sold']}")
    print(f"  margin locked: {locked_start:.2f} at the start, {locked_peak:.2f} at the peak (1 BTC / 2x)")
    print(f"  lowest runway {m['min_runway']}; hedged value {m['hedged_value_start']} -> {m['hedged_value_end']}")

    started = time.perf_counter()
    put = HedgeConfig(name="btc-put", asset="BTC", symbol=market.symbol, ratio=Decimal(1), instrument="put",
                      floor=Decimal("0.85"), expiry_days=30, max_premium_per_order=Decimal(50000),
                      max_premium_per_month=Decimal(50000))
    p = await run_put_backtest(candles, market, put, {"BTC": Decimal(1), "USDT": Decimal(200000)}, {})
    cost = p.premium_paid + p.option_fees
    net = cost - p.put_payoff - p.puts_bid_value
    print(f"\nput (floor 0.85, 30 days, model prices): {time.perf_counter() - started:.1f} s")
    print(f"  premiums {p.premium_paid:.2f} + fees {p.option_fees:.2f} = {cost:.2f} USDT, {cost / Decimal(years):.2f} a year")
    print(f"  paid back {p.put_payoff:.2f} (sales and expiries) + {p.puts_bid_value:.2f} held at the bid; "
          f"net {net:.2f}, {net / Decimal(years):.2f} a year")
    print(f"  orders {p.orders}; hedged value {p.start_value:.2f} -> {p.hedged_value:.2f} (unhedged {p.unhedged_value:.2f})")
    emit({
        "years": round(years, 3), "short_funding_paid": float(funding_paid), "short_fees": float(fees),
        "short_margin_locked_start": float(locked_start), "short_margin_locked_peak": float(locked_peak),
        "short_min_runway": m["min_runway"], "short_liquidations": m["liquidations"],
        "put_premium": float(p.premium_paid), "put_fees": float(p.option_fees), "put_payoff": float(p.put_payoff),
        "put_held_bid": float(p.puts_bid_value), "put_net": float(net), "put_orders": p.orders,
    })
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(bench_parser(__doc__).parse_args().quick)))

"""Candles per second through the full keeper and paper venue, for a year of 1-minute candles.

Run: .venv/bin/python bench/throughput.py [--candles N] [--quick]

The year is generated (a seeded random walk with BTC-like volatility, prices
to the cent), since ../shared/data holds no year of minutes. Printed:
- the bare loop: reading the same candles and nothing else (the ceiling);
- one hedge through `run_backtest` (keeper, paper venue, funding, liquidation
  checks, equity series), with a 1-hour safety tick and with a 10-second one
  (which a replay rounds up to one tick per candle);
- ten hedges side by side on one simulated clock;
- reading the candle file itself.
Ends with a JSON object of the figures.
"""

from __future__ import annotations

import math
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from _bench import emit, goal, machine, print_machine
from _bench import parser as bench_parser
from hedgebot.backtest import run_backtest, run_side_by_side
from hedgebot.clock import run_simulated
from hedgebot.config import HedgeConfig
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.feeds import Candle, read_candles
from hedgebot.exchange.funding import ConstantFunding

YEAR_OF_MINUTES = 365 * 24 * 60
START = 1_609_459_200.0  # 2021-01-01 UTC
GOAL = 100_000


def generate(n: int, seed: int = 11) -> list[Candle]:
    """Return `n` one-minute candles of a random walk at about 80 % annual volatility."""
    rng = random.Random(seed)
    sigma = 0.8 / math.sqrt(YEAR_OF_MINUTES)
    price = 30000.0
    out: list[Candle] = []
    cent = Decimal("0.01")
    for i in range(n):
        close = price * math.exp(rng.gauss(0.0, sigma))
        wiggle = abs(rng.gauss(0.0, sigma / 2))
        o = Decimal(f"{price:.2f}")
        c = Decimal(f"{close:.2f}")
        h = max(o, c, Decimal(f"{max(price, close) * (1 + wiggle):.2f}")).quantize(cent)
        low = min(o, c, Decimal(f"{min(price, close) * (1 - wiggle):.2f}")).quantize(cent)
        out.append(Candle(START + 60.0 * i, o, h, low, c))
        price = close
    return out


def bare_loop(candles: list[Candle]) -> float:
    """Return candles/s of a loop that only reads each candle's fields."""
    started = time.perf_counter()
    watch = Decimal("1e12")
    hits = 0
    for candle in candles:
        if candle.high > watch or candle.low <= 0 or candle.close != candle.close or candle.time < 0:
            hits += 1
    elapsed = time.perf_counter() - started
    assert hits == 0
    return len(candles) / elapsed


def hedge(name: str = "btc", tick: float = 3600.0, band: str = "0.02") -> HedgeConfig:
    """Return a full 3x isolated BTC hedge with the margin guard on."""
    return HedgeConfig(
        name=name, asset="BTC", symbol="BTC/USDT:USDT", ratio=Decimal(1), band=Decimal(band), leverage=3,
        max_order=Decimal(5), tick_seconds=tick, margin_guard={"enabled": True},
    )


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--candles", type=int, default=YEAR_OF_MINUTES)
    args = parser.parse_args()
    n = 2_000 if args.quick else args.candles
    print_machine()
    print(f"generating {n:,} one-minute candles ...", flush=True)
    candles = generate(n)
    market = default_market("BTC/USDT:USDT")
    assert market is not None
    funding = ConstantFunding(Decimal("0.0001"))
    spot = {"BTC": Decimal(10), "USDT": Decimal(1_000_000)}
    futures = {"USDT": Decimal(200_000)}
    figures: dict[str, float | int] = {"candles": n}

    bare = max(bare_loop(candles) for _ in range(3))
    figures["bare_loop_candles_per_s"] = round(bare)
    print(f"bare loop reading the candles:            {bare:>12,.0f} candles/s")

    def one(tick: float, count: int) -> tuple[float, int]:
        started = time.perf_counter()
        result = run_simulated(run_backtest(candles[:count], market, funding, hedge(tick=tick), dict(spot), dict(futures), interval_seconds=60))
        elapsed = time.perf_counter() - started
        assert result.liquidations == 0
        return count / elapsed, result.keeper_wakes

    rate, wakes = one(3600.0, n)
    figures["one_hedge_candles_per_s"] = round(rate)
    figures["one_hedge_seconds_for_the_run"] = round(n / rate, 2)
    figures["one_hedge_price_wakes"] = wakes
    figures["ratio_to_bare_loop"] = round(rate / bare, 4)
    print(f"one hedge, 1 h safety tick (full keeper): {rate:>12,.0f} candles/s  ({n / rate:.1f} s for the run, "
          f"{rate / bare:.1%} of the bare loop; keeper woken by prices/events {wakes:,} times; goal {GOAL:,})")

    short = min(n, 50_000)
    rate10, _ = one(10.0, short)
    figures["one_hedge_tick_10s_candles_per_s"] = round(rate10)
    print(f"one hedge, 10 s tick (one tick per candle): {rate10:>10,.0f} candles/s  (over the first {short:,} candles)")

    started = time.perf_counter()
    results = run_simulated(
        run_side_by_side(
            candles, market, funding,
            [(hedge(f"h{i}", band=f"0.0{1 + i % 5}"), dict(spot), dict(futures)) for i in range(10)],
            interval_seconds=60,
        )
    )
    elapsed = time.perf_counter() - started
    assert all(r.liquidations == 0 for r in results)
    figures["ten_hedges_candles_per_s"] = round(n / elapsed)
    figures["ten_hedges_hedge_candles_per_s"] = round(10 * n / elapsed)
    print(f"ten hedges side by side:                  {n / elapsed:>12,.0f} candles/s  ({10 * n / elapsed:,.0f} hedge-candles/s)")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "year.csv"
        with path.open("w") as f:
            f.write("date,open,high,low,close,volume\n")
            for c in candles:
                f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(c.time))},{c.open},{c.high},{c.low},{c.close},1\n")
        started = time.perf_counter()
        read_candles(path)
        parse = n / (time.perf_counter() - started)
    figures["csv_read_candles_per_s"] = round(parse)
    print(f"reading the year from a freqtrade CSV:    {parse:>12,.0f} candles/s")
    figures["goal_met"] = rate >= GOAL
    figures["machine"] = machine()  # type: ignore[assignment]
    emit(figures, [goal("one hedge through the keeper, 1 h safety tick", round(rate), GOAL, upper=False, unit="candles/s")])
    return 0


if __name__ == "__main__":
    sys.exit(main())

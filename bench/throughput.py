"""Candles per second for a year of 1-minute candles: the backtest command end to end, and through the keeper.

Run: .venv/bin/python bench/throughput.py [--candles N] [--quick]

The year is generated (a seeded random walk with BTC-like volatility, prices
to the cent), since ../shared/data holds no year of minutes. Printed:
- the command end to end: `hedgebot backtest` on a freqtrade CSV of the year,
  for one 3x isolated BTC hedge with a 10-second safety tick and the margin
  guard on, timed from the command's start to its written summary.json (the
  interpreter's start, the imports, the parse and the replay; equity.csv and
  the other files are written after it), the best of three runs, with
  hedgebot's modules compiled to bytecode first as an installed package has
  them; the interpreter's start and imports alone; and the same in this
  process from the parse to the written summary;
- a bare NumPy scan of the same arrays (one vectorised look at every
  candle's high, low and close), and the command's ratio to it;
- the bare loop: reading the parsed candles in Python and nothing else;
- one hedge through `run_backtest` (keeper, paper venue, funding, liquidation
  checks, equity series), with a 1-hour safety tick and with a 10-second one;
- ten hedges side by side on one simulated clock;
- reading the candle file into columns (Arrow) and into Candles of Decimals;
- the command's hedge replayed over the year candle by candle (the replay before the leap) and leaping:
  the same orders, fills and summary, or the bench says not.
Ends with a JSON object of the figures.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import numpy as np

from _bench import emit, goal, machine, print_machine
from _bench import parser as bench_parser
from hedgebot.backtest import BacktestResult, TradeRow, run_backtest, run_side_by_side
from hedgebot.clock import run_simulated
from hedgebot.config import HedgeConfig
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.feeds import Candle, read_candle_columns, read_candles
from hedgebot.domain.model import Market
from hedgebot.exchange.funding import ConstantFunding, FundingSource

YEAR_OF_MINUTES = 365 * 24 * 60
START = 1_609_459_200.0  # 2021-01-01 UTC
GOAL = 100_000
END_TO_END_GOAL = 1_000_000
CONFIG = """
[[accounts]]
name = "paper"
exchange = "binanceusdm"
mode = "paper"

[accounts.paper]
spot = { BTC = "10", USDT = "1000000" }
futures = { USDT = "200000" }

[[accounts.paper.markets]]
symbol = "BTC/USDT:USDT"
feed = { kind = "synthetic", start_price = "30000", step_seconds = 60 }
funding = { rate = "0.0001", interval_hours = 8 }

[[accounts.hedges]]
name = "btc"
asset = "BTC"
symbol = "BTC/USDT:USDT"
ratio = "1"
band = "0.02"
leverage = 3
max_order = "5"
tick_seconds = 10
margin_guard = { enabled = true }
"""


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


def numpy_scan(path: Path) -> float:
    """Return candles/s of one vectorised look at every candle's high, low and close in the file's float arrays."""
    time_, _, high, low, close = read_candle_columns(path).float_columns()
    best = 0.0
    for _ in range(5):
        started = time.perf_counter()
        hits = np.flatnonzero((high >= 1e12) | (low <= 0) | (close != close) | (time_ < 0))
        elapsed = time.perf_counter() - started
        assert len(hits) == 0
        best = max(best, len(high) / elapsed)
    return best


def write_year(candles: list[Candle], path: Path) -> None:
    """Write the candles as a freqtrade CSV."""
    with path.open("w") as f:
        f.write("date,open,high,low,close,volume\n")
        for c in candles:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(c.time))},{c.open},{c.high},{c.low},{c.close},1\n")


def compile_bytecode() -> None:
    """Compile hedgebot's modules to bytecode, as `pip install` does: the command then starts as an installed one.

    Without it (PYTHONDONTWRITEBYTECODE, or a source tree never imported) every start compiles them again.
    """
    import compileall

    import hedgebot

    compileall.compile_dir(str(Path(hedgebot.__file__).parent), quiet=1)


def import_seconds() -> float:
    """Return the best of three: seconds a fresh interpreter takes to start and import the command line."""
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import hedgebot.commands.main"], check=True)
        best = min(best, time.perf_counter() - started)
    return best


def command_to_summary(workdir: Path, prices: Path) -> tuple[float, dict[str, object]]:
    """Run `hedgebot backtest` as a user does; return the seconds from its start to its written summary.json, and the summary."""
    out = workdir / "out"
    command = [
        sys.executable, "-m", "hedgebot.commands.main", "backtest", "--config", str(workdir / "bench.toml"), "--hedge", "btc",
        "--prices", str(prices), "--out", str(out), "--no-chart",
    ]
    started = time.time_ns()
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    summary = out / "summary.json"
    return (summary.stat().st_mtime_ns - started) / 1e9, json.loads(summary.read_text())


def in_process_to_summary(workdir: Path, prices: Path) -> tuple[float, float]:
    """Parse, replay and write summary.json in this process as the command does; return (seconds, parse seconds)."""
    from hedgebot.commands.backtest import command as report
    from hedgebot.commands.main import build_parser

    out = workdir / "in_process"
    out.mkdir(exist_ok=True)
    args = build_parser().parse_args(
        ["backtest", "--config", str(workdir / "bench.toml"), "--hedge", "btc", "--prices", str(prices), "--out", str(out)]
    )
    started = time.perf_counter()
    inputs = report.load_inputs(report.InputFiles.of(args), lambda _: None)
    parsed = time.perf_counter()
    result = report.replay_once(inputs)
    report.write_summary(out / "summary.json", report.summary_of(result))
    return time.perf_counter() - started, parsed - started


def same_both_ways(path: Path, market: Market, funding: FundingSource, spot: dict[str, Decimal],
                   futures: dict[str, Decimal]) -> tuple[bool, float, int]:
    """Replay the file candle by candle and leaping, as the command's hedge; return (same trades and summary, seconds
    candle by candle, orders)."""
    candles = read_candle_columns(path)

    def replay(every_candle: bool) -> BacktestResult:
        return run_simulated(run_backtest(candles, market, funding, hedge(tick=10.0), dict(spot), dict(futures),
                                          interval_seconds=60, candle_by_candle=every_candle))

    started = time.perf_counter()
    old = replay(True)
    seconds = time.perf_counter() - started
    new = replay(False)

    def trades(result: BacktestResult) -> list[TradeRow]:
        # An order's client id carries the journal's random epoch: two runs never share it, whatever the replay.
        return [dataclasses.replace(r, detail="") if r.kind == "order" else r for r in result.trades]

    same = (old.summary() == new.summary() and old.metrics == new.metrics and trades(old) == trades(new)
            and old.keeper_wakes == new.keeper_wakes and old.alert_rows == new.alert_rows)
    return same, seconds, old.orders


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

    rate10, _ = one(10.0, n)
    figures["one_hedge_tick_10s_candles_per_s"] = round(rate10)
    print(f"one hedge, 10 s safety tick:              {rate10:>12,.0f} candles/s")

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
        workdir = Path(tmp)
        path = workdir / "year.csv"
        write_year(candles, path)
        (workdir / "bench.toml").write_text(CONFIG)
        started = time.perf_counter()
        read_candles(path)
        parse = n / (time.perf_counter() - started)
        read_candle_columns(path)  # Arrow's first use loads its libraries: not the parse
        started = time.perf_counter()
        read_candle_columns(path)
        columns = n / (time.perf_counter() - started)
        scan = numpy_scan(path)
        compile_bytecode()
        startup = import_seconds()
        runs = [command_to_summary(workdir, path) for _ in range(1 if args.quick else 3)]
        seconds, summary = min(runs, key=lambda run: run[0])
        inside, parse_seconds = in_process_to_summary(workdir, path)
        print("replaying the year candle by candle to compare ...", flush=True)
        same, old_seconds, orders = same_both_ways(path, market, funding, spot, futures)
    end_to_end = n / seconds
    figures["csv_read_candles_per_s"] = round(parse)
    figures["csv_read_columns_candles_per_s"] = round(columns)
    figures["numpy_scan_candles_per_s"] = round(scan)
    figures["end_to_end_candles_per_s"] = round(end_to_end)
    figures["end_to_end_seconds"] = round(seconds, 3)
    figures["end_to_end_seconds_each_run"] = [round(run[0], 3) for run in runs]  # type: ignore[assignment]
    figures["interpreter_and_imports_seconds"] = round(startup, 3)
    figures["end_to_end_ratio_to_numpy_scan"] = round(end_to_end / scan, 5)
    figures["in_process_parse_to_summary_candles_per_s"] = round(n / inside)
    figures["in_process_parse_seconds"] = round(parse_seconds, 3)
    figures["end_to_end_keeper_wakes"] = summary.get("keeper_wakes", -1)  # type: ignore[assignment]
    print(f"reading the year from a freqtrade CSV:    {parse:>12,.0f} candles/s (Candles of Decimals, row by row)")
    print(f"reading it into columns (Arrow):          {columns:>12,.0f} candles/s")
    print(f"bare NumPy scan of the same arrays:       {scan:>12,.0f} candles/s")
    print(f"hedgebot backtest, command to summary:    {end_to_end:>12,.0f} candles/s  ({seconds:.2f} s for {n:,} candles, "
          f"{end_to_end / scan:.3%} of the NumPy scan; keeper woken {summary.get('keeper_wakes')} times)")
    print(f"the same in this process, parse to summary: {n / inside:>10,.0f} candles/s  ({inside:.2f} s, "
          f"of which the parse {parse_seconds:.2f} s)")
    print(f"starting the interpreter and importing the command line: {startup:.2f} s of the command's {seconds:.2f} s "
          f"(best of {len(runs)} runs: {', '.join(f'{run[0]:.2f}' for run in runs)} s)")
    figures["same_trades_and_summary_as_candle_by_candle"] = same
    figures["candle_by_candle_seconds"] = round(old_seconds, 1)
    print(f"the same hedge candle by candle (the replay before the leap): {old_seconds:.1f} s, {orders} orders; "
          f"leaping gives the same orders, fills and summary: {same}")
    figures["one_hedge_goal_met"] = rate >= GOAL  # issue 7's 100,000 candles/s through the keeper
    figures["end_to_end_goal_met"] = end_to_end >= END_TO_END_GOAL  # issue 25's 1,000,000 from command to summary
    figures["machine"] = machine()  # type: ignore[assignment]
    emit(figures, [
        goal("backtest of a year of minutes, command to written summary", round(end_to_end), END_TO_END_GOAL, upper=False,
             unit="candles/s"),
        goal("one hedge through the keeper, 1 h safety tick", round(rate), GOAL, upper=False, unit="candles/s"),
    ])
    return 0 if same else 1  # a leap that changes the results is a bug, whatever its speed


if __name__ == "__main__":
    sys.exit(main())

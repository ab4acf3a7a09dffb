"""`hedgebot backtest`: replay history through a configured hedge and write how it held; `--sweep` runs many.

Owns the command's arguments and its course: check --out, read the inputs (hedgebot.commands.backtest.replay),
replay once (and a `--compare` policy beside it), write the outputs (.outputs, .chart), or hand a beta hedge's
figures to .beta, a put hedge to .put and `--sweep` to .sweep. Inputs are checked before anything runs; a bad
row is reported with its file and line and the command exits 2. Outputs go to one directory: summary.json,
equity.csv, trades.csv, alerts.csv and chart.png. It may NOT hold the replay or the outputs' formats.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from hedgebot.backtest import BacktestResult, FixedInterval
from hedgebot.commands.args import EXIT_BAD_INPUT, EXIT_OK, date_argument, iso, with_config
from hedgebot.commands.backtest import sweep
from hedgebot.commands.backtest.outputs import (
    comparison_table,
    print_summary,
    summary_of,
    write_alerts,
    write_equity,
    write_summary,
    write_trades,
)
from hedgebot.commands.backtest.replay import (
    BadInput,
    InputFiles,
    load_inputs,
    replay_once,
    warn_of_gaps,
    with_exchange_balances,
)
from hedgebot.commands.preflight import writable_problem
from hedgebot.ops.figures import Precision


def register(sub: Any) -> None:
    """Add `backtest` (with its sweep's arguments) to the `hedgebot` parser."""
    p = with_config(sub.add_parser("backtest", help="replay history through a configured hedge and report how it held"))
    p.add_argument("--hedge", required=True, help="name of the hedge to replay (its account's paper balances are used)")
    p.add_argument("--account", help="the hedge's account, when two accounts have a hedge of that name")
    p.add_argument(
        "--prices", type=parse_prices, action="append", required=True, metavar="[ASSET=]FILE",
        help="candles: freqtrade, Binance kline or CryptoDataDownload CSV; one file, or one ASSET=FILE per asset "
        "(a beta hedge needs its holding's and its instrument's: --prices ETH=eth.csv --prices BTC=btc.csv)",
    )
    p.add_argument("--funding", type=Path, help="Binance fundingRate CSV (default: a constant 0.01%% per 8 h)")
    p.add_argument("--from", dest="start", type=date_argument, help="first day or time to replay (UTC)")
    p.add_argument("--to", dest="end", type=date_argument, help="last day or time to replay (UTC, inclusive)")
    p.add_argument("--spot-changes", type=Path, help="CSV of time,asset,amount changes to the spot wallet")
    p.add_argument("--out", type=Path, default=None, help="output directory (default: backtest-<hedge>)")
    p.add_argument("--compare", type=parse_compare, help="also run a fixed-interval policy, e.g. interval:60m")
    p.add_argument("--no-chart", action="store_true", help="skip chart.png")
    p.add_argument(
        "--spot", type=parse_balance, action="append", default=None, metavar="ASSET=AMOUNT",
        help="starting spot balance (repeat per asset); replaces the paper balances, and is how a live account is replayed",
    )
    p.add_argument(
        "--futures", type=parse_balance, action="append", default=None, metavar="ASSET=AMOUNT",
        help="starting futures wallet balance (repeat per asset), as --spot",
    )
    sweep.add_arguments(p)
    p.set_defaults(func=cmd_backtest_or_sweep)


def parse_prices(text: str) -> tuple[str | None, Path]:
    """Parse `FILE` or `ETH=FILE` for argparse."""
    asset, sep, path = text.partition("=")
    if sep and asset.strip().isalnum() and path.strip():
        return asset.strip().upper(), Path(path.strip())
    return None, Path(text)


def parse_balance(text: str) -> tuple[str, Decimal]:
    """Parse `BTC=10` for argparse."""
    asset, sep, amount = text.partition("=")
    try:
        value = Decimal(amount.strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not sep or not asset.strip().isalnum() or not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: use ASSET=AMOUNT with an amount of 0 or more, e.g. BTC=10 or USDT=50000")
    return asset.strip().upper(), value


def parse_compare(text: str) -> FixedInterval:
    """Parse `interval:60m` (also s, h, d) for argparse."""
    kind, _, value = text.partition(":")
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if kind != "interval" or value[-1] not in units:
            raise ValueError
        seconds = float(value[:-1]) * units[value[-1]]
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"{text!r}: use interval:N with a unit, e.g. interval:60m or interval:4h") from None
    return FixedInterval(seconds)


def _progress(total: int) -> tuple[Callable[[int], None] | None, Callable[[], None]]:
    if not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="candle", unit_scale=True, file=sys.stderr, leave=False)

    def update(done: int) -> None:
        bar.update(done - bar.n)

    return update, bar.close


def cmd_backtest(args: argparse.Namespace) -> int:
    """Run `hedgebot backtest`; return the exit code."""
    def warn(message: str) -> None:
        print(f"hedgebot: warning: {message}", file=sys.stderr)

    out: Path = args.out or Path(f"backtest-{args.hedge}")
    try:
        problem = writable_problem("--out", out)
        if problem:
            raise BadInput(problem)
        inputs = load_inputs(with_exchange_balances(InputFiles.of(args), print), warn)
    except BadInput as exc:
        print(f"hedgebot: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    candles, market, hedge = inputs.candles, inputs.market, inputs.hedge
    warn_of_gaps(inputs, inputs.prices or args.prices, warn)
    out.mkdir(parents=True, exist_ok=True)
    extra: dict[str, Any] = {}
    if hedge.beta:
        from hedgebot.commands.backtest.beta import beta_figures

        # The beta, the correlation and the out-of-sample variance reduction beside the one-for-one dollar hedge's,
        # from the same estimator walked through both files' closes; the replay itself is the engine's, below.
        figures = beta_figures(inputs, warn)
        if figures is None:
            return EXIT_BAD_INPUT
        extra = figures
    if hedge.instrument.option:
        from hedgebot.commands.backtest.put import write_put_backtest

        unused = [flag for flag, given in (("--compare", args.compare), ("--spot-changes", args.spot_changes)) if given]
        if unused:
            print(f"hedgebot: {', '.join(unused)}: not supported for a put hedge yet (instrument = \"put\"); "
                  "nothing was run", file=sys.stderr)
            return EXIT_BAD_INPUT
        return write_put_backtest(inputs, out)

    def replay(fixed: FixedInterval | None) -> BacktestResult:
        update, close = _progress(len(candles))
        try:
            return replay_once(inputs, fixed=fixed, progress=update)
        finally:
            close()

    result = replay(None)
    summary = summary_of(result)
    if hedge.beta:
        from hedgebot.commands.backtest.beta import keeper_figures

        summary.update(extra)
        summary["keeper"] = keeper_figures(result, summary)
    rows = [("band (as configured)", result)]
    if args.compare is not None:
        other = replay(args.compare)
        rows.append((args.compare.label, other))
        summary["comparison"] = {args.compare.label: summary_of(other)}
    write_summary(out / "summary.json", summary)
    write_equity(out / "equity.csv", result)
    write_trades(out / "trades.csv", result)
    write_alerts(out / "alerts.csv", result)
    if not args.no_chart:
        from hedgebot.commands.backtest.chart import write_chart

        write_chart(
            out / "chart.png", result, hedge, f"{hedge.name}: {hedge.symbol} {iso(candles[0].time)[:10]} to {iso(candles[-1].time)[:10]}",
            compare=(rows[1][0], rows[1][1]) if len(rows) > 1 else None,
        )
    print_summary(summary, Precision.of(market))
    if args.compare is not None:
        print()
        print(comparison_table(rows))
    print(f"\nwrote {out}/summary.json, equity.csv, trades.csv, alerts.csv" + ("" if args.no_chart else ", chart.png"))
    return EXIT_OK


def cmd_backtest_or_sweep(args: argparse.Namespace) -> int:
    """Run a sweep when --sweep is given, else the one backtest."""
    if not args.sweep:
        for flag, given in (("--workers", args.workers is not None), ("--executor", args.executor is not None)):
            if given:
                print(f"hedgebot: {flag} applies to a sweep: add --sweep KEY=V1,V2,...", file=sys.stderr)
                return EXIT_BAD_INPUT
        return cmd_backtest(args)
    return sweep.cmd_sweep(args)

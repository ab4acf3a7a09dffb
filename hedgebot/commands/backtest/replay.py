"""`hedgebot backtest`: read history files, replay a configured hedge, write the report.

Inputs are checked before anything runs; a bad row is reported with its file
and line and the command exits 2. Outputs go to one directory: summary.json,
equity.csv, trades.csv, alerts.csv and chart.png.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from hedgebot.access import unreadable
from hedgebot.backtest import BacktestResult, FixedInterval, SpotChange, detect_interval, find_gaps, run_backtest
from hedgebot.clock import RealClock, run_simulated
from hedgebot.config import AccountConfig, ConfigError, HedgeConfig, PaperConfig, load_config
from hedgebot.domain.schedule import CalendarEvent
from hedgebot.domain.model import Market
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.factory import build_venue, instrument_problem, paper_market
from hedgebot.exchange.feeds import Candle, CandleColumns, read_candle_columns
from hedgebot.exchange.funding import ConstantFunding, FundingSource, ReplayFunding
from hedgebot.exchange.port import BadData, ExchangeError
from hedgebot.ops.figures import RATIO_PLACES, Figure, Precision, booked, number, percent, text
from hedgebot.preflight import writable_problem

EXIT_OK = 0
EXIT_BAD_INPUT = 2
DEFAULT_FUNDING_RATE = Decimal("0.0001")


class BadInput(Exception):
    """An input file, argument or config the backtest cannot use; the message names it."""


def iso(when: float) -> str:
    """Return a Unix time as ISO 8601 UTC."""
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_date(text: str) -> float:
    """Parse `YYYY-MM-DD` or an ISO 8601 time (UTC unless it says otherwise) for argparse."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2021-05-19 or 2021-05-19T12:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


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


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the `backtest` command to the CLI's subparsers and return its parser."""
    p = sub.add_parser("backtest", help="replay history through a configured hedge and report how it held")
    p.add_argument("--config", type=Path, required=True, help="path to the TOML config")
    p.add_argument("--hedge", required=True, help="name of the hedge to replay (its account's paper balances are used)")
    p.add_argument("--account", help="the hedge's account, when two accounts have a hedge of that name")
    p.add_argument(
        "--prices", type=parse_prices, action="append", required=True, metavar="[ASSET=]FILE",
        help="candles: freqtrade, Binance kline or CryptoDataDownload CSV; one file, or one ASSET=FILE per asset "
        "(a beta hedge needs its holding's and its instrument's: --prices ETH=eth.csv --prices BTC=btc.csv)",
    )
    p.add_argument("--funding", type=Path, help="Binance fundingRate CSV (default: a constant 0.01%% per 8 h)")
    p.add_argument("--from", dest="start", type=parse_date, help="first day or time to replay (UTC)")
    p.add_argument("--to", dest="end", type=parse_date, help="last day or time to replay (UTC, inclusive)")
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
    p.set_defaults(func=cmd_backtest)
    return p


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


def _find_hedge(
    path: Path, name: str, account_name: str | None, balances_given: bool = False
) -> tuple[AccountConfig, HedgeConfig, tuple[CalendarEvent, ...]]:
    settings = load_config(path)
    found = [
        (account, hedge)
        for account in settings.accounts
        for hedge in account.hedges
        if hedge.name == name and account_name in (None, account.name)
    ]
    if not found:
        names = ", ".join(f"{a.name}/{h.name}" for a in settings.accounts for h in a.hedges)
        raise BadInput(f"{path}: no hedge named {name!r}" + (f" in account {account_name!r}" if account_name else "") + f" (hedges: {names})")
    if len(found) > 1:
        raise BadInput(f"{path}: hedge {name!r} is in accounts {', '.join(a.name for a, _ in found)}: say which with --account")
    account, hedge = found[0]
    problem = instrument_problem(hedge, "paper", f"{path}: hedge {name!r}")
    if problem is not None and not hedge.instrument.option:  # a put hedge replays through hedgebot.backtest_put
        raise BadInput(problem)
    if hedge.exposure.file is not None or hedge.exposure.accounts:
        raise BadInput(
            f"{path}: hedge {name!r} counts coins held elsewhere ("
            + ", ".join([*([f"custody file {hedge.exposure.file}"] if hedge.exposure.file else []),
                         *(f"account {n}" for n in hedge.exposure.accounts)])
            + "), which a replay cannot read as they were: give them as a fixed exposure.offset in a copy of the config"
        )
    if account.paper is None and not balances_given:
        raise BadInput(
            f"{path}: account {account.name!r} is live (no [accounts.paper] section): give the balances the replay "
            "starts from with --spot and --futures, e.g. --spot BTC=10 --futures USDT=50000"
        )
    return account, hedge, settings.calendar_events()


def _market(account: AccountConfig, hedge: HedgeConfig) -> Market:
    for config in account.paper.markets if account.paper is not None else ():
        if config.symbol == hedge.symbol:
            try:
                return paper_market(config)
            except ConfigError as exc:
                raise BadInput(str(exc)) from exc
    market = default_market(hedge.symbol)
    if market is None:
        raise BadInput(f"no market rules for {hedge.symbol}: list it under the account's paper markets with its rules")
    return market


def read_spot_changes(path: Path) -> list[SpotChange]:
    """Read `time,asset,amount` rows (time ISO 8601 or Unix s/ms); raise BadInput naming the first bad line."""
    changes: list[SpotChange] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [c.strip().lower() for c in next(reader, [])]
            if header[:3] != ["time", "asset", "amount"]:
                raise BadInput(f"{path}:1: expected the header time,asset,amount, got {','.join(header)!r}")
            for line_no, row in enumerate(reader, start=2):
                if not row or not "".join(row).strip():
                    continue
                where = f"{path}:{line_no}"
                if len(row) < 3:
                    raise BadInput(f"{where}: expected time,asset,amount, got {row!r}")
                text = row[0].strip()
                try:
                    when = float(text) / (1000 if float(text) > 10**11 else 1) if text.replace(".", "", 1).isdigit() else parse_date(text)
                except (ValueError, argparse.ArgumentTypeError):
                    raise BadInput(f"{where}: bad time {text!r}") from None
                asset = row[1].strip().upper()
                if not asset.isalnum():
                    raise BadInput(f"{where}: bad asset {row[1]!r}")
                try:
                    amount = Decimal(row[2].strip())
                except InvalidOperation:
                    raise BadInput(f"{where}: amount {row[2]!r} is not a number") from None
                if not amount.is_finite():
                    raise BadInput(f"{where}: amount {row[2]!r} is not finite")
                changes.append(SpotChange(when, asset, amount))
    except OSError as exc:
        raise BadInput(unreadable(path, exc)) from None
    return changes


def _read_prices(path: Path, start: float | None, end: float | None) -> CandleColumns:
    if start is not None and end is not None and start > end:
        raise BadInput(f"--from {iso(start)} is after --to {iso(end)}: give the earlier time as --from")
    try:
        candles = read_candle_columns(path)
    except BadData as exc:
        raise BadInput(str(exc)) from None
    except OSError as exc:
        raise BadInput(unreadable(path, exc)) from None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not a UTF-8 text file") from None
    whole = candles
    if start is not None or end is not None:
        candles = candles.between(start, None if end is None else end + (86399 if end % 86400 == 0 else 0))
    if len(candles) < 2:
        if (start is not None or end is not None) and whole:
            asked = f"{iso(start) if start is not None else 'the start'} to {iso(end) if end is not None else 'the end'}"
            raise BadInput(
                f"{path}: fewer than two candles from {asked}; the file covers "
                f"{iso(whole[0].time)} to {iso(whole[-1].time)}"
            )
        raise BadInput(f"{path}: fewer than two candles")
    return candles


def _read_funding(path: Path | None, candles: Sequence[Candle], interval: float, warn: Callable[[str], None]) -> FundingSource:
    if path is None:
        warn(f"no --funding file: a constant {DEFAULT_FUNDING_RATE:%} per 8 h is assumed (positive: the short is paid)")
        return ConstantFunding(DEFAULT_FUNDING_RATE)
    try:
        funding = ReplayFunding.from_csv(path)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    except OSError as exc:
        raise BadInput(unreadable(path, exc)) from None
    start, end = candles[0].time, candles[-1].time + interval
    if not funding.covers(start, end):
        first, last = funding.span()
        span = f"{iso(first)} to {iso(last)}" if first is not None and last is not None else "nothing"
        warn(f"{path} covers {span} but the candles run {iso(start)} to {iso(end)}: no funding is paid where it has no rows")
    holes = funding.holes(start, end)
    if holes:
        a, b = max(holes, key=lambda h: h[1] - h[0])
        warn(
            f"{path} has {len(holes)} hole{'s' if len(holes) > 1 else ''} inside the candles' range, the longest "
            f"{iso(a)} to {iso(b)} ({(b - a) / 3600:.1f} h): no funding is paid where it has no rows"
        )
    return funding


def _progress(total: int) -> tuple[Callable[[int], None] | None, Callable[[], None]]:
    if not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="candle", unit_scale=True, file=sys.stderr, leave=False)

    def update(done: int) -> None:
        bar.update(done - bar.n)

    return update, bar.close


@dataclass(frozen=True)
class InputFiles:
    """Where a replay's inputs come from: what a worker process needs to read them again."""

    config: Path
    hedge: str
    account: str | None
    prices: Path
    funding: Path | None = None
    start: float | None = None
    end: float | None = None
    spot_changes: Path | None = None
    spot: tuple[tuple[str, Decimal], ...] = ()
    futures: tuple[tuple[str, Decimal], ...] = ()
    # --prices ASSET=FILE, one per asset (then `prices` is the first of them until load_inputs picks the instrument's).
    asset_prices: tuple[tuple[str, Path], ...] = ()

    @classmethod
    def of(cls, args: argparse.Namespace) -> InputFiles:
        """Return the inputs `hedgebot backtest` was given; raise BadInput for --prices that mix the two forms."""
        given = [p if isinstance(p, tuple) else (None, Path(p)) for p in args.prices]
        named = tuple((asset, path) for asset, path in given if asset is not None)
        if (named and len(named) != len(given)) or (not named and len(given) != 1):
            raise BadInput("--prices: give one FILE, or one ASSET=FILE per asset (e.g. --prices ETH=eth.csv --prices BTC=btc.csv)")
        assets = [asset for asset, _ in named]
        twice = sorted({a for a in assets if assets.count(a) > 1})
        if twice:
            raise BadInput(f"--prices: {', '.join(twice)} given more than once: one file per asset")
        return cls(
            config=args.config, hedge=args.hedge, account=args.account, prices=given[0][1], funding=args.funding,
            start=args.start, end=args.end, spot_changes=args.spot_changes,
            spot=tuple(args.spot or ()), futures=tuple(args.futures or ()), asset_prices=named,
        )


@dataclass(frozen=True)
class ReplayInputs:
    """Everything one replay runs on, read and checked."""

    account: AccountConfig
    hedge: HedgeConfig
    calendar: tuple[CalendarEvent, ...]
    market: Market
    candles: Sequence[Candle]
    interval: float
    funding: FundingSource
    changes: list[SpotChange]
    spot: dict[str, Decimal]
    futures: dict[str, Decimal]
    slippage: Decimal
    prices: Path | None = None  # the instrument's price file
    holding_candles: CandleColumns | None = None  # a beta hedge's holding, when it is not the instrument's base
    basket_candles: tuple[tuple[str, str, CandleColumns], ...] = ()  # a basket's other holdings: (asset, market, candles)

    def priced_holdings(self) -> list[tuple[str, str, Sequence[Candle]]]:
        """Return (asset, market, candles) of each holding a beta hedge values on a market other than the instrument's."""
        own = [(self.hedge.asset, self.hedge.beta_settings().holding_symbol, self.holding_candles)] if self.holding_candles is not None else []
        return [*own, *self.basket_candles]


def with_exchange_balances(files: InputFiles, say: Callable[[str], None]) -> InputFiles:
    """Return the inputs with a live account's balances read from its exchange, when --spot/--futures were not given.

    A read only: the account's venue is built as `run` builds it, its spot balances and futures wallet are
    read once, and it is closed; no order, transfer or setting is made.
    """
    if files.spot or files.futures:
        return files
    account, hedge, _ = _find_hedge(files.config, files.hedge, files.account, balances_given=True)
    if account.paper is not None:
        return files
    market = _market(account, hedge)

    async def read() -> tuple[dict[str, Decimal], Decimal]:
        setup = build_venue(account, RealClock(), None)
        try:
            spot = await setup.venue.fetch_spot_balances()
            futures = await setup.venue.fetch_futures_balance(market.quote)
        finally:
            await setup.close()
        return spot, futures.wallet

    try:
        spot, wallet = asyncio.run(read())
    except (ConfigError, ExchangeError) as exc:
        raise BadInput(
            f"{files.config}: account {account.name!r} is live and its balances could not be read from "
            f"{account.exchange} ({exc}): give the balances the replay starts from with --spot and --futures, "
            "e.g. --spot BTC=10 --futures USDT=50000"
        ) from None
    held = tuple((asset, spot.get(asset, Decimal(0))) for asset in (market.base, market.quote))
    say(
        f"balances read from {account.exchange} for account {account.name!r}: spot "
        + ", ".join(f"{asset} {booked(amount)}" for asset, amount in held)
        + f"; futures {market.quote} {booked(wallet)}"
    )
    return replace(files, spot=held, futures=((market.quote, wallet),))


def load_inputs(files: InputFiles, warn: Callable[[str], None]) -> ReplayInputs:
    """Read and check a replay's inputs; raise BadInput naming the file, field or argument at fault."""
    account, hedge, calendar = _find_hedge(files.config, files.hedge, files.account, bool(files.spot or files.futures))
    market = _market(account, hedge)
    prices, holding_file, basket_files = _price_files(files, hedge, market)
    candles = _read_prices(prices, files.start, files.end)
    holding = _read_prices(holding_file, files.start, files.end) if holding_file is not None else None
    symbols = dict(hedge.holdings())
    basket = tuple((asset, symbols[asset], _read_prices(path, files.start, files.end)) for asset, path in basket_files)
    interval = detect_interval(candles)
    if not 60 <= interval <= 86400:
        raise BadInput(f"{prices}: candles every {interval:g} s; a timeframe from 1 minute to 1 day is needed")
    funding = _read_funding(files.funding, candles, interval, warn)
    changes = read_spot_changes(files.spot_changes) if files.spot_changes else []
    for change in changes:
        # A beta hedge's holding (its asset, on another market) may come and go too.
        held = [hedge.asset, *(b.asset for b in hedge.basket)] if hedge.beta else []
        allowed = list(dict.fromkeys([*held, market.base, market.quote]))
        if change.asset not in allowed:
            raise BadInput(f"{files.spot_changes}: asset {change.asset!r} is neither {', '.join(allowed[:-1])} nor {allowed[-1]}")
    # A live account's config replays from the balances given; a paper account's from its own unless they are given.
    paper = account.paper
    spot = dict(files.spot) if files.spot else dict(paper.spot) if paper else {}
    futures = dict(files.futures) if files.futures else dict(paper.futures) if paper else {}
    slippage = paper.slippage if paper else PaperConfig.model_fields["slippage"].default
    return ReplayInputs(account, hedge, calendar, market, candles, interval, funding, changes, spot, futures, slippage, prices, holding, basket)


def _price_files(files: InputFiles, hedge: HedgeConfig, market: Market) -> tuple[Path, Path | None, list[tuple[str, Path]]]:
    """Return the instrument's price file, a beta hedge's holding's (None: the holding is the instrument's base) and its basket's."""
    other = hedge.beta and hedge.asset != market.base
    if not files.asset_prices:
        if other or hedge.basket:
            given = " ".join(f"--prices {a}=FILE" for a in dict.fromkeys([a for a, _ in hedge.holdings()] + [market.base]))
            raise BadInput(f"hedge {hedge.name!r} hedges {', '.join(a for a, _ in hedge.holdings())} on {hedge.symbol} by beta: "
                           f"give one price file per asset, {given}")
        return files.prices, None, []
    named = dict(files.asset_prices)
    basket = [b.asset for b in hedge.basket if b.asset != market.base]
    wanted = list(dict.fromkeys([market.base, *([hedge.asset] if other else []), *basket]))
    missing = [asset for asset in wanted if asset not in named]
    if missing:
        raise BadInput(f"--prices: no file for {', '.join(missing)} (hedge {hedge.name!r} needs {', '.join(f'{a}=FILE' for a in wanted)})")
    extra = sorted(set(named) - set(wanted))
    if extra:
        raise BadInput(f"--prices {extra[0]}={named[extra[0]]}: hedge {hedge.name!r} neither holds nor trades {extra[0]}")
    return named[market.base], named[hedge.asset] if other else None, [(asset, named[asset]) for asset in basket]


def replay_once(
    inputs: ReplayInputs, hedge: HedgeConfig | None = None, spot: dict[str, Decimal] | None = None,
    futures: dict[str, Decimal] | None = None, *, fixed: FixedInterval | None = None, record_equity: bool = True,
    progress: Callable[[int], None] | None = None,
) -> BacktestResult:
    """Replay the inputs (with another hedge config or balances when given) on simulated time."""
    holdings = inputs.priced_holdings()
    if holdings:
        from hedgebot.backtest_cross import run_cross_backtest

        # A beta hedge on another coin's market: the same engine, fed the holdings' prices beside the instrument's.
        return run_simulated(
            run_cross_backtest(
                inputs.candles, holdings, inputs.market, inputs.funding, hedge or inputs.hedge,
                inputs.spot if spot is None else spot, inputs.futures if futures is None else futures,
                interval_seconds=inputs.interval, slippage=inputs.slippage, spot_changes=inputs.changes, fixed=fixed,
                record_equity=record_equity, progress=progress, calendar=inputs.calendar,
            )
        )
    return run_simulated(
        run_backtest(
            inputs.candles, inputs.market, inputs.funding, hedge or inputs.hedge,
            inputs.spot if spot is None else spot, inputs.futures if futures is None else futures,
            interval_seconds=inputs.interval, slippage=inputs.slippage, spot_changes=inputs.changes, fixed=fixed,
            record_equity=record_equity, progress=progress, calendar=inputs.calendar,
            quarterly_basis=_quarterly_basis(inputs.account, hedge or inputs.hedge),
        )
    )


def _quarterly_basis(account: AccountConfig, hedge: HedgeConfig) -> Decimal | None:
    """Return the annual basis a quarterly hedge's paper market sets (None: derived from the funding replayed)."""
    markets = account.paper.markets if account.paper is not None else ()
    return next((m.quarterly_basis for m in markets if m.symbol == hedge.symbol), None)


def warn_of_gaps(inputs: ReplayInputs, prices: Path, warn: Callable[[str], None]) -> None:
    """Warn of holes in the candles, where the keeper sees no price."""
    gaps = find_gaps(inputs.candles, inputs.interval)
    if gaps:
        longest = max(b - a for a, b in gaps)
        warn(f"{prices}: {len(gaps)} gaps in the candles, the longest {longest / 3600:.1f} h (the keeper sees no price there)")


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
        from hedgebot.backtest_beta import beta_figures

        # The beta, the correlation and the out-of-sample variance reduction beside the one-for-one dollar hedge's,
        # from the same estimator walked through both files' closes; the replay itself is the engine's, below.
        figures = beta_figures(inputs, warn)
        if figures is None:
            return EXIT_BAD_INPUT
        extra = figures
    if hedge.instrument.option:
        from hedgebot.backtest_put import write_put_backtest

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
        from hedgebot.backtest_beta import keeper_figures

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
        from hedgebot.chart import write_chart

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


# The kind of each summary figure: money at the margin step, prices at the price step, ratios to 4 places.
_KINDS: dict[str, Figure] = {
    **{key: Figure.MONEY for key in (
        "fees_quote", "funding_quote", "margin_added_quote", "hedged_value_start", "hedged_value_end", "unhedged_value_end",
    )},
    **{key: Figure.RATIO for key in (
        "hedge_value_volatility", "unhedged_value_volatility", "max_abs_drift_ratio", "time_outside_band_ratio",
        "time_under_hedged_ratio", "min_liquidation_distance", "min_runway",
    )},
    **{key: Figure.PRICE for key in ("price_first", "price_last", "price_peak")},
    **{key: Figure.SECONDS for key in ("time_under_hedged_seconds", "interval_seconds")},
}
# Ratios a person reads as percentages, printed beside the ratio.
_PERCENTAGES = frozenset({"min_liquidation_distance", "min_runway", "time_outside_band_ratio", "time_under_hedged_ratio",
                          "hedge_value_volatility", "unhedged_value_volatility", "max_abs_drift_ratio"})


def _plain(key: str, value: Any, precision: Precision) -> Any:
    kind = _KINDS.get(key)
    if kind is not None:
        return number(value, kind, precision)
    if isinstance(value, Decimal):
        return number(value, Figure.MONEY, precision)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _duration(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h"


def headline(result: BacktestResult) -> str | None:
    """Return what the user must read first: a hedge that never reached its target, or was under it for a while."""
    m = result.metrics
    under = float(m.get("time_under_hedged_seconds") or 0.0)
    ratio = float(m.get("time_under_hedged_ratio") or 0.0)
    if m.get("target_reached") is False:
        return (
            f"the hedge NEVER reached its target: under-hedged for the whole run ({_duration(under)}, {ratio:.2%} of the time); "
            f"final short {result.final_short} against an exposure of {result.final_exposure}"
        )
    if under > 0:
        return f"the hedge was under its target for {_duration(under)} ({ratio:.2%} of the time)"
    return None


def summary_of(result: BacktestResult) -> dict[str, Any]:
    """Return summary.json's fields, what must be read first at the top; each figure at its kind's precision."""
    precision = Precision.of(result.market)
    data: dict[str, Any] = {}
    top = headline(result)
    if top is not None:
        data["warning"] = top
    data.update({key: _plain(key, value, precision) for key, value in result.metrics.items()})
    data["start"] = iso(result.metrics["start"])
    data["end"] = iso(result.metrics["end"])
    data["critical_alerts"] = result.critical_alerts
    data["keeper_wakes"] = result.keeper_wakes
    data["topup_sources"] = result.topup_sources
    data["price_first"] = number(result.first_price, Figure.PRICE, precision)
    data["price_last"] = number(result.last_price, Figure.PRICE, precision)
    data["price_peak"] = number(result.peak_price, Figure.PRICE, precision)
    return data


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """Write summary.json."""
    path.write_text(json.dumps(summary, indent=2) + "\n")


def _cell(value: Any, kind: Figure, precision: Precision) -> str:
    shown = text(value, kind, precision)
    return "" if shown in ("-", "unlimited") else shown


def _places(kind: Figure, precision: Precision) -> int | None:
    """Return the decimal places `text` shows a figure of `kind` at (None: every digit)."""
    step = {Figure.PRICE: precision.price, Figure.MONEY: precision.money, Figure.AMOUNT: precision.amount}.get(kind, RATIO_PLACES)
    if step is None:
        return None
    return -min(int(step.normalize().as_tuple().exponent), 0)


def _cells(values: Sequence[float], kind: Figure, precision: Precision) -> list[str]:
    """Return `_cell` of each float, formatting most of them straight from the float.

    `text` rounds the float's shortest repr half to even. Where that repr is
    not a tie at the shown places and the float is far finer than them,
    rounding the float itself (as format does, half to even) gives the same
    digits; every other value goes through `_cell`.
    """
    places = _places(kind, precision)
    if places is None:
        return [_cell(v, kind, precision) for v in values]
    shape = f"{{:.{places}f}}".format
    fine = 2.0**52 * 10.0 ** -(places + 1)  # below this, a float's spacing is far under the last place shown
    tie = "5"
    out: list[str] = []
    append = out.append
    last_shown = ""
    last_text = ""
    for value in values:
        shown = repr(value)
        if shown == last_shown:
            append(last_text)
            continue
        dot = shown.find(".")
        if dot < 0 or "e" in shown or not (0 < abs(value) < fine) or shown[dot + 1 + places :] == tie:
            last_text = _cell(value, kind, precision)
        else:
            last_text = shape(value)
        last_shown = shown
        append(last_text)
    return out


def _times(values: Sequence[float]) -> list[str]:
    """Return `iso` of each time; whole seconds all at once."""
    import numpy as np

    times = np.asarray(values, dtype=float)
    if len(times) and bool(np.all(times == np.floor(times))) and bool(np.all(np.abs(times) < 2.0**53)):
        stamps = np.datetime_as_string(times.astype(np.int64).astype("datetime64[s]"), unit="s")
        return [f"{t}Z" for t in stamps.tolist()]
    return [iso(t) for t in values]


def write_equity(path: Path, result: BacktestResult) -> None:
    """Write equity.csv: the account's value over time, hedged and unhedged, with the hedge's state."""
    e = result.equity
    precision = Precision.of(result.market)
    if result.market is not None and result.market.inverse:
        # Its values are dollars (not its coin margin's 8 decimals) and its exposure and short coins, to the satoshi.
        precision = dataclasses.replace(precision, amount=Decimal("0.00000001"), money=Decimal("0.01"))
    columns = [
        _times(e["time"]),
        *(
            _cells(e[name], kind, precision)
            for name, kind in (
                ("price", Figure.PRICE), ("hedged_value", Figure.MONEY), ("unhedged_value", Figure.MONEY),
                ("exposure", Figure.AMOUNT), ("short", Figure.AMOUNT), ("drift_ratio", Figure.RATIO),
                ("liquidation_distance", Figure.RATIO),
            )
        ),
    ]
    if len({len(c) for c in columns}) > 1:
        raise ValueError("the equity series differ in length")
    with path.open("w", newline="") as handle:
        handle.write("time,price,hedged_value,unhedged_value,exposure,short,drift_ratio,liquidation_distance\n")
        handle.writelines(",".join(row) + "\n" for row in zip(*columns, strict=True))


def write_alerts(path: Path, result: BacktestResult) -> None:
    """Write alerts.csv: each alert with its code, severity, and the times it was raised and resolved."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["code", "severity", "raised_at", "resolved_at", "lasted_seconds", "message", "resolved_message"])
        for row in result.alert_rows:
            lasted = "" if row.resolved_at is None else f"{row.resolved_at - row.raised_at:.0f}"
            writer.writerow([
                row.code, row.severity, iso(row.raised_at), "" if row.resolved_at is None else iso(row.resolved_at), lasted,
                row.message, row.resolved_message,
            ])


def write_trades(path: Path, result: BacktestResult) -> None:
    """Write trades.csv: every order, top-up, transfer, funding payment, spot change and liquidation."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time", "kind", "symbol_or_asset", "side", "amount", "price", "fee", "quote_amount", "detail"])
        precision = Precision.of(result.market)
        base = result.market.base if result.market is not None else None
        for row in result.trades:
            coins = row.kind in ("order", "liquidation") or row.symbol == base
            writer.writerow([
                iso(row.time), row.kind, row.symbol, row.side,
                _cell(row.amount, Figure.AMOUNT if coins else Figure.MONEY, precision), _cell(row.price, Figure.PRICE, precision),
                _cell(row.fee, Figure.MONEY, precision), _cell(row.quote_amount, Figure.MONEY, precision), row.detail,
            ])


def print_summary(summary: dict[str, Any], precision: Precision | None = None) -> None:
    """Print the summary's fields, one a line, each figure at its kind's precision."""
    precision = precision or Precision()
    if "warning" in summary:
        print(f"WARNING: {summary['warning']}")
    for key, value in summary.items():
        if key in ("comparison", "warning"):
            continue
        shown = text(value, _KINDS.get(key), precision) if isinstance(value, float) else value
        if key in _PERCENTAGES and isinstance(value, float):
            shown = f"{shown} ({percent(value)})"
        elif key == "time_under_hedged_seconds" and isinstance(value, int) and value:
            shown = f"{value} ({_duration(value)})"
        elif isinstance(value, dict):  # counts by name, in words (a dict's repr reads like debugger output)
            shown = ", ".join(f"{name} {count}" for name, count in value.items()) or "none"
        elif key == "instrument_choices":  # one choice a line: when, what was chosen, what it compared
            shown = "none" if not value else "".join(
                f"\n    {c['at']} {c['when']}: {c['contract']} ("
                + ", ".join(f"{symbol} {percent(rate) if rate is not None else 'unknown'}" for symbol, rate in c["carries"].items())
                + ")"
                for c in value
            )
        print(f"  {key:<28} {shown}")


def comparison_table(rows: Sequence[tuple[str, BacktestResult]]) -> str:
    """Return the policies side by side: orders, fees, time outside the band, hedge-value volatility, liquidations."""
    head = f"{'policy':<22} {'orders':>7} {'fees':>12} {'outside band':>13} {'hedge vol':>10} {'liquidations':>13}"
    lines = [head, "-" * len(head)]
    for name, result in rows:
        m = result.metrics
        vol = m["hedge_value_volatility"]
        lines.append(
            f"{name:<22} {m['orders']:>7} {float(m['fees_quote']):>12.2f} {m['time_outside_band_ratio']:>12.2%} "
            f"{'-' if vol is None else f'{vol:.2%}':>10} {m['liquidations']:>13}"
        )
    return "\n".join(lines)

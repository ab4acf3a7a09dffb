"""A backtest's inputs, read and checked, and one replay run on them: what `backtest` and `backtest --sweep` share.

Owns reading the config's hedge, the price, funding and spot-change files, and the live account's balances
(read once, nothing changed), each bad input raised as BadInput naming its file, line, field or argument; and
running one replay of them on simulated time through hedgebot.backtest. It may NOT write an output file or
print a result (hedgebot.commands.backtest.outputs), nor know the command's arguments beyond InputFiles.of.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path

from hedgebot.access import unreadable
from hedgebot.backtest import BacktestResult, FixedInterval, SpotChange, detect_interval, find_gaps, run_backtest
from hedgebot.clock import RealClock, run_simulated
from hedgebot.commands.args import date_argument, iso
from hedgebot.config import AccountConfig, ConfigError, HedgeConfig, PaperConfig, load_config
from hedgebot.domain.model import Market
from hedgebot.domain.schedule import CalendarEvent
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.factory import build_venue, instrument_problem, paper_market
from hedgebot.exchange.feeds import Candle, CandleColumns, read_candle_columns
from hedgebot.exchange.funding import ConstantFunding, FundingSource, ReplayFunding
from hedgebot.exchange.port import BadData, ExchangeError
from hedgebot.ops.figures import booked

DEFAULT_FUNDING_RATE = Decimal("0.0001")


class BadInput(Exception):
    """An input file, argument or config the backtest cannot use; the message names it."""


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
    if problem is not None and not hedge.instrument.option:  # a put hedge replays through hedgebot.commands.backtest.put
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
                    when = float(text) / (1000 if float(text) > 10**11 else 1) if text.replace(".", "", 1).isdigit() else date_argument(text)
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


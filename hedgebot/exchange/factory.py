"""The one place that turns an account's config into a venue, its price feeds and funding sources.

The daemon asks `build_venue` for every account and never learns whether it
got the paper venue or a real exchange through ccxt. Paper market defaults
(Binance's rules and brackets for BTC and ETH) are filled in here, beside
the venues they describe.
"""

from __future__ import annotations

import csv
import difflib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from hedgebot.clock import Clock
from hedgebot.config import (
    AccountConfig,
    ConfigError,
    HedgeConfig,
    LiveFeedConfig,
    PaperConfig,
    PaperMarketConfig,
    ReplayFeedConfig,
    SyntheticFeedConfig,
)
from hedgebot.domain.instrument import HedgeSide, InstrumentKind, Settlement
from hedgebot.domain.model import Bracket, Market, floor_to_step
from hedgebot.exchange.binance_rules import COIN_STEP, DEFAULT_TAKER_FEE, default_brackets, default_market
from hedgebot.exchange.feeds import LiveFeed, PriceFeed, ReplayFeed, SyntheticFeed, read_candles
from hedgebot.exchange.funding import ConstantFunding, FundingSource, LiveFunding, ReplayFunding
from hedgebot.exchange.paper import HISTORY_KEPT, PAPER_EXCHANGES, FillModel, PaperMarket, PaperVenue
from hedgebot.exchange.port import BadData, ExchangeError, ExchangePort
from hedgebot.exchange.withdrawals import paper_network


@dataclass(frozen=True)
class FeedRun:
    """A price feed the daemon steps for a simulated market."""

    symbol: str
    feed: PriceFeed
    step_seconds: float
    exchange_time: bool  # stamp the mark with the feed's own time (live prices), so staleness shows
    replayed: bool = False  # a candle file: the daemon lives in the candles' time (see hedgebot.replay_clock)


@dataclass
class VenueSetup:
    """A venue and what keeps it moving: for the paper venue, its feeds and funding polls."""

    venue: ExchangePort
    simulated: PaperVenue | None = None
    feeds: list[FeedRun] = field(default_factory=list)
    funding_polls: list[tuple[LiveFunding, float]] = field(default_factory=list)
    options: Any = None  # a live account's options book (a put hedge's), built on first use

    async def close(self) -> None:
        """Close feeds, funding sources and the venue's sessions."""
        if self.options is not None and hasattr(self.options, "close"):
            await self.options.close()
        for run in self.feeds:
            if isinstance(run.feed, LiveFeed):
                await run.feed.close()
        for funding, _ in self.funding_polls:
            await funding.close()
        await self.venue.close()


def known_exchange(exchange_id: str) -> bool:
    """Tell whether ccxt knows an exchange id."""
    import ccxt

    return exchange_id in ccxt.exchanges


def _unknown_exchange(field: str, exchange_id: str) -> str:
    import ccxt

    near = difflib.get_close_matches(exchange_id, ccxt.exchanges, n=3)
    hint = f"; did you mean {' or '.join(near)}?" if near else ""
    return f"{field}: unknown ccxt exchange id {exchange_id!r}{hint}"


def replay_problem(field: str, path: Path) -> str | None:
    """Return why a candle file cannot be replayed (its path and the line of the first bad row), or None."""
    if not path.exists():
        return f"{field}: file {path} does not exist"
    try:
        candles = read_candles(path)
    except BadData as exc:
        return f"{field}: {exc}"
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        return f"{field}: cannot read {path}: {exc}"
    return None if candles else f"{field}: {path} has no candles"


def funding_problem(field: str, path: Path) -> str | None:
    """Return why a funding-rate file cannot be replayed, or None."""
    if not path.exists():
        return f"{field}: file {path} does not exist"
    try:
        funding = ReplayFunding.from_csv(path)
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        return f"{field}: {exc}"
    return None if funding.settlements(float("-inf"), float("inf")) else f"{field}: {path} has no funding rows"


def credential_problems(where: str, account: AccountConfig) -> list[str]:
    """Return one line per credential whose variable or file is missing (never a secret's value)."""
    problems = []
    credentials = account.credentials
    for name in ("api_key", "secret", "password"):
        ref = getattr(credentials, name, None)
        if ref is None:
            continue
        try:
            ref.resolve(f"{where}.credentials.{name}")
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


# What each kind of venue trades today, by (instrument, side). The config names every combination issue 21
# asks for; a combination missing here is refused by `check`, `run` and `backtest`, never run as another one.
TRADED: dict[str, frozenset[tuple[InstrumentKind, HedgeSide]]] = {
    "paper": frozenset({
        (InstrumentKind.USDM_PERP, HedgeSide.SHORT), (InstrumentKind.USDM_PERP, HedgeSide.LONG),
        (InstrumentKind.COINM_PERP, HedgeSide.SHORT),
        # On the paper market's quarterlies (`quarterlies = true`).
        (InstrumentKind.USDM_QUARTERLY, HedgeSide.SHORT), (InstrumentKind.COINM_QUARTERLY, HedgeSide.SHORT),
        # Chooses between the perpetual and the quarterly of the symbol's margin kind (`quarterlies = true`).
        (InstrumentKind.CHEAPEST, HedgeSide.SHORT),
        (InstrumentKind.PUT, HedgeSide.SHORT),  # long puts on the paper options book (hedgebot.engine.put_leg)
    }),
    # Each proven on the Binance emulator through the real ccxt venue (tests/engine/test_coinm_live_emulator.py for
    # COIN-M, tests/engine/test_long_live_emulator.py for the long, tests/engine/test_quarterly_live_emulator.py for
    # the quarterlies and their roll, tests/engine/test_cheapest_live_emulator.py for the choice by carry); which
    # exchanges beyond Binance run a long, a quarterly or a cheapest hedge: LONG_PROVEN, QUARTERLY_PROVEN,
    # CHEAPEST_PROVEN below.
    "live": frozenset({
        (InstrumentKind.USDM_PERP, HedgeSide.SHORT), (InstrumentKind.USDM_PERP, HedgeSide.LONG),
        (InstrumentKind.COINM_PERP, HedgeSide.SHORT),
        (InstrumentKind.USDM_QUARTERLY, HedgeSide.SHORT), (InstrumentKind.COINM_QUARTERLY, HedgeSide.SHORT),
        (InstrumentKind.CHEAPEST, HedgeSide.SHORT),
    }),
}


def exchanges_for(kind: InstrumentKind) -> list[str]:
    """Return the live exchanges whose accounts can hold a hedge on `kind`, as their dialects say."""
    from hedgebot.exchange.dialects import DIALECTS

    return sorted(exchange for exchange, dialect in DIALECTS.items() if kind in dialect.instruments)


def coin_margined_exchanges() -> frozenset[str]:
    """Return the live exchanges whose accounts can hold a coin-margined (inverse) hedge."""
    return frozenset(exchanges_for(InstrumentKind.COINM_PERP) + exchanges_for(InstrumentKind.COINM_QUARTERLY))


def venue_instrument_problem(exchange: str, hedge: HedgeConfig, where: str) -> str | None:
    """Return why a live account on `exchange` cannot hold a hedge on the hedge's instrument, or None."""
    from hedgebot.exchange.dialects import DIALECTS

    dialect = DIALECTS.get(exchange)
    missing = [k for k in hedge.contract_kinds if dialect is not None and k not in dialect.instruments]
    if not missing:
        return None
    kind = missing[0]
    inverse = kind.settlement is Settlement.INVERSE
    if not inverse and all(k.settlement is Settlement.INVERSE for k in dialect.instruments):
        reason = f"{exchange!r} lists only coin-margined contracts"
        offered = 'hedge with a coin-margined instrument ("coinm-perp", "coinm-quarterly") there, or on a USDⓈ-margined exchange'
    else:
        reason = dialect.unhedgeable.get(kind) or f"{exchange!r} lists no {kind.value} contracts"
        offered = (
            f"coin-margined contracts trade on {', '.join(sorted(coin_margined_exchanges()))}" if inverse
            else f"{kind.value} trades on {', '.join(exchanges_for(kind))}"
        )
    return f"{where}: {kind.value!r} does not trade on {exchange!r}: {reason}; {offered}"


# The live exchanges a long hedge (a LONG leg for a planned purchase) is proven on: the Binance emulator runs it
# through the real ccxt venue, recorded OKX and Bybit accounts through ccxt and their dialects
# (tests/exchange/test_long_on_okx_and_bybit.py). Aster's dialect names a LONG leg but no test runs a long there.
LONG_PROVEN = frozenset({"binanceusdm", "okx", "bybit"})
# The live exchanges a quarterly hedge and its roll are proven on, and which quarterlies: the Binance emulator (both
# APIs) and a recorded OKX account holding legs on each future, USDT and coin-margined
# (tests/exchange/test_okx_quarterly_roll.py).
QUARTERLY_PROVEN: dict[str, frozenset[InstrumentKind]] = {
    "binanceusdm": frozenset({InstrumentKind.USDM_QUARTERLY}),
    "binancecoinm": frozenset({InstrumentKind.COINM_QUARTERLY}),
    "okx": frozenset({InstrumentKind.USDM_QUARTERLY, InstrumentKind.COINM_QUARTERLY}),
}
# The live exchanges a cheapest hedge is proven on: the choice reads the funding history and the quarterly's mark
# (the Binance emulator; the recorded OKX account, tests/exchange/test_okx_quarterly_roll.py).
CHEAPEST_PROVEN = frozenset({"binanceusdm", "binancecoinm", "okx"})


def _unproven_delivery(exchange: str, hedge: HedgeConfig, where: str) -> str | None:
    """Return why a live quarterly or cheapest hedge is not run on `exchange` yet (not proven there), or None."""
    kind = hedge.instrument
    if kind.chooses:
        proven = sorted(CHEAPEST_PROVEN)
        if exchange in CHEAPEST_PROVEN:
            return None
    elif kind.delivers:
        proven = sorted(e for e, kinds in QUARTERLY_PROVEN.items() if kind in kinds)
        if exchange in proven:
            return None
    else:
        return None
    return (
        f'{where}: instrument = "{kind.value}" is not supported yet on {exchange!r} (a live {kind.value} hedge runs on '
        f"{', '.join(proven)}); nothing was run in its place"
    )


# Why a planned purchase is never hedged on a coin-margined contract (README "A coin-margined long: refused";
# tests/domain/test_coin_margined_long.py).
COIN_MARGINED_LONG = (
    "a coin-margined long is margined in the coin, so its collateral must be bought first (that is the purchase "
    "itself) and the account then holds the coins and the long: twice the exposure, a rise or a fall counted twice, "
    "and even at 1x a halving of the price liquidates it and takes the coins backing it; hedge a planned purchase "
    'with instrument = "usdm-perp" (side = "long") against stablecoin, which locks its cost'
)


# The live exchanges whose accounts keep a put leg: a Binance account's options (eapi, the same key), proven on the
# emulator's options desk (hedgebot.testing.binance_options). Deribit and OKX are read by `plan-put` only.
PUT_PROVEN = frozenset({"binanceusdm"})


def instrument_problem(hedge: HedgeConfig, mode: str, where: str, exchange: str | None = None) -> str | None:
    """Return why a hedge's instrument and side cannot run on a `mode` ("paper" or "live") venue yet, or None."""
    traded = TRADED[mode]
    if (hedge.instrument, hedge.side) in traded:
        return None
    if hedge.side is HedgeSide.LONG and hedge.settlement is Settlement.INVERSE:
        return f'{where}: instrument = "{hedge.instrument.value}" with side = "long" is refused: {COIN_MARGINED_LONG}'
    if hedge.instrument.option:
        if mode == "live" and exchange in PUT_PROVEN:
            return None
        return (
            f'{where}: instrument = "put" runs on paper accounts, in backtests and on live {", ".join(sorted(PUT_PROVEN))} '
            f"accounts (Binance options) only yet, not on {exchange!r}; `hedgebot plan-put` prints the puts a live chain offers"
        )
    offered = ", ".join(f'instrument = "{i.value}" with side = "{s.value}"' for i, s in sorted(traded))
    return (
        f'{where}: instrument = "{hedge.instrument.value}" with side = "{hedge.side.value}" is not supported yet on a '
        f"{mode} account (supported: {offered}); nothing was run in its place"
    )


def account_problems(account: AccountConfig, where: str | None = None) -> list[str]:
    """Return what stops an account from being built, one line per problem (nothing is contacted).

    `where` names the account in the messages (`accounts[0]`); by default its name.
    Replay and funding files are read in full, so a bad row is named by its line.
    """
    from hedgebot.exchange.dialects import DIALECTS

    where = where or f"accounts[{account.name}]"
    problems: list[str] = []
    if not known_exchange(account.exchange):
        problems.append(_unknown_exchange(f"{where}.exchange", account.exchange))
    elif account.mode == "live" and account.exchange not in DIALECTS and account.hedges:  # a holdings account reads any
        problems.append(
            f"{where}.exchange: {account.exchange!r} has no live venue yet (supported: {', '.join(sorted(DIALECTS))})"
        )
    elif account.mode == "paper" and account.exchange not in PAPER_EXCHANGES:
        problems.append(
            f"{where}.exchange: the paper venue models Binance USDⓈ-M and COIN-M ({', '.join(sorted(PAPER_EXCHANGES))}) only, "
            f"not {account.exchange!r}"
        )
    if account.mode == "live":
        problems += credential_problems(where, account)
    for index, hedge in enumerate(account.hedges):
        problems.append(instrument_problem(hedge, account.mode, f"{where}.hedges[{index}].instrument", account.exchange) or "")
        if account.mode == "live" and not hedge.instrument.option:  # puts trade on the account's options, not its futures
            problems.append(venue_instrument_problem(account.exchange, hedge, f"{where}.hedges[{index}].instrument") or "")
        if account.mode == "live" and hedge.side is HedgeSide.LONG and account.exchange not in LONG_PROVEN:
            problems.append(
                f'{where}.hedges[{index}].side: side = "long" is not supported yet on {account.exchange!r} '
                f"(a live long hedge runs on {', '.join(sorted(LONG_PROVEN))}); nothing was run in its place"
            )
        if account.mode == "live":
            problems.append(_unproven_delivery(account.exchange, hedge, f"{where}.hedges[{index}].instrument") or "")
    if account.paper is not None:
        rules: dict[str, Market] = {}
        for index, market in enumerate(account.paper.markets):
            field = f"{where}.paper.markets[{index}]"
            try:
                rules[market.symbol] = paper_market(market)
            except ConfigError as exc:
                problems.append(f"{field}: {exc}")
            feed = market.feed
            if isinstance(feed, LiveFeedConfig) and not known_exchange(feed.exchange):
                problems.append(_unknown_exchange(f"{field}.feed.exchange", feed.exchange))
            if isinstance(feed, ReplayFeedConfig):
                problems.append(replay_problem(f"{field}.feed.path", feed.path) or "")
            if market.funding.file is not None:
                problems.append(funding_problem(f"{field}.funding.file", market.funding.file) or "")
        for index, hedge in enumerate(account.hedges):
            rule = rules.get(hedge.symbol)
            # (max_order is in coins: an inverse contract's minimum, one contract of face value, depends on the price.)
            if rule is not None and not rule.inverse and floor_to_step(hedge.max_order, rule.amount_step) < rule.min_amount:
                problems.append(
                    f"{where}.hedges[{index}].max_order: {hedge.max_order} is below the minimum order {rule.min_amount} "
                    f"of {hedge.symbol} (step {rule.amount_step}); no order could ever be placed"
                )
            listed = next((m for m in account.paper.markets if m.symbol == hedge.symbol), None)
            if hedge.instrument.follows_delivery and listed is not None and not listed.quarterlies:
                holds = "chooses among" if hedge.instrument.chooses else "holds"
                problems.append(
                    f"{where}.hedges[{index}].instrument: {hedge.instrument.value!r} {holds} {hedge.symbol}'s quarterly "
                    f"contracts, but the paper market {hedge.symbol} lists none: set quarterlies = true on it"
                )
    return [p for p in problems if p]


def paper_market(config: PaperMarketConfig) -> Market:
    """Return a paper contract's rules, filling in Binance's defaults; raise ConfigError when some are unknown."""
    base, _, rest = config.symbol.partition("/")
    quote, _, settle = rest.partition(":")
    defaults = default_market(config.symbol)
    inverse = settle == base  # a coin-margined contract settles in its own coin
    if config.brackets is not None:
        brackets = tuple(
            Bracket(b.notional_floor, b.notional_cap, b.maint_margin_rate, b.maint_amount) for b in config.brackets
        )
    else:
        known = defaults.brackets if defaults is not None else None if inverse else default_brackets(base)
        if known is None:
            raise ConfigError(f"no default brackets for {config.symbol}: give brackets")
        brackets = known
    if defaults is None and None in (config.amount_step, config.min_amount, config.min_notional):
        raise ConfigError(f"no default rules for {config.symbol}: give amount_step, min_amount, min_notional")
    return Market(
        symbol=config.symbol,
        base=base,
        quote=quote,
        amount_step=config.amount_step or defaults.amount_step,  # type: ignore[union-attr]
        min_amount=config.min_amount or defaults.min_amount,  # type: ignore[union-attr]
        min_notional=config.min_notional if config.min_notional is not None else defaults.min_notional,  # type: ignore[union-attr]
        brackets=brackets,
        taker_fee=config.taker_fee if config.taker_fee is not None else DEFAULT_TAKER_FEE,
        price_step=config.price_step or (defaults.price_step if defaults else Decimal("0.01")),
        # An inverse contract's amounts are face value in the quote: one contract is the amount step.
        contract_size=defaults.contract_size if defaults is not None else (config.amount_step or Decimal(1)) if inverse else Decimal(1),
        margin_step=defaults.margin_step if defaults is not None else COIN_STEP if inverse else Decimal("0.01"),
        inverse=inverse,
    )


def _funding_source(config: Any, exchange_id: str, symbol: str) -> FundingSource:
    if config.live:
        return LiveFunding(exchange_id, symbol, config.interval_hours)
    if config.file is not None:
        return ReplayFunding.from_csv(config.file)
    return ConstantFunding(config.rate, config.interval_hours)


def build_paper_venue(account: AccountConfig, paper: PaperConfig, clock: Clock, state_dir: Path | None) -> PaperVenue:
    """Create an account's paper venue, restored from its saved state when there is one."""
    # A new paper account starts as Binance's does (cross, 20x); the keepers
    # then set the margin mode and leverage the config asks for.
    markets = [
        PaperMarket(
            paper_market(m), _funding_source(m.funding, account.exchange, m.symbol),
            quarterlies=m.quarterlies, quarterly_basis=m.quarterly_basis,
        )
        for m in paper.markets
    ]
    venue = PaperVenue(
        clock,
        markets,
        spot=dict(paper.spot),
        futures=dict(paper.futures),
        spot_fee=paper.spot_fee,
        slippage=paper.slippage,
        position_mode=paper.position_mode,
        state_path=state_dir / f"paper-{account.name}.json" if state_dir else None,
        fill_model=FillModel(paper.partial_fill_probability, seed=1),
        history_kept=HISTORY_KEPT,
    )
    try:
        venue.load()
    except ValueError as exc:  # a damaged file, or its history log missing: never start on a guess
        raise ConfigError(f"paper account {account.name!r}: {exc}") from None
    venue.open_withdrawals(paper_network(clock), whitelist=paper.withdraw_whitelist, seconds=paper.withdrawal_seconds,
                           deposit_address=paper.deposit_address)
    return venue


def feed_start(feed: object) -> tuple[float | None, Decimal | None]:
    """Return where a paper feed starts: a replayed file's first candle (time, open), a synthetic feed's price (no time).

    (None, None) when the file cannot be read or holds no candle: `check` has named that already.
    """
    match feed:
        case SyntheticFeedConfig():
            return None, feed.start_price
        case ReplayFeedConfig():
            try:
                candles = read_candles(feed.path)
            except (OSError, ExchangeError):
                return None, None
            return (candles[0].time, candles[0].open) if candles else (None, None)
    return None, None


def build_feed(config: Any, venue: PaperVenue, symbol: str, clock: Clock) -> FeedRun:
    """Return a paper market's price feed and how often it is stepped."""
    match config:
        case SyntheticFeedConfig():
            saved = venue.marks.get(symbol)
            start = saved[0] if saved else config.start_price
            feed = SyntheticFeed(
                start, config.step_seconds, volatility=config.volatility, drift=config.drift,
                jump_probability=config.jump_probability, jump_size=config.jump_size,
                seed=config.seed, start_time=clock.now(),
            )
            return FeedRun(symbol, feed, config.step_seconds, exchange_time=False)
        case ReplayFeedConfig():
            candles = read_candles(config.path)
            saved = venue.marks.get(symbol)
            if saved is not None:
                # A restarted replay resumes after the last candle the paper account saw.
                candles = [c for c in candles if c.time > saved[1]]
            feed = ReplayFeed(candles, loop=config.loop)
            return FeedRun(symbol, feed, config.step_seconds, exchange_time=False, replayed=True)
        case LiveFeedConfig():
            return FeedRun(symbol, LiveFeed(config.exchange, symbol), config.poll_seconds, exchange_time=True)
    raise AssertionError(f"unknown feed {config!r}")


def paper_setup(account: AccountConfig, venue: PaperVenue, clock: Clock) -> VenueSetup:
    """Wrap a paper venue with the feeds and funding polls its account config asks for."""
    setup = VenueSetup(venue, simulated=venue)
    if account.paper is None:
        return setup
    for market in account.paper.markets:
        setup.feeds.append(build_feed(market.feed, venue, market.symbol, clock))
        listed = venue.markets.get(market.symbol)
        if listed is not None and isinstance(listed.funding, LiveFunding):
            setup.funding_polls.append((listed.funding, market.funding.poll_seconds))
    return setup


def build_venue(account: AccountConfig, clock: Clock, state_dir: Path | None) -> VenueSetup:
    """Build an account's venue from its config: paper, or the exchange's ccxt venue with the account's keys."""
    problems = account_problems(account)
    if problems:
        raise ConfigError("\n".join(problems))
    if account.mode == "paper":
        assert account.paper is not None
        return paper_setup(account, build_paper_venue(account, account.paper, clock, state_dir), clock)
    return VenueSetup(connect_live(account, clock))


def build_holdings(account: AccountConfig, clock: Clock, state_dir: Path | None) -> VenueSetup:
    """Build what reads a holdings account's spot: its venue, or on an exchange with none, a read-only ccxt client."""
    from hedgebot.exchange.dialects import DIALECTS
    from hedgebot.exchange.spot_holdings import SpotHoldings

    if account.mode == "paper" or account.exchange in DIALECTS:
        return build_venue(account, clock, state_dir)
    problems = account_problems(account)
    if problems:
        raise ConfigError("\n".join(problems))
    api_key, secret, password = _secrets(account)
    keys = {"apiKey": api_key, "secret": secret, **({"password": password} if password else {})}
    reader = SpotHoldings.connect(account.exchange, clock, credentials=keys, account=account.name, api_base_url=account.api_base_url)
    return VenueSetup(reader)  # type: ignore[arg-type]  # it reads spot balances and closes; nothing else is asked of it


def _secrets(account: AccountConfig) -> tuple[str, str, str | None]:
    """Return a live account's key, secret and password, resolved now (ConfigError names a missing one)."""
    credentials = account.credentials
    assert credentials is not None
    where = f"accounts[{account.name}].credentials"
    api_key = credentials.api_key.resolve(f"{where}.api_key")
    secret = credentials.secret.resolve(f"{where}.secret")
    password = credentials.password.resolve(f"{where}.password") if credentials.password else None
    return api_key, secret, password


def connect_live(account: AccountConfig, clock: Clock) -> ExchangePort:
    """Return the ccxt venue of a live account, with its secrets resolved now (ConfigError names a missing one)."""
    from hedgebot.exchange.ccxt_venue import CcxtVenue
    from hedgebot.exchange.dialects import dialect_for
    from hedgebot.exchange.ratelimit import gates_for

    api_key, secret, password = _secrets(account)
    venue = CcxtVenue.connect(
        dialect_for(account.exchange), clock, api_key=api_key, secret=secret, password=password,
        api_base_url=account.api_base_url,
        gates=gates_for(clock),  # one weight budget and back-off per exchange host, shared by every account
        account=account.name, weight_share=account.weight_share,
    )
    if account.order_settle_seconds is not None:
        venue.settle_seconds = account.order_settle_seconds
    venue.max_clock_offset = account.max_clock_offset_seconds
    return venue


__all__ = [
    "FeedRun",
    "VenueSetup",
    "account_problems",
    "build_paper_venue",
    "build_holdings",
    "build_venue",
    "connect_live",
    "paper_market",
    "paper_setup",
]

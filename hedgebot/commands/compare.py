"""`hedgebot compare --hedge NAME`: each instrument's carrying cost, margin and runway for a hedge, side by side.

A paper account is priced from its config (listed markets, starting balances,
funding rate or file); a live account is read from the exchange with the
account's key, nothing ordered or changed (see `hedgebot.compare`).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

from hedgebot import compare
from hedgebot.clock import Clock, RealClock, SimClock
from hedgebot.commands.args import EXIT_OK, fail, find_hedge, with_config
from hedgebot.config import AccountConfig, ConfigError, HedgeConfig, PaperConfig, load_config
from hedgebot.exchange.factory import account_problems, build_paper_venue, build_venue, coin_margined_exchanges, feed_start
from hedgebot.exchange.port import ExchangeError, ExchangePort
from hedgebot.redact import redact

# Tests hand the command the venues of an account; the real command builds them from the config.
VenueFactory = Callable[[AccountConfig], ExchangePort]


def _sibling(account: AccountConfig) -> AccountConfig | None:
    """Return the account as read on Binance's other futures side (USDⓈ-M <-> COIN-M), which one key serves."""
    other = {"binanceusdm": "binancecoinm", "binancecoinm": "binanceusdm"}.get(account.exchange)
    if other is None:
        return None
    return account.model_copy(update={"exchange": other, "hedges": ()})


def _live_venue(account: AccountConfig, clock: Clock) -> ExchangePort:
    problems = account_problems(account)
    if problems:
        raise ConfigError("\n".join(problems))
    return build_venue(account, clock, None).venue


async def _live(account: AccountConfig, hedge: HedgeConfig, clock: Clock, factory: VenueFactory, ends_at: float | None) -> list[compare.Candidate]:
    linear, inverse = compare.perpetual_symbols(hedge)
    sides = [(account, [linear, inverse])]
    sibling = _sibling(account)
    if sibling is not None:  # Binance lists each kind on its own side: read each symbol where it trades
        mine = inverse if account.exchange in coin_margined_exchanges() else linear
        theirs = linear if mine == inverse else inverse
        sides = [(account, [mine]), (sibling, [theirs])]
    found: list[compare.Candidate] = []
    for side, symbols in sides:
        try:
            venue = factory(side)
        except (ConfigError, ExchangeError) as exc:
            found += [compare.Candidate(compare._kind(s), s, problem=f"cannot connect to {side.exchange}: {redact(str(exc))}")
                      for s in symbols]
            continue
        try:
            found += await compare.venue_candidates(hedge, venue, symbols, clock, ends_at)
        finally:
            await venue.close()
    return found


async def _paper(account: AccountConfig, paper: PaperConfig, hedge: HedgeConfig, ends_at: float | None) -> list[compare.Candidate]:
    """Price the paper account's markets of the asset on a fresh paper venue (its starting balances, nothing saved).

    The venue stands at the feeds' start: a replayed feed's first candle (so a funding file's 30 days before it
    are the recent history), a synthetic feed's start price now.
    """
    mine = [m for m in paper.markets if m.symbol.partition("/")[0] == hedge.asset]
    starts = [t for t, _ in (feed_start(m.feed) for m in mine) if t is not None]
    clock = SimClock(start=min(starts) if starts else time.time())
    venue = build_paper_venue(account, paper, clock, None)
    priced = []
    for market in mine:
        price = feed_start(market.feed)[1]
        if price is not None:
            venue.update_price(market.symbol, clock.now(), price)
            priced.append(market.symbol)
    found = await compare.venue_candidates(hedge, venue, priced, clock, ends_at)
    found += [compare.Candidate(compare._kind(m.symbol), m.symbol, problem="no starting price to price it at")
              for m in mine if m.symbol not in priced]
    return found


def cmd_compare(args: argparse.Namespace, venue_factory: VenueFactory | None = None, clock: Clock | None = None) -> int:
    """Print what each instrument offered for the hedge's asset would cost, lock up and leave as runway."""
    settings = load_config(args.config)
    found = find_hedge(settings, args.hedge, args.account)
    if isinstance(found, str):
        return fail(found)
    account, hedge = found
    clock = clock or RealClock()
    ends_at = hedge.schedule_of(settings.calendar_events()).ends_at
    if account.paper is not None:
        try:
            candidates = asyncio.run(_paper(account, account.paper, hedge, ends_at))
        except ExchangeError as exc:
            return fail(f"account {account.name!r}: {exc}")
        if not candidates:
            return fail(f"account {account.name!r} lists no paper market of {hedge.asset}")
    else:
        factory = venue_factory or (lambda a: _live_venue(a, clock))
        try:
            candidates = asyncio.run(_live(account, hedge, clock, factory, ends_at))
        except Exception as exc:  # ccxt's network errors: say which exchange, never a traceback
            if type(exc).__module__.startswith("ccxt"):
                return fail(f"{account.exchange}: cannot read the markets: {type(exc).__name__}: {redact(str(exc))}")
            raise
    print(compare.render_table(hedge, account, candidates))
    return EXIT_OK


def register(sub: Any) -> None:
    """Add `compare` to the command line."""
    p = with_config(sub.add_parser(
        "compare", help="each instrument's carrying cost, margin and runway for a hedge's asset (nothing ordered)",
    ))
    p.add_argument("--hedge", required=True, help="hedge name")
    p.add_argument("--account", help="the account of the hedge (needed when two accounts have a hedge of that name)")
    p.set_defaults(func=cmd_compare)

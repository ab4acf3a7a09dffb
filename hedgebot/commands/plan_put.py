"""`hedgebot plan-put`: the protective puts for a hedge's holding, beside what its short costs.

Reads a venue's option chain (public endpoints, no key needed), prints the puts
of the first expiry that covers the horizon around the strike nearest the floor,
each repriced with hedgebot's Black-Scholes at the chain's own volatility, and the
short's expected funding, margin and runway over the same horizon. No order is sent.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from hedgebot.clock import RealClock
from hedgebot.commands.args import EXIT_OK, fail, find_hedge, with_config
from hedgebot.config import AccountConfig, HedgeConfig, Settings, load_config
from hedgebot.domain.put_plan import NoSensibleQuote, PutPlan, PutQuote, ShortCost, plan_puts, short_cost
from hedgebot.domain.runway import opening_snapshot, runway_price
from hedgebot.domain.vol_surface import VolSurface
from hedgebot.exchange import option_chains
from hedgebot.exchange.factory import paper_market
from hedgebot.exchange.funding import ReplayFunding

# Rates of this many recent settlements make the expected funding of a replayed file.
RECENT_SETTLEMENTS = 90
# Tests hand the command a ccxt client over recorded books; the real command builds its own.
ClientFactory = Callable[[str], Any]


def _floor(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"--floor {text!r} is not a number") from None
    if not value.is_finite() or not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"--floor {text} must lie strictly between 0 and 1 (0.85 = 85 % of the price)")
    return value


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--days {text!r} is not a number") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"--days {text} must be more than 0")
    return value


def _quantity(account: AccountConfig, hedge: HedgeConfig) -> Decimal | None:
    """Return ratio x exposure from the paper balances; None for a live account (not read yet)."""
    if account.paper is None:
        return None
    held = account.paper.spot.get(hedge.asset, Decimal(0)) if hedge.exposure.spot else Decimal(0)
    return hedge.ratio * (held + hedge.exposure.offset)


def _recent_rates(account: AccountConfig, hedge: HedgeConfig) -> tuple[list[Decimal], float, str]:
    assert account.paper is not None
    funding = next(m for m in account.paper.markets if m.symbol == hedge.symbol).funding
    if funding.file is not None:
        replay = ReplayFunding.from_csv(funding.file)
        rows = replay.settlements(float("-inf"), float("inf"))[-RECENT_SETTLEMENTS:]
        return [r for _, r in rows], funding.interval_hours, f"the last {len(rows)} settlements of {funding.file}"
    return [funding.rate], funding.interval_hours, "the configured constant rate"


def _short_side(account: AccountConfig, hedge: HedgeConfig, price: Decimal, days: float) -> tuple[ShortCost, str] | None:
    """Return the cost of the hedge's short opened from the paper balances at `price`."""
    if account.paper is None:
        return None
    market = paper_market(next(m for m in account.paper.markets if m.symbol == hedge.symbol))
    policy = hedge.policy()
    snapshot = opening_snapshot(market, price, dict(account.paper.spot), dict(account.paper.futures), policy, hedge.leverage, hedge.margin_mode)
    rates, interval, source = _recent_rates(account, hedge)
    locked = snapshot.short.margin if snapshot.short.margin > 0 else snapshot.short.size * price / hedge.leverage
    cost = short_cost(snapshot.short.size, price, rates, interval, days, locked, runway_price(snapshot, policy))
    return cost, source


def _plain(value: Decimal) -> str:
    """Return a Decimal without exponent or trailing zeros (75000, 2, 0.5)."""
    return f"{value.normalize():f}"


def _render(plan: PutPlan, venue: str, settle: str, asset: str, quote_ccy: str) -> list[str]:
    lines = [
        f"puts on {venue} ({asset} options, settled in {settle}); index {_plain(plan.spot)}; protecting {_plain(plan.quantity)} {asset} "
        f"below {plan.floor:.0%} ({plan.floor * plan.spot:.2f}) for {plan.horizon_days:g} days",
    ]
    if not plan.covers_horizon:
        lines.append(f"  no listed expiry reaches {plan.horizon_days:g} days: showing the latest one")
    lines.append(
        "  {:<2} {:<28} {:>10} {:>17} {:>6} {:>12} {:>8} {:>7} {:>7} {:>10} {:>14} {:>14} {:>8}".format(
            "", "put", "strike", "expiry", "days", f"premium/{asset}", "per yr", "IV", "delta", "contracts",
            f"cost {quote_ccy}", f"protects {quote_ccy}", "model"
        )
    )
    for row in plan.rows:
        q = row.quote
        mark = "*" if row is plan.pick else ""
        expiry = datetime.fromtimestamp(q.expiry, UTC).strftime("%Y-%m-%d %H:%M")
        delta = f"{q.delta:.3f}" if q.delta is not None else "-"
        lines.append(
            f"  {mark:<2} {q.symbol:<28} {_plain(q.strike):>10} {expiry:>17} {row.days:>6.1f} {row.premium:>12.2f} "
            f"{row.premium_per_year:>8.1%} {q.iv or 0:>7.1%} {delta:>7} {_plain(row.contracts):>10} {row.cost:>14.2f} "
            f"{row.protected:>14.2f} {row.model_error:>+8.2%}"
        )
    pick = plan.pick
    unit = asset if pick.quote.coin_quoted else quote_ccy
    lines.append(
        f"pick: {pick.quote.symbol} (strike {_plain(pick.quote.strike)}, {pick.floor_ratio:.1%} of the index): "
        f"{_plain(pick.contracts)} contracts for {pick.cost:.2f} {quote_ccy} ({pick.premium_per_year:.1%} a year) "
        f"guarantee {pick.protected:.2f} {quote_ccy} at expiry; mark {_plain(pick.quote.mark)} {unit}, "
        f"hedgebot's Black-Scholes at the chain's IV {_plain(pick.model_mark)} {unit} ({pick.model_error:+.2%})"
    )
    if plan.unquoted:
        lines.append(f"left out for want of a sensible quote: {len(plan.unquoted)} puts")
    return lines


def _render_short(cost: ShortCost, source: str, asset: str, quote_ccy: str, days: float, price: Decimal) -> list[str]:
    if cost.size <= 0:
        return ["short: none opens from the paper balances"]
    runway = (
        "none (no short)" if cost.runway is None
        else "unlimited" if not cost.runway.is_finite()
        else f"{cost.runway:.2f} ({cost.runway / price - 1:.1%} above {_plain(price)})"
    )
    verb = "received" if cost.expected_funding >= 0 else "paid"
    return [
        f"the short instead, over the same {days:g} days ({_plain(cost.size)} {asset} opened at the index {_plain(price)} "
        f"from the paper balances, notional {cost.notional:.2f} {quote_ccy}):",
        f"  expected funding {verb}: {abs(cost.expected_funding):.2f} {quote_ccy} "
        f"({cost.settlements:.0f} settlements at a mean {cost.funding_rate:.6f} from {source})",
        f"  margin locked: {cost.margin_locked:.2f} {quote_ccy}",
        f"  runway: {runway}",
    ]


async def _plan(args: argparse.Namespace, settings: Settings, client_factory: ClientFactory, now: float) -> int:
    found = find_hedge(settings, args.hedge, args.account)
    if isinstance(found, str):
        return fail(found)
    account, hedge = found
    venue = args.venue or option_chains.DEFAULT_VENUE.get(account.exchange)
    if venue is None:
        return fail(
            f"exchange {account.exchange!r} of account {account.name!r} has no options hedgebot reads: "
            f"pass --venue {'|'.join(option_chains.VENUES)}"
        )
    quantity = _quantity(account, hedge)
    if quantity is None:
        return fail(f"account {account.name!r} is live: plan-put reads the holding of paper accounts only so far")
    if quantity <= 0:
        return fail(f"hedge {hedge.name!r} has no exposure to protect (ratio {hedge.ratio}, holding {quantity} {hedge.asset})")
    client = client_factory(venue)
    try:
        chain = await option_chains.read_puts(client, venue, hedge.asset)
        if not chain.puts:
            return fail(f"{venue} lists no {hedge.asset} puts")
        try:
            plan = plan_puts(chain.puts, chain.spot, quantity, args.floor, args.days, now)
        except NoSensibleQuote as exc:
            return fail(f"{venue} {hedge.asset} chain: {exc}; nothing to plan on")
        if venue == "deribit":
            deltas = await option_chains.deribit_deltas(client, [r.quote.symbol for r in plan.rows])
            plan = plan_puts(
                [q if q.symbol not in deltas else _with_delta(q, deltas[q.symbol]) for q in chain.puts],
                chain.spot, quantity, args.floor, args.days, now,
            )
    except option_chains.ChainError as exc:
        return fail(f"{venue}: {exc}")
    except Exception as exc:  # ccxt's network and exchange errors: say which venue, never a traceback
        if type(exc).__module__.startswith("ccxt"):
            return fail(f"{venue}: cannot read the {hedge.asset} option chain: {type(exc).__name__}: {exc}")
        raise
    finally:
        await client.close()
    quote_ccy = hedge.symbol.split("/")[1].split(":")[0]
    for line in _render(plan, venue, chain.settle, hedge.asset, quote_ccy):
        print(line)
    short = _short_side(account, hedge, chain.spot, args.days)
    if short is not None:
        for line in _render_short(short[0], short[1], hedge.asset, quote_ccy, args.days, chain.spot):
            print(line)
    if args.save_surface is not None:
        return _save_surface(chain.puts, args.save_surface, venue)
    return EXIT_OK


def _save_surface(puts: list[PutQuote], path: Path, venue: str) -> int:
    """Write the chain's implied volatilities as a surface file a paper account can price on."""
    try:
        surface = VolSurface.of_puts(puts)
    except ValueError:
        return fail(f"{venue}: no put with an implied volatility; no surface written to {path}")
    try:
        path.write_text(surface.to_csv(), encoding="utf-8")
    except OSError as exc:
        return fail(f"cannot write the surface to {path}: {exc.strerror}")
    points = sum(len(strikes) for _, strikes in surface.slices)
    print(f"surface: {points} points on {len(surface.slices)} expiries written to {path} (paper.option_volatility_surface)")
    return EXIT_OK


def _with_delta(quote: PutQuote, delta: float | None) -> PutQuote:
    return replace(quote, delta=delta)


def _real_client(venue: str) -> Any:
    return option_chains.client_for(venue)


def cmd_plan_put(args: argparse.Namespace, client_factory: ClientFactory | None = None, now: float | None = None) -> int:
    """Print the puts protecting a hedge's holding below the floor for the horizon, and the short's cost beside them."""
    settings = load_config(args.config)
    return asyncio.run(_plan(args, settings, client_factory or _real_client, now if now is not None else RealClock().now()))


def register(sub: Any) -> None:
    """Add `plan-put` to the command line."""
    p = with_config(sub.add_parser("plan-put", help="the protective puts for a hedge's holding, beside the short's cost"))
    p.add_argument("--hedge", required=True, help="hedge name")
    p.add_argument("--account", help="the account of the hedge (needed when two accounts have a hedge of that name)")
    p.add_argument("--floor", type=_floor, default=Decimal("0.85"), help="protect below this share of the price (0 < floor < 1)")
    p.add_argument("--days", type=_days, default=30.0, help="the horizon in days (> 0)")
    p.add_argument("--venue", choices=option_chains.VENUES, help="the options venue (default: the account's exchange's)")
    p.add_argument("--save-surface", type=Path, help="also write the chain's implied volatilities to this CSV file "
                   "(expiry,strike,iv), for a paper account's option_volatility_surface")
    p.set_defaults(func=cmd_plan_put)

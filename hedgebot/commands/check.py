"""`hedgebot check`: validate a config, check everything `run` will need, and say what `run` would run.

Owns the check's lines: each account and hedge as `run` would run them, with the paper accounts' runway,
fundability, margin and carrying cost from their starting balances, and `--exchange`'s live start-up checks.
It may NOT start anything, write anything but the preflight's probes, or place an order.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from hedgebot import affordability
from hedgebot.access import SERVICE_USER_HINT
from hedgebot.clock import RealClock
from hedgebot.commands.journal import check_journal
from hedgebot.commands.args import EXIT_BAD_INPUT, EXIT_OK, fail, with_config
from hedgebot.commands.preflight import preflight
from hedgebot.config import HedgeConfig, PaperConfig, PaperMarketConfig, Settings, load_config
from hedgebot.domain.basis import annual_basis_from_funding
from hedgebot.domain.delivery import delivery_symbol, quarterly_expiries
from hedgebot.domain.fundability import fundability
from hedgebot.domain.model import Market
from hedgebot.domain.roll import Contract, contract_to_hold
from hedgebot.domain.schedule import CalendarEvent
from hedgebot.engine.custody import CustodyFileError, read_custody_file
from hedgebot.exchange.factory import feed_start, paper_market
from hedgebot.exchange.funding import ReplayFunding
from hedgebot.ops.figures import duration, iso_utc, percent


def refuse(path: Path, problems: list[str]) -> int:
    """Print why `run` cannot start: files this user may not use first, one line each, then what is wrong in the config."""
    locked = [p for p in dict.fromkeys(problems) if SERVICE_USER_HINT in p]
    for problem in locked:
        fail(problem)
    wrong = [p for p in problems if p not in locked]
    return fail(f"invalid config {path}:\n" + "\n".join(wrong)) if wrong else EXIT_BAD_INPUT


def _exposure(hedge: HedgeConfig) -> str:
    if hedge.amount is not None:
        bought = f", less the spot {hedge.asset} bought" if hedge.exposure.spot else ""
        return f"a planned purchase of {hedge.amount} {hedge.asset}{bought}"
    parts = [f"spot {hedge.asset}"] if hedge.exposure.spot else []
    if hedge.exposure.offset:
        parts.append(f"{hedge.exposure.offset} {hedge.asset} held elsewhere")
    if hedge.exposure.perp_long:
        parts.append(f"the LONG leg of {hedge.symbol}")
    if hedge.exposure.file is not None:
        parts.append(_custody_count(hedge))
    parts += [f"the spot {hedge.asset} of holdings account {name}" for name in hedge.exposure.accounts]
    return " + ".join(parts) or "nothing (spot off, no offset, no long leg)"


def _with_coins_held_elsewhere(settings: Settings, hedge: HedgeConfig) -> tuple[HedgeConfig, list[str]]:
    """Return the hedge with the coins it counts elsewhere added to its offset, for `check`'s figures, and what is unknown."""
    held, unknown = Decimal(0), []
    if hedge.exposure.file is not None:
        try:
            held += read_custody_file(hedge.exposure.file, hedge.asset, RealClock().now()).amount
        except CustodyFileError:
            unknown.append(f"custody file {hedge.exposure.file}")
    for name in hedge.exposure.accounts:
        account = next(a for a in settings.accounts if a.name == name)
        if account.paper is not None:
            held += account.paper.spot.get(hedge.asset, Decimal(0))
        else:
            unknown.append(f"account {name} (live: read by `check --exchange` and `run`)")
    exposure = hedge.exposure.model_copy(update={"offset": hedge.exposure.offset + held})
    return hedge.model_copy(update={"exposure": exposure}), unknown


def _custody_count(hedge: HedgeConfig) -> str:
    """Say what the hedge's custody file counts now, or why it cannot be read (the hedge would hold, not fail)."""
    path = hedge.exposure.file
    assert path is not None
    now = RealClock().now()
    try:
        count = read_custody_file(path, hedge.asset, now)
    except CustodyFileError as exc:
        return f"UNREADABLE ({exc}: `run` holds this hedge both ways until it can be read)"
    age = now - count.at
    stale = " - STALE: it may not grow the hedge" if age > hedge.exposure.file_max_age_seconds else ""
    return f"{count.amount} {hedge.asset} in {path} (counted {iso_utc(count.at)}, {duration(max(age, 0))} ago){stale}"


def _guard(hedge: HedgeConfig) -> str:
    guard = hedge.margin_guard
    if not guard.enabled:
        return "off"
    text = f"top up below {guard.trigger} to {guard.target} from {', '.join(guard.sources)}"
    return text + (f"; release above {guard.release}" if guard.release is not None else "")


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the config, check everything `run` will need, and print what it would run (with paper runways)."""
    from hedgebot.ops.senders import resolve_senders

    settings = load_config(args.config)
    problems = preflight(settings)
    _, unusable = resolve_senders(settings)
    # `run` starts without such a sender (and says so); `check` is where to hear of it before it matters.
    problems += [f"alert sender {problem}; `run` would start without this sender" for problem in unusable]
    if problems:
        return refuse(args.config, problems)
    if settings.journal.url is not None:
        usable, line = check_journal(settings)
        if not usable:
            return fail(line)
        print(line)
    else:
        print(f"journal: {settings.journal.path}")
    print(f"state dir: {settings.daemon.state_dir}")
    calendar = settings.calendar_events()
    for account in settings.accounts:
        print(f"account {account.name}: {account.mode} on {account.exchange}")
        if not account.hedges:
            counted_by = [f"{a.name}/{h.name}" for a in settings.accounts for h in a.hedges if account.name in h.exposure.accounts]
            refilling = [f"{a.name}/{h.name}" for a in settings.accounts for h in a.hedges
                         if h.buffer is not None and h.buffer.allow_withdraw and h.buffer.refill_from == account.name]
            use = f", and {', '.join(refilling)} may withdraw from it (the buffer's refill)" if refilling else "; it is only read"
            print(f"  holdings account: its spot coins are counted by {', '.join(counted_by)}{use}")
        for h in account.hedges:
            if h.instrument.option:
                print(
                    f"  hedge {h.name}: {h.asset} via long puts priced off {h.symbol} (put), ratio {h.ratio}, band {h.band}, "
                    f"floor {h.floor}, expiry {h.expiry_days} days, rolled {duration(h.put_roll_before)} ahead"
                    + (f", rolled up above {h.roll_up_when}x the strike" if h.roll_up_when else "")
                    + f"; premium at most {h.max_premium_per_order} an order and {h.max_premium_per_month} in 30 days, "
                    f"tick {h.tick_seconds}s"
                )
                print(f"    exposure: {_exposure(h)}")
                if account.paper is not None:
                    surface = account.paper.option_volatility_surface
                    at = f"the surface in {surface}" if surface is not None else f"volatility {account.paper.option_volatility}"
                    print(f"    paper options: a model (Black-Scholes at {at}, spread {account.paper.option_spread} each side)")
                continue
            print(
                f"  hedge {h.name}: {h.asset} via a {h.side.value} on {h.symbol} ({h.instrument.value}), ratio {h.ratio}, band {h.band}, "
                f"{h.margin_mode.value} {h.leverage}x, tick {h.tick_seconds}s"
            )
            print(f"    exposure: {_exposure(h)}")
            if h.beta:
                b = h.beta_settings()
                held = ", ".join(f"{asset} (priced on {symbol})" for asset, symbol in h.holdings())
                print(
                    f"    beta: {held} hedged by beta to {h.symbol}, clamped to {b.beta_min}..{b.beta_max}, half-life "
                    f"{b.half_life} x {b.timeframe}, at least {b.min_observations} returns, re-hedged past +-{b.band}; "
                    f"correlation under {b.correlation_min} over {b.correlation_window} x {b.timeframe}: {b.on_break}"
                    + (f" to {b.reduce_to}" if b.on_break == "reduce" else "")
                )
                if h.basket:
                    # The exposure sources are counted for the hedge's own asset; a basket's others are spot coins only.
                    print(
                        f"    basket: {', '.join(b.asset for b in h.basket)} counts this account's spot coins only: "
                        f"exposure.offset, exposure.file and exposure.accounts count {h.asset} (the hedge's own asset) alone"
                    )
            print(f"    margin guard: {_guard(h)}")
            for line in _buffer_lines(h):
                print(f"    {line}")
            for line in _schedule_lines(h, calendar):
                print(f"    {line}")
            if account.paper is not None:
                counted, unknown = _with_coins_held_elsewhere(settings, h)
                for line in _starting_lines(account.paper, counted, h.schedule_of(calendar).ends_at):
                    print(f"    {line}")
                for line in _quarterly_lines(account.paper, h):
                    print(f"    {line}")
                if unknown:
                    print(f"    (these figures leave out the coins of {', '.join(unknown)}: not known here)")
    if args.exchange:
        return _check_exchange(settings)
    print("config OK")
    return EXIT_OK


def _buffer_lines(hedge: HedgeConfig) -> list[str]:
    """Say a hedge's buffer and its refill, for `check`."""
    buffer = hedge.buffer
    if buffer is None:
        return []
    lines = [
        f"buffer: kept {percent(buffer.floor, 1)} from liquidation (adverse move {percent(buffer.adverse_move, 1)} + "
        f"divergence {percent(buffer.divergence, 1)}); a deposit takes {duration(buffer.refill_seconds)}"
    ]
    if buffer.refill_from is None or not buffer.allow_withdraw:
        lines.append("refill: none (deposits come by hand; allow_withdraw = false)")
        return lines
    assert buffer.max_withdraw is not None
    per_day = buffer.max_withdraw_per_day or buffer.max_withdraw
    lines.append(
        f"refill: withdrawn from {buffer.refill_from} to {buffer.withdraw_address} on {buffer.withdraw_network}, at most "
        f"{buffer.max_withdraw} at once and {per_day} a day"
        + (" (the day's limit is below one withdrawal's: each withdrawal is cut to it)" if per_day < buffer.max_withdraw else "")
    )
    return lines


def _schedule_lines(hedge: HedgeConfig, calendar: Sequence[CalendarEvent]) -> list[str]:
    """Say each schedule window (with its times) and the hedge's end, for `check`."""
    schedule = hedge.schedule_of(calendar)
    lines = [
        f"window {w.name}: ratio {w.ratio} from {iso_utc(w.start)} to {iso_utc(w.end)}"
        for w in schedule.windows
    ]
    if schedule.ends_at is None:
        lines.append("ends: never by itself (no `until`)")
    else:
        spot = "its spot sold" if hedge.until_sell_spot else "its spot kept"
        lines.append(f"ends: unwound at {iso_utc(schedule.ends_at)} ({schedule.ends_because}), {spot}, then closed")
    return lines


def _check_exchange(settings: Settings) -> int:
    """Print what the live start-up checks find on the exchange; exit 2 when `run` would refuse to start."""
    from hedgebot.live_check import check_exchange

    found = asyncio.run(check_exchange(settings, RealClock()))
    for line in found.lines:
        print(line)
    if found.problems:
        return fail("the exchange checks found what would stop `run`:\n" + "\n".join(f"- {p}" for p in found.problems))
    print("config OK; the exchange checks passed (no order was placed)")
    return EXIT_OK


def _starting_price(feed: object) -> Decimal | None:
    return feed_start(feed)[1]


def _starting_lines(paper: PaperConfig, hedge: HedgeConfig, ends_at: float | None = None) -> list[str]:
    """Say the runway, fundability, margin and carrying cost of the hedge's target, opened from the paper account's starting balances."""
    market_config = next(m for m in paper.markets if m.symbol == hedge.symbol)
    price = _starting_price(market_config.feed)
    if price is None:
        return ["runway and fundability: need a price (shown by `hedgebot status` once running)"]
    market = paper_market(market_config)
    if hedge.beta:
        return [_beta_starting_line(paper, hedge, market, price)]
    spot, futures = dict(paper.spot), dict(paper.futures)
    basis = "from the starting balances"
    return [
        affordability.runway_line(affordability.opened(market, price, spot, futures, hedge), hedge, basis),
        *affordability.fundability_lines(market, price, spot, futures, hedge, basis),
        affordability.margin_line(market, price, spot, futures, hedge),
        # A quarterly's carry is its basis, said by `_quarterly_lines`: it pays and earns no funding.
        *([] if hedge.instrument.delivers else [_carry_line(market_config, market, price, spot, futures, hedge, ends_at)]),
    ]


def _beta_starting_line(paper: PaperConfig, hedge: HedgeConfig, market: Market, price: Decimal) -> str:
    """Say a beta hedge's largest short from the paper account's starting balances and prices."""
    worth = Decimal(0)
    for index, (asset, symbol) in enumerate(hedge.holdings()):
        listed = next((m for m in paper.markets if m.symbol == symbol), None)
        at = _starting_price(listed.feed) if listed is not None else None
        if at is None:
            return f"beta sizing: needs {asset}'s price on {symbol} (shown by `hedgebot status` once running)"
        coins = (paper.spot.get(asset, Decimal(0)) if hedge.exposure.spot else Decimal(0)) + (hedge.exposure.offset if index == 0 else Decimal(0))
        worth += coins * at
    return affordability.beta_largest_line(market, price, worth, hedge.beta_settings().beta_max, "from the starting balances")


CARRY_HISTORY_SECONDS = 30 * 86400.0  # the recent history funding rates are averaged over


def _quarterly_lines(paper: PaperConfig, hedge: HedgeConfig) -> list[str]:
    """Say which quarterly a delivering hedge would hold now, its delivery, when its roll starts, and the basis it costs."""
    if not hedge.instrument.follows_delivery:
        return []
    config = next((m for m in paper.markets if m.symbol == hedge.symbol), None)
    if config is None or not config.quarterlies:
        return [f"quarterlies: the paper market {hedge.symbol} lists none (set quarterlies = true on it)"]
    now = feed_start(config.feed)[0] or datetime.now(UTC).timestamp()
    held = contract_to_hold(
        [Contract(delivery_symbol(hedge.symbol, e), e) for e in quarterly_expiries(now, 2)], now, hedge.quarterly_roll_before,
    )
    if held is None:
        return ["quarterlies: none far enough from delivery to hold"]
    if config.quarterly_basis is not None:
        basis, source = config.quarterly_basis, "configured (quarterly_basis)"
    else:
        funding = config.funding
        if funding.file is not None:
            try:
                replay = ReplayFunding.from_csv(funding.file)
            except (OSError, ValueError) as exc:
                return [f"quarterlies: the funding file their basis comes from cannot be read ({exc})"]
            rates = [rate for _, rate in replay.settlements(now - CARRY_HISTORY_SECONDS, now)]
            hours = Decimal(CARRY_HISTORY_SECONDS / 3600) / len(rates) if rates else Decimal(8)
            source = "from the funding file's 30 days before the start (a model)"
        else:
            rates, hours = [funding.rate], Decimal(str(funding.interval_hours))
            source = "from the config's funding rate (a model)"
        basis = annual_basis_from_funding(rates, hours)
    if hedge.instrument.chooses:
        return [
            f"cheapest: chooses between the perpetual {hedge.symbol} (its funding carry above) and {held.symbol} "
            f"(delivered {iso_utc(held.expiry)}) at opening, and again from {iso_utc(held.expiry - hedge.quarterly_roll_before)} "
            f"(roll_before {duration(hedge.quarterly_roll_before)}); it moves only for {percent(hedge.switch_advantage, 2)} a year "
            "more (switch_advantage)",
            f"carrying cost of {held.symbol}: annualised basis {percent(basis, 2)} ({source}); no funding on a quarterly",
        ]
    return [
        f"contract held: {held.symbol}, delivered {iso_utc(held.expiry)}; the roll to the next starts "
        f"{iso_utc(held.expiry - hedge.quarterly_roll_before)} (roll_before {duration(hedge.quarterly_roll_before)}) in slices of at most "
        f"{hedge.max_order} {hedge.asset}",
        f"carrying cost: annualised basis {percent(basis, 2)} ({source}); no funding on a quarterly",
    ]


def _carry_line(
    config: PaperMarketConfig, market: Market, price: Decimal, spot: dict[str, Decimal], futures: dict[str, Decimal],
    hedge: HedgeConfig, ends_at: float | None = None,
) -> str:
    """Say the hedge's carrying cost from its paper market's funding: the config's rate, or a file's last 30 days."""
    funding = config.funding
    coins = fundability(market, price, spot, futures, hedge.policy(), hedge.leverage).target
    interval = Decimal(str(funding.interval_hours))
    if funding.file is not None:
        try:
            replay = ReplayFunding.from_csv(funding.file)
        except (OSError, ValueError) as exc:
            return f"carrying cost: the funding file cannot be read ({exc})"
        _, last = replay.span()
        settlements = replay.settlements(last - CARRY_HISTORY_SECONDS, last) if last is not None else []
        source = "the funding file's last 30 days"
    elif funding.live:
        return "carrying cost: shown by `check --exchange` from the exchange's recent funding (live rate)"
    else:
        settlements, source = [(0.0, funding.rate)], "the config's rate"
    horizon = affordability.horizon_years(ends_at, time.time())
    rates = [rate for _, rate in settlements]
    return affordability.carry_line(market, price, coins, hedge, rates, interval, source, horizon)


def register(sub: Any) -> None:
    """Add `check` to the `hedgebot` parser."""
    check = with_config(sub.add_parser("check", help="validate a config and exit"))
    check.add_argument(
        "--exchange", action="store_true",
        help="also run the live start-up checks against each live account's exchange (no order, no change)",
    )
    check.set_defaults(func=cmd_check)

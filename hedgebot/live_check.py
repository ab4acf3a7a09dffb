"""`hedgebot check --exchange`: the live start-up checks against the exchange, with no order and no change.

Each live account is connected as `run` would connect it; the key's permissions
and the account's modes are judged as at start-up (`engine.startup_checks`),
each hedge's keeper prepares in a dry run (markets, minimums, leverage bracket;
a margin mode or leverage that differs is only noted), and the runway is
computed from the exchange's balances. Every problem is listed, not only the
first; nothing is set, transferred or ordered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from hedgebot import affordability
from hedgebot.clock import Clock
from hedgebot.config import AccountConfig, ConfigError, HedgeConfig, Settings
from hedgebot.domain.basis import annual_basis, settlement_interval_hours
from hedgebot.domain.fundability import fundability
from hedgebot.domain.model import Market, PositionMode, Snapshot
from hedgebot.domain.schedule import CalendarEvent
from hedgebot.engine.keeper import Keeper, StartupRefused
from hedgebot.engine.startup_checks import UNRESTRICTED_KEY, key_problems
from hedgebot.exchange.factory import VenueSetup, build_holdings, build_venue
from hedgebot.exchange.port import AuthenticationFailed, ExchangeError, ExchangePort
from hedgebot.ops.events import EventLog, EventRecord, NullLogger
from hedgebot.ops.figures import duration, iso_utc, percent
from hedgebot.redact import redact
from hedgebot.store.journal import Journal

_NOTED = {"margin_mode_differs", "leverage_differs", "min_order_below_min_notional", "startup_check_skipped"}


@dataclass
class LiveCheck:
    """What `check --exchange` found: lines to print and the problems that would stop `run`."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


VenueFactory = Callable[[AccountConfig], ExchangePort | VenueSetup]


async def check_exchange(settings: Settings, clock: Clock, venue_factory: VenueFactory | None = None) -> LiveCheck:
    """Run the start-up checks of every live account against its exchange; change nothing and place no order."""
    found = LiveCheck()
    for account in settings.accounts:
        if account.mode != "live":
            found.lines.append(f"account {account.name}: paper (nothing to check on an exchange)")
            continue
        # A holdings account (no hedges) is read as `run` reads it; a hedged one gets every start-up check.
        build = build_venue if account.hedges else build_holdings
        try:
            made = venue_factory(account) if venue_factory is not None else build(account, clock, None)
        except ConfigError as exc:
            found.problems.append(f"account {account.name!r}: {exc}")
            continue
        setup = made if isinstance(made, VenueSetup) else VenueSetup(made)
        try:
            if account.hedges:
                await _check_account(account, setup.venue, clock, found, settings.calendar_events(), setup)
            else:
                await _check_holdings(account, setup, found)
        finally:
            await setup.close()
    return found


async def _check_holdings(account: AccountConfig, setup: VenueSetup, found: LiveCheck) -> None:
    """Read a holdings account's spot as `run` will; one that cannot be read is a warning (`run` holds growth on it)."""
    name = account.name
    try:
        balances = await setup.venue.fetch_spot_balances()
    except ExchangeError as exc:
        found.lines.append(
            f"account {name}: holdings on {account.exchange}, NOT READ ({redact(str(exc))}); `run` starts, and the hedges "
            "counting it hold until it can be read"
        )
        return
    held = ", ".join(f"{amount} {asset}" for asset, amount in sorted(balances.items()) if amount) or "nothing"
    found.lines.append(f"account {name}: holdings on {account.exchange}, read-only: spot holds {held}")


async def _check_account(
    account: AccountConfig, venue: ExchangePort, clock: Clock, found: LiveCheck, calendar: Sequence[CalendarEvent] = (),
    setup: VenueSetup | None = None,
) -> None:
    name = account.name
    found.lines.append(f"account {name}: live on {account.exchange}, checked against the exchange (no order placed, nothing changed)")
    try:
        facts = await venue.fetch_account_facts()
    except AuthenticationFailed as exc:
        found.problems.append(
            f"account {name!r}: the exchange refused the API key ({exc}); check the key, the secret, the key's "
            "permissions (reading and futures trading) and its IP restriction"
        )
        return
    except ExchangeError as exc:
        found.problems.append(f"account {name!r}: the exchange did not answer the key check: {redact(str(exc))}")
        return
    found.problems += key_problems(account, facts)
    found.lines.append(
        "  key: " + ", ".join([
            "withdrawals " + ("ON" if facts.can_withdraw else "off"),
            "IP restricted" if facts.ip_restricted else f"NOT IP restricted ({UNRESTRICTED_KEY})",
            *(f"{label} {'yes' if flag else 'NO'}" for label, flag in (
                ("futures", facts.can_trade_futures), ("transfers", facts.can_transfer), ("spot trading", facts.can_trade_spot),
            ) if flag is not None),
        ])
    )
    journal = Journal(":memory:", clock)
    try:
        for hedge in (h for h in account.hedges if h.instrument.option):
            await _check_put(account, hedge, venue, clock, journal, found, setup or VenueSetup(venue))
    finally:
        journal.close()
    if all(h.instrument.option for h in account.hedges):
        return  # puts send no futures order: the position mode, margin and leverage are not theirs to judge
    try:
        mode = await venue.fetch_position_mode()
    except ExchangeError as exc:
        found.problems.append(f"account {name!r}: cannot read the position mode: {exc}")
        return
    if mode is PositionMode.HEDGE:
        found.lines.append("  position mode: hedge")
    else:
        found.lines.append(
            f"  position mode: {mode.value}; `run` switches it to hedge mode itself if the account is flat with no "
            "open orders, and refuses to start otherwise"
        )
    journal = Journal(":memory:", clock)
    try:
        for hedge in (h for h in account.hedges if not h.instrument.option):
            await _check_hedge(account, hedge, venue, clock, journal, found, calendar)
    finally:
        journal.close()


async def _check_hedge(
    account: AccountConfig, hedge: HedgeConfig, venue: ExchangePort, clock: Clock, journal: Journal, found: LiveCheck,
    calendar: Sequence[CalendarEvent] = (),
) -> None:
    events = EventLog(journal, NullLogger())
    noted: list[EventRecord] = []
    events.subscribe(lambda record: noted.append(record) if record.kind in _NOTED else None)
    chosen: list[EventRecord] = []  # instrument = "cheapest": the choice made at opening, from the exchange's carries
    events.subscribe(lambda record: chosen.append(record) if record.kind == "instrument_chosen" else None)
    keeper = Keeper(account.name, hedge, venue, clock, journal, events, calendar=calendar)
    where = f"{account.name}/{hedge.name}"
    try:
        problems = await keeper.prepare(dry_run=True)
    except AuthenticationFailed as exc:
        found.problems.append(f"{where}: the exchange refused the API key for {hedge.symbol} ({exc})")
        return
    except (StartupRefused, ExchangeError) as exc:
        found.problems.append(f"{where}: {exc}")
        return
    found.problems += problems
    market = keeper.market
    assert market is not None
    found.lines.append(
        f"  hedge {hedge.name}: {hedge.symbol} listed (step {market.amount_step}, minimum {market.min_amount} "
        f"and {market.min_notional} {market.quote}); {hedge.margin_mode.value} {hedge.leverage}x"
    )
    for record in noted:
        detail = ", ".join(f"{k} {v}" for k, v in record.detail.items() if k != "note")
        found.lines.append(f"    {record.kind.replace('_', ' ')}: {detail}" + (f" ({record.detail['note']})" if "note" in record.detail else ""))
    try:
        snapshot = await keeper.observe()
    except ExchangeError as exc:
        found.lines.append(f"    runway: cannot read the account to compute it: {exc}")
        return
    market = snapshot.market
    if keeper.beta_sizing is not None:
        # A beta hedge's coins are not the instrument's: its short is at most beta_max x their worth in it.
        beta_max = keeper.beta_sizing.settings.beta_max
        try:
            largest = await keeper.beta_sizing.largest_short(venue, snapshot, keeper.policy, keeper._read)
        except ExchangeError as exc:
            found.lines.append(f"    beta sizing: cannot read a holding's price to size the largest short ({redact(str(exc))})")
            return
        found.lines.append("    " + affordability.beta_largest_line(
            market, snapshot.mark_price, largest * snapshot.mark_price / beta_max, beta_max, "from the exchange's balances",
        ))
        return
    held = snapshot.leg_of(hedge.policy().side)
    spot = {market.base: snapshot.spot_asset, market.margin_asset: snapshot.spot_quote}
    futures = {market.margin_asset: snapshot.futures_wallet}
    if held.size > 0:
        found.lines.append("    " + affordability.runway_line(snapshot, hedge, f"the {hedge.side.value} held now"))
    else:
        opened = affordability.opened(market, snapshot.mark_price, spot, futures, hedge)
        found.lines.append("    " + affordability.runway_line(opened, hedge, "the target opened from the exchange's balances"))
    for line in affordability.fundability_lines(market, snapshot.mark_price, spot, futures, hedge, "from the exchange's balances"):
        found.lines.append(f"    {line}")
    found.lines.append("    " + affordability.margin_line(market, snapshot.mark_price, spot, futures, hedge))
    found.lines += ["    " + _choice_line(record) for record in chosen]
    if hedge.instrument.follows_delivery:
        found.lines += ["    " + line for line in await _quarterly_lines(hedge, venue, clock, market)]
    if not hedge.instrument.delivers:  # a quarterly's carry is its basis: it pays and earns no funding
        found.lines.append("    " + await _carry_line(hedge, venue, clock, snapshot, calendar))


async def _check_put(
    account: AccountConfig, hedge: HedgeConfig, venue: ExchangePort, clock: Clock, journal: Journal, found: LiveCheck,
    setup: VenueSetup,
) -> None:
    """Check a put hedge's options account: the key may trade options, the chain quotes a put, the wallet pays for it."""
    from hedgebot.engine.put_leg import FEE_ALLOWANCE, live_put_leg  # noqa: PLC0415 - only for a put hedge

    where = f"{account.name}/{hedge.name}"
    try:
        leg = live_put_leg(account, hedge, venue, setup, clock, journal, EventLog(journal, NullLogger()))
        series, amount, quote = await leg.first_purchase()
        wallet = await setup.options.wallet()
    except AuthenticationFailed as exc:
        found.problems.append(f"{where}: {exc}")
        return
    except (StartupRefused, ExchangeError, ConfigError) as exc:
        found.problems.append(f"{where}: the options account could not be read: {redact(str(exc))}")
        return
    found.lines.append(f"  hedge {hedge.name}: long puts on Binance options; the key may trade options; options wallet {wallet} USDT")
    if series is None or quote is None or quote.ask <= 0:
        found.lines.append("    no put with a quote for the horizon now: `run` waits and alerts (put_leg_waiting), it pays no price")
        return
    expiry = iso_utc(series.expiry)
    cost = quote.ask * amount * (1 + FEE_ALLOWANCE)
    found.lines.append(
        f"    it would buy {amount} puts at strike {series.strike}, expiry {expiry}, at the ask {quote.ask} "
        f"(mark {quote.mark}): about {cost:.2f} USDT with fees"
    )
    assert hedge.max_premium_per_order is not None
    if cost > hedge.max_premium_per_order:
        found.lines.append(f"    above max_premium_per_order {hedge.max_premium_per_order}: `run` buys part (put_premium_capped)")
    if wallet < cost:
        found.lines.append(
            f"    UNDER-FUNDED: the options wallet holds {wallet} USDT; transfer about {cost - wallet:.2f} USDT into it, "
            "or Binance refuses the purchase (-2018)"
        )


async def _quarterly_lines(hedge: HedgeConfig, venue: ExchangePort, clock: Clock, market: Market) -> list[str]:
    """Say the contract a delivering hedge holds, its delivery, when its roll starts, and its basis read from the exchange.

    The basis is the contract's mark against the perpetual's (both the exchange's), per year to delivery.
    """
    if market.expiry is None and hedge.instrument.chooses:
        return [f"contract held: the perpetual {market.symbol}, chosen by its carry (chosen again at each quarterly's roll window)"]
    if market.expiry is None:
        return [f"contract held: the perpetual {market.symbol} (no quarterly far enough from delivery can be traded)"]
    try:
        await venue.load_market(hedge.symbol)
        future = (await venue.fetch_mark_price(market.symbol)).price
        perpetual = (await venue.fetch_mark_price(hedge.symbol)).price
    except ExchangeError as exc:
        return [f"contract held: {market.symbol}; cannot read its mark or the perpetual's ({redact(str(exc))})"]
    basis = annual_basis(future, perpetual, clock.now(), market.expiry)
    said = "past delivery" if basis is None else f"{percent(basis, 2)} a year"
    return [
        f"contract held: {market.symbol}, delivered {iso_utc(market.expiry)}; its roll to the next contract starts "
        f"{iso_utc(market.expiry - hedge.quarterly_roll_before)} (roll_before {duration(hedge.quarterly_roll_before)})",
        f"carrying cost: annualised basis {said} ({market.symbol}'s mark {future} against the perpetual "
        f"{hedge.symbol}'s {perpetual}, read from the exchange); no funding on a quarterly",
    ]


def _choice_line(record: EventRecord) -> str:
    """Say the contract a cheapest hedge opens on, why, and each carry compared (read from the exchange, a year)."""
    detail = record.detail
    carries = ", ".join(
        f"{symbol} {'unknown' if rate is None else f'{Decimal(rate) * 100:.2f} %'}" for symbol, rate in detail["carries"].items()
    )
    return f"cheapest: opens on {detail['contract']}: {detail['reason']} (carries a year: {carries})"


CARRY_HISTORY_SECONDS = 30 * 86400.0  # the recent history funding rates are averaged over


async def _carry_line(
    hedge: HedgeConfig, venue: ExchangePort, clock: Clock, snapshot: Snapshot, calendar: Sequence[CalendarEvent],
) -> str:
    """Say the leg's carrying cost from the market's settled funding of the last 30 days (read, never traded)."""
    now = clock.now()
    try:
        settlements = await venue.fetch_funding_rates(hedge.symbol, now - CARRY_HISTORY_SECONDS)
    except ExchangeError as exc:
        return f"carrying cost: cannot read {hedge.symbol}'s funding history ({redact(str(exc))})"
    market = snapshot.market
    target = fundability(market, snapshot.mark_price, {market.base: snapshot.spot_asset, market.margin_asset: snapshot.spot_quote},
                         {market.margin_asset: snapshot.futures_wallet}, hedge.policy(), hedge.leverage).target
    horizon = affordability.horizon_years(hedge.schedule_of(calendar).ends_at, now)
    return affordability.carry_line(
        market, snapshot.mark_price, target, hedge, [rate for _, rate in settlements],
        settlement_interval_hours(settlements), f"{hedge.symbol}'s last {len(settlements)} settlements on the exchange", horizon,
    )

"""One hedge, kept: observe -> plan -> execute one action -> observe again, forever.

Each action is journaled with its client id before it is sent. An ambiguous
outcome (timeout, duplicate id) is settled by looking the id up, never by a
blind resend with a new id; an outcome that cannot be settled blocks trading
on the hedge until it is. Because the plan is a pure function of what the
venue shows, a partial fill or a lost answer is simply seen and re-planned.

This module only composes the keeper: its state, the signals that wake it and what it reads from the venue.
Each concern has its own module in hedgebot/engine/:
- tick_loop.py: the tick loop;
- status.py: observation and status;
- trading_states.py: trading states and breakers;
- startup.py: start-up checks and the exchange's clock;
- control_channel.py: the control channel; unwind.py: the unwind's execution;
- contracts.py: the contract held, its delivery and roll, the choice by carry;
- execution.py: one planned action carried out; margin_keeping.py: the margin sale held and the refill;
- intents.py: the intent lifecycle (send, look up, settle, report), composed as `keeper.intents`.
May not touch: what those modules own; it holds the state they share.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hedgebot.clock import Clock, monotonic_of
from hedgebot.config import HedgeConfig
from hedgebot.domain import policy
from hedgebot.domain import choice as choosing
from hedgebot.domain import roll as rolling
from hedgebot.domain.model import ZERO, Market, HeldElsewhere, Severity, Snapshot
from hedgebot.domain.model import Leg
from hedgebot.domain.schedule import CalendarEvent
from hedgebot.domain.trading import TradingState
from hedgebot.engine.beta_sizing import BetaSizing
from hedgebot.engine.breakers import CircuitBreakers
from hedgebot.engine.contracts import Contracts
from hedgebot.engine.control_channel import ControlChannel
from hedgebot.engine.custody import CustodyCount
from hedgebot.engine.execution import ActionExecution
from hedgebot.engine.holdings import FileHoldings, HoldingsSource, HoldingsUnreadable, held_elsewhere
from hedgebot.engine.holds import BETA_HOLD, REOPEN_HOLD, ROLL_HOLD, SALE_HOLD
from hedgebot.engine.intents import IntentLifecycle, error_fields
from hedgebot.engine.margin_keeping import MarginKeeping, HeldSale
from hedgebot.engine.refill import Refill
from hedgebot.engine.retry import Backoff, retry_transient
from hedgebot.engine.scheduling import ScheduleFollower
from hedgebot.engine.startup import StartupChecks, StartupDeferred, StartupRefused, StartupStopped
from hedgebot.engine.status import HedgeReporting, HedgeStatus
from hedgebot.engine.surprises import LIQUIDATION, ShortWatch
from hedgebot.engine.tick_loop import TickLoop
from hedgebot.engine.trading_states import Liquidation, TradingStates
from hedgebot.engine.unwind import UnwindExecution
from hedgebot.exchange.port import ExchangeError, IpBanned, ExchangePort, OrderResult, OrderStatus
from hedgebot.ops.alerts import DEFAULT_REPEAT_SECONDS, AlertBook
from hedgebot.ops.events import EventLog
from hedgebot.ops.watch import HedgeWatch
from hedgebot.replay_clock import pacing_clock
from hedgebot.store.control import StateRecord, UnwindRecord
from hedgebot.store.factory import open_control
from hedgebot.store.journal import JournalStore, JournalUnavailable
from hedgebot.store.space import DiskGuard

# The keeper's public names, imported here by the daemon, the commands and the tests.
__all__ = ["HOLDINGS_READ_SECONDS", "HedgeStatus", "Keeper", "Liquidation", "StartupDeferred", "StartupRefused", "StartupStopped"]


def _utc(epoch: float) -> str:
    """Return an epoch time as ISO UTC, or say it is out of range (an exchange's answer is bad input)."""
    try:
        return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return f"an unreadable time ({epoch!r})"


def _joined(market: Market, held: Leg, other: Leg) -> Leg:
    """Return two legs of one side on two contracts of a roll as one: sizes and margin summed, entry averaged."""
    if not other.is_open:
        return held
    if not held.is_open:
        return other
    size = held.size + other.size
    if market.inverse:  # an inverse leg's entry is the harmonic mean, as the exchange keeps it
        entry = size / (held.size / held.entry_price + other.size / other.entry_price)
    else:
        entry = (held.size * held.entry_price + other.size * other.entry_price) / size
    return Leg(held.side, size, entry, held.margin + other.margin)


# How long one look waits for a holdings source (another exchange's balance, a file) before using its last count.
HOLDINGS_READ_SECONDS = 3.0


class Keeper(
    TickLoop, HedgeReporting, TradingStates, StartupChecks, ControlChannel, UnwindExecution, Contracts, ActionExecution,
    MarginKeeping,
):
    """Keeps one hedge at its target on one venue."""

    def __init__(
        self,
        account: str,
        hedge: HedgeConfig,
        port: ExchangePort,
        clock: Clock,
        journal: JournalStore,
        events: EventLog,
        *,
        seed: int = 0,
        max_steps_per_tick: int = 24,
        send_attempts: int = 5,
        alert_repeat_seconds: float = DEFAULT_REPEAT_SECONDS,
        unknown_alert_seconds: float = 300.0,
        calendar: Sequence[CalendarEvent] = (),
        holdings: Sequence[HoldingsSource] = (),
        refill: Refill | None = None,
    ) -> None:
        self.account = account
        self.hedge = hedge
        self.scheduled = ScheduleFollower(hedge, calendar)
        self.policy = self.scheduled.policy_at(clock.now())
        self.beta_sizing = BetaSizing(hedge) if hedge.beta else None  # sizes a hedge on another instrument by beta
        self.port = port
        self.clock = clock
        self.journal = journal
        self.events = events
        self.alerts = AlertBook(events, clock, account, hedge.name, alert_repeat_seconds, pace=pacing_clock(clock))
        self.alerts.describe = self._figures_now
        self.max_steps = max_steps_per_tick
        # Reads the free space on the journal's filesystem before each tick (the daemon sets it; None: not watched).
        self.disk: DiskGuard | None = None
        self._space_critical = False
        self.wake = asyncio.Event()
        self.market: Market | None = None
        self.status = HedgeStatus(account, hedge.name, hedge.symbol, "starting")
        self.last_plan: policy.Plan | None = None
        self._backoff = Backoff(random.Random(seed))
        self._stopping = False
        self._accepted_price: Decimal | None = None
        # Where coins held elsewhere are counted: the hedge's custody file, other accounts' spot (given by the daemon).
        file = hedge.exposure.file
        self.holdings: list[HoldingsSource] = [
            *([FileHoldings(file, hedge.exposure.file_max_age_seconds)] if file is not None else []), *holdings,
        ]
        self.refill = refill  # where the buffer's refill is withdrawn from (None: deposits come by hand)
        self._counts: dict[str, CustodyCount] = {}  # each source's last good count
        self._count_errors: dict[str, str] = {}  # each source's last read error, while it lasts
        self._suspect_price: Decimal | None = None
        self._suspect_time = 0.0
        self._rebalancing = False
        self._plan_judged = False
        self._liquidation: Liquidation | None = None
        self.last_snapshot: Snapshot | None = None
        # When the last observation began, on the monotonic clock: its age survives a step of the wall clock.
        self._monotonic = monotonic_of(clock)
        self.last_read_monotonic: float | None = None
        self.exchange_errors: Counter[str] = Counter()
        self.last_venue_error_at: float | None = None
        self.watch = HedgeWatch(self.alerts, self._emit, clock.now)
        self.control = open_control(journal)
        self.breakers = CircuitBreakers(hedge.breakers)
        # The intent lifecycle: every action of this hedge is sent, looked up and settled through it.
        self.intents = IntentLifecycle(
            self, journal, port, clock, events, self.alerts, self.breakers, self._backoff,
            send_attempts=send_attempts, unknown_alert_seconds=unknown_alert_seconds,
        )
        self.trading: StateRecord = self.control.state(account, hedge.name) or StateRecord(
            TradingState.ACTIVE, "", "default", clock.now()
        )
        self.unwind: UnwindRecord | None = self.control.running_unwind(account, hedge.name)
        # A quarterly hedge's roll under way, journaled when it began (so a restart resumes it, never doubles a leg).
        self._roll: dict[str, Any] | None = self.control.holds(account, hedge.name).get(ROLL_HOLD)
        self._roll_market: Market | None = None  # the roll's destination, once its margin mode and leverage are set
        self._fallback: str | None = None  # why a quarterly hedge holds the perpetual instead (alerted every tick)
        # instrument = "cheapest": the quarterly last compared with the perpetual (its window is judged), and that choice.
        self._judged: rolling.Contract | None = None
        self._choice: tuple[choosing.Choice, tuple[choosing.Carry, ...]] | None = None
        self._intent_tag: dict[str, Any] = {}
        self.taken_by = f"daemon pid {os.getpid()}"
        self.short_watch = ShortWatch(self.policy.side)
        self._liquidation_unseen = False
        self._deleveraging_unseen = False  # the venue reported an auto-deleveraging the surprise watch has not judged yet
        self._seen_short: Decimal | None = None  # the short at the last observation with no action since
        # Guards that hold trading live in the journal, so that a restart keeps them (see the properties below).
        held = self.control.holds(account, hedge.name)
        if self.beta_sizing is not None:
            self.beta_sizing.restore(held.get(BETA_HOLD))
        self._reopen_guard = REOPEN_HOLD in held
        sale = held.get(SALE_HOLD)
        self._sale_hold = (
            HeldSale(
                Decimal(sale["sell"]), Decimal(sale["margin"]), sale["reason"], Decimal(sale.get("proceeds", "0")),
                tuple(sale.get("counted", ())),
            )
            if sale else None
        )
        self._restore_breakers()

    @property
    def lookup_failed(self) -> bool:
        """Whether the venue could not be asked at all to settle an open intent at the last try."""
        return self.intents.lookup_failed

    @property
    def _streamed(self) -> dict[str, OrderResult]:
        """Ended orders of open intents, as the user-data stream told (the intent lifecycle settles them)."""
        return self.intents.streamed

    @property
    def _busy_until(self) -> float:
        """Until when the exchange-busy breaker holds: only what lowers risk goes out meanwhile."""
        return self.intents.busy_until

    @property
    def _reopening(self) -> bool:
        """Whether the short vanished without an action of ours (liquidated) and must be re-opened with care."""
        return self._reopen_guard

    @_reopening.setter
    def _reopening(self, value: bool) -> None:
        if value != self._reopen_guard:
            self.control.set_hold(self.account, self.hedge.name, REOPEN_HOLD, {} if value else None)
        self._reopen_guard = value

    @property
    def _held_sale(self) -> HeldSale | None:
        """A margin-raising sale that failed after its reduction: no reduction or growth until it goes through."""
        return self._sale_hold

    @_held_sale.setter
    def _held_sale(self, sale: HeldSale | None) -> None:
        if sale != self._sale_hold:
            detail = None if sale is None else {
                "sell": str(sale.sell), "margin": str(sale.margin), "reason": sale.reason, "proceeds": str(sale.proceeds),
                "counted": list(sale.counted),
            }
            self.control.set_hold(self.account, self.hedge.name, SALE_HOLD, detail)
        self._sale_hold = sale

    def _restore_breakers(self) -> None:
        """Count again, from the journal, what the breakers counted before a restart (since the last change of state)."""
        recorded = self.control.state(self.account, self.hedge.name)
        since = recorded.at if recorded is not None else float("-inf")
        for intent in self.journal.intents(self.account, self.hedge.name):
            if intent.updated_at > since:
                # What would trip now already did before the restart (and its state was recorded): counts only.
                self._feed_breakers(intent.kind, intent.status, intent.outcome or {}, at=intent.updated_at, trip=False)
        for event in self.journal.events(self.account, self.hedge.name, kind="short_changed_outside"):
            if event.at > since and event.detail.get("cause") == LIQUIDATION:
                self.breakers.liquidated(event.at)

    def reconfigure(self, hedge: HedgeConfig, calendar: Sequence[CalendarEvent] | None = None) -> None:
        """Take new ratios, bands, guard settings and schedule (and calendar); they apply from the next tick."""
        self.hedge = hedge
        self.scheduled.reconfigure(hedge, calendar)
        self.policy = self.scheduled.policy_at(self.clock.now())
        if self.beta_sizing is not None and hedge.beta:
            self.beta_sizing.reconfigure(hedge)
        else:
            self.beta_sizing = BetaSizing(hedge) if hedge.beta else None
        self.breakers.config = hedge.breakers
        self.wake.set()

    def _venue_error(self, exc: ExchangeError) -> dict[str, str | None]:
        """Count an exchange error by its code; return it as event fields (a ban also raises its alert)."""
        fields_out = error_fields(exc)
        self.exchange_errors[fields_out["error_code"] or fields_out["error_type"] or "unknown"] += 1
        self.last_venue_error_at = self.clock.now()
        if isinstance(exc, IpBanned):
            until = _utc(exc.until)
            self.alerts.raise_alert(
                "exchange_ban", Severity.CRITICAL,
                f"{self.port.name} banned this IP (HTTP 418) until {until}: nothing can be sent to it or read from it "
                "until then, for every account on this IP; the hedge is unattended",
                until=until, until_epoch=round(exc.until, 3) if math.isfinite(exc.until) else None,
            )
        return fields_out

    def stop(self) -> None:
        """Ask the keeper to finish the action in flight and stop."""
        self._stopping = True
        self.wake.set()

    def notify_price(self, price: Decimal) -> None:
        """Wake the keeper when a new mark `price` may change its decision.

        That is when the price leaves the range over which the last plan holds
        (margin-guard trigger or release, jump guard), or (when configured)
        has moved beyond `wake_on_move` since the last accepted price. A price inside both
        costs nothing: the keeper sleeps on.
        """
        plan = self.last_plan
        reference = self._accepted_price
        if (
            plan is None
            or reference is None
            or not plan.holds_at(price)
            or (self.hedge.wake_on_move is not None and abs(price - reference) >= self.hedge.wake_on_move * reference)
            # A beta hedge's target is the holdings' worth in the instrument's coins: the instrument's price moves it.
            or (self.beta_sizing is not None and not self.beta_sizing.holds_at(self.hedge.symbol, price))
        ):
            self.wake.set()

    def notify_holding_price(self, symbol: str, price: Decimal) -> None:
        """Wake a beta hedge's keeper when the price of a holding's market (`symbol`) takes its short out of band."""
        if self.beta_sizing is not None and symbol in self.beta_sizing.symbols and not self.beta_sizing.holds_at(symbol, price):
            self.wake.set()

    def notify_order(self, result: OrderResult) -> None:
        """Take an order the user-data stream reports: one that ended settles its open intent at the next look."""
        if result.status is OrderStatus.PENDING:
            return
        try:
            open_ids = {i.client_id for i in self.journal.open_intents(self.account, self.hedge.name)}
        except (JournalUnavailable, sqlite3.Error):
            return  # the tick says so; the order is looked up again once the journal answers
        if result.client_id in open_ids:
            self._streamed[result.client_id] = result
            self.wake.set()

    def notify_balance(self) -> None:
        """Wake the keeper now: a balance changed."""
        self.wake.set()

    def _emit(self, kind: str, severity: Severity = Severity.INFO, **detail: Any) -> None:
        self.events.emit(self.account, self.hedge.name, kind, severity, **detail)

    async def _read(self, call: Callable[[], Awaitable[Any]]) -> Any:
        return await retry_transient(call, self.clock, self._backoff)

    async def observe(self) -> Snapshot:
        """Read everything the policy needs from the venue."""
        assert self.market is not None, "prepare() first"
        market = self.market
        # Coins held elsewhere first, each read bounded: the account's own figures are then read fresh behind them.
        elsewhere = await self._held_elsewhere()
        started = self.clock.now()
        read_at = self._monotonic()
        spot = await self._read(self.port.fetch_spot_balances)
        if self.beta_sizing is not None:
            self.beta_sizing.spot = spot  # a basket's other holdings are this account's spot coins
        futures = await self._read(lambda: self.port.fetch_futures_balance(market.margin_asset))
        legs = await self._read(lambda: self.port.fetch_legs(market.symbol))
        roll = self._roll
        if roll is not None and roll["from"] == market.symbol:
            # During a roll the hedge is the sum of both contracts' legs: exposure, target, band and guard see it whole.
            other = await self._read(lambda: self.port.fetch_legs(roll["to"]))
            legs = type(legs)(_joined(market, legs.long, other.long), _joined(market, legs.short, other.short))
        quote = await self._read(lambda: self.port.fetch_mark_price(market.symbol))
        self.last_read_monotonic = read_at
        return Snapshot(
            taken_at=self.clock.now(),
            market=market,
            mark_price=quote.price,
            # The exchange stamps its prices on its own clock: on ours, a price is as old as it is on the exchange's.
            price_time=quote.timestamp - (self._clock_offset() or 0.0),
            # A beta hedge's holding is its asset, not the instrument's base (the beta sizing converts it).
            spot_asset=spot.get(self.hedge.asset if self.beta_sizing is not None else market.base, ZERO),
            spot_quote=spot.get(market.margin_asset, ZERO),
            futures_free=futures.free,
            futures_wallet=futures.wallet,
            short=legs.short,
            long=legs.long,
            margin_mode=self.hedge.margin_mode,
            leverage=self.hedge.leverage,
            previous_price=self._accepted_price,
            cross_wallet=futures.cross_wallet,
            read_at=started,
            elsewhere=elsewhere,
        )

    async def _held_elsewhere(self) -> HeldElsewhere | None:
        """Count the coins held elsewhere: each source's count now, or its last good one when it cannot be read."""
        now = self.clock.now()
        for source in self.holdings:
            try:
                # A holdings account that hangs must not hold up the hedge's reductions and top-ups: its last count stands.
                count = await asyncio.wait_for(source.count(self.hedge.asset, now), HOLDINGS_READ_SECONDS)
                self._count_errors.pop(source.name, None)
                self._counts[source.name] = replace(count, price=await self._holding_price(source))
            except HoldingsUnreadable as exc:
                self._count_errors[source.name] = str(exc)
            except TimeoutError:
                self._count_errors[source.name] = f"{source.name} did not answer within {HOLDINGS_READ_SECONDS:.0f}s"
            except Exception as exc:  # noqa: BLE001 - a source's fault is a read that failed, never a stopped hedge
                self._count_errors[source.name] = f"{source.name}: {type(exc).__name__}: {exc}"
        return held_elsewhere(self.holdings, self._counts, self._count_errors, now)

    async def _holding_price(self, source: HoldingsSource) -> Decimal | None:
        """Read the price a holdings source values the coins at, bounded on its own: a price never holds up a count."""
        read = getattr(source, "price", None)
        if read is None:
            return None
        try:
            return await asyncio.wait_for(read(), HOLDINGS_READ_SECONDS)
        except TimeoutError:
            return None

    async def settle_open_intents(self) -> bool:
        """Look up every journaled action of this hedge whose outcome is unknown; True when none is left (see engine/intents.py)."""
        return await self.intents.settle_open_intents()

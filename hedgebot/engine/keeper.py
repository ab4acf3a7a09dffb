"""One hedge, kept: observe -> plan -> execute one action -> observe again, forever.

Each action is journaled with its client id before it is sent. An ambiguous
outcome (timeout, duplicate id) is settled by looking the id up, never by a
blind resend with a new id; an outcome that cannot be settled blocks trading
on the hedge until it is. Because the plan is a pure function of what the
venue shows, a partial fill or a lost answer is simply seen and re-planned.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import random
import re
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hedgebot.clock import Clock, monotonic_of
from hedgebot.config import HedgeConfig
from hedgebot.domain import policy
from hedgebot.domain.model import (
    ZERO,
    Action,
    AdjustMargin,
    MarginMode,
    Market,
    OrderSide,
    PlaceOrder,
    PositionSide,
    RaiseFromSpot,
    ReleaseMargin,
    HeldElsewhere,
    Severity,
    Snapshot,
    Transfer,
    Wallet,
    ceil_to_step,
    floor_to_step,
)
from hedgebot.domain import unwind as unwinding
from hedgebot.domain.in_flight import as_if_carried_out
from hedgebot.domain.margin import rule_for
from hedgebot.domain import choice as choosing
from hedgebot.domain import roll as rolling
from hedgebot.domain.basis import FUNDING_HISTORY_SECONDS, annual_basis, funding_annual_rate
from hedgebot.domain.model import Leg
from hedgebot.domain.sale import sale_after_reduction
from hedgebot.domain.schedule import CalendarEvent
from hedgebot.domain.trading import TradingState, is_margin_sale, is_margin_topup, lowers_exposure, permits, strictest
from hedgebot.engine import crashpoints
from hedgebot.engine.beta_sizing import BetaSizing, held_as_is
from hedgebot.engine.breakers import CircuitBreakers, Trip
from hedgebot.engine.custody import CustodyCount
from hedgebot.engine.holdings import FileHoldings, HoldingsSource, HoldingsUnreadable, held_elsewhere
from hedgebot.engine.refill import Refill, RefillDecision
from hedgebot.engine.surprises import FOREIGN, LIQUIDATION, ShortWatch
from hedgebot.engine.scheduling import ScheduleFollower
from hedgebot.engine.retry import Backoff, retry_transient
from hedgebot.exchange.port import (
    BadData,
    ClockSkew,
    DuplicateClientId,
    ExchangeBusy,
    ExchangeError,
    IpBanned,
    ExchangePort,
    Fenced,
    FundsQuery,
    ModeError,
    OrderRequest,
    OrderResult,
    OrderStatus,
    PermanentError,
    RateLimited,
    ServerStruggling,
    TransientError,
)
from hedgebot.exchange.withdrawals import Withdrawal, WithdrawalRequest
from hedgebot.ops.alerts import DEFAULT_REPEAT_SECONDS, AlertBook
from hedgebot.ops.events import EventLog, EventRecord
from hedgebot.ops.figures import Figure, Precision, as_json, duration, figure, iso_utc, plain, render
from hedgebot.ops.watch import HedgeWatch
from hedgebot.replay_clock import pacing_clock
from hedgebot.store.integrity import damage_advice
from hedgebot.store.space import DiskGuard, SpaceLevel
from hedgebot.store.control import Request, StateRecord, UnwindRecord
from hedgebot.store.factory import open_control
from hedgebot.store.journal import Intent, IntentStatus, JournalStore, JournalUnavailable, NewEvent


# Names of the guards that hold trading, as journaled (store.control holds).
REOPEN_HOLD = "reopen_after_liquidation"
JOURNAL_UNWRITABLE = "journal_unwritable"
JOURNAL_DAMAGED = "journal_damaged"
DISK_SPACE_LOW = "disk_space_low"
DISK_SPACE_CRITICAL = "disk_space_critical"
SALE_HOLD = "failed_margin_sale"
BETA_HOLD = "beta_in_force"  # a beta hedge's betas held (by asset): a restart judges the band from them
ROLL_HOLD = "roll"  # a quarterly hedge's roll under way: from, to, and the short (base) when it began
ROLL_FALLBACK = "roll_fallback"
SALE_PROCEEDS = "margin top-up: sale proceeds"


def says_busy(exc: TransientError) -> bool:
    """Tell whether a transient answer says the exchange is struggling (throttles, rate limits, -1001): it slows, never halts."""
    return isinstance(exc, (ExchangeBusy, RateLimited, ServerStruggling))


def not_carried_out(exc: TransientError) -> bool:
    """Tell whether a transient answer says the request was refused before execution, so the same id may go again."""
    return isinstance(exc, (RateLimited, ClockSkew, ExchangeBusy, Fenced))


def _utc(epoch: float) -> str:
    """Return an epoch time as ISO UTC, or say it is out of range (an exchange's answer is bad input)."""
    try:
        return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return f"an unreadable time ({epoch!r})"


def _moved_size(snapshot: Snapshot, spot: bool, position_side: PositionSide | None) -> Decimal:
    """Return what an order moves, as `snapshot` shows it: the spot coin, or the leg on its position side."""
    if spot:
        return snapshot.spot_asset
    return (snapshot.long if position_side is PositionSide.LONG else snapshot.short).size


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


class StartupRefused(Exception):
    """The account or contract is not in a state hedgebot may trade; the message says why."""


class StartupDeferred(StartupRefused):
    """Something the start needs does not answer yet (a database coming up): a later start may succeed."""


class StartupStopped(StartupRefused):
    """A stop was asked for while the start was still waiting: nothing was started, nothing is wrong."""


def describe(result: Any) -> dict[str, Any]:
    """Return a venue result as JSON-ready fields."""
    return {f.name: plain(getattr(result, f.name)) for f in fields(result)}


# An exchange's own error code inside a message: `"code":-2019`, `retCode: 110007`, or Binance's bare `-1001`.
_ERROR_CODE = re.compile(r"code[\"']?\s*[:=]\s*[\"']?(-?\d+)|(?<![\w.])(-\d{4})\b", re.IGNORECASE)


def error_fields(exc: ExchangeError) -> dict[str, str | None]:
    """Return an exchange error as event fields: its text, the exchange's code when known, and its class."""
    code = getattr(exc, "code", None)
    if code in (None, ""):
        match = _ERROR_CODE.search(str(exc))
        code = (match.group(1) or match.group(2)) if match else None
    return {"error": str(exc), "error_code": str(code) if code is not None else None, "error_type": type(exc).__name__}


@dataclass(frozen=True)
class Liquidation:
    """A liquidation of the hedge's short, as the venue reported it."""

    at: float
    price: Decimal
    amount: Decimal
    margin_lost: Decimal
    cause: str = ""  # how it is known: the exchange's own order, or the mark seen past the liquidation price


def _shown_rate(rate: Decimal | None) -> str | None:
    """Return a yearly rate as shown in events and status: to a ten-thousandth of a percent (None: unknown)."""
    return None if rate is None else str(rate.quantize(Decimal("0.000001")))


@dataclass(frozen=True)
class HedgeStatus:
    """What `hedgebot status` shows for one hedge; each figure says its kind, so it is shown the same way everywhere."""

    account: str
    name: str
    symbol: str
    state: str
    exposure: Decimal | None = figure(Figure.AMOUNT)
    short: Decimal | None = figure(Figure.AMOUNT)
    target: Decimal | None = figure(Figure.AMOUNT)
    target_ratio: Decimal | None = figure(Figure.RATIO)
    drift: Decimal | None = figure(Figure.AMOUNT)
    mark: Decimal | None = figure(Figure.PRICE)
    liquidation_price: Decimal | None = figure(Figure.PRICE)
    distance: Decimal | None = figure(Figure.RATIO)
    runway_price: Decimal | None = figure(Figure.PRICE)  # the rally the margin sources pay for (Infinity: no limit found)
    runway: Decimal | None = figure(Figure.RATIO)  # the runway as a fraction above the mark
    updated_at: float | None = figure(Figure.TIME)
    note: str = ""
    liquidated_at: float | None = figure(Figure.TIME)
    liquidated_price: Decimal | None = figure(Figure.PRICE)
    liquidated_amount: Decimal | None = figure(Figure.AMOUNT)
    margin_lost: Decimal | None = figure(Figure.MONEY)
    market: Market | None = figure(Figure.HIDDEN)
    trading_state: str = TradingState.ACTIVE.value
    trading_reason: str = ""
    trading_actor: str = ""
    window: str = ""  # the schedule's window in force ("" : the hedge's own ratio holds)
    next_window: str = ""
    next_window_at: float | None = figure(Figure.TIME)
    ends_at: float | None = figure(Figure.TIME)  # when the hedge unwinds by itself (`until`)
    # Where the exposure came from: the account's spot coins, the fixed offset, the coins a custody file counts.
    exposure_spot: Decimal | None = figure(Figure.AMOUNT)
    exposure_offset: Decimal | None = figure(Figure.AMOUNT)
    exposure_elsewhere: Decimal | None = figure(Figure.AMOUNT)
    exposure_elsewhere_at: float | None = figure(Figure.TIME)  # when the custody system counted them
    # The asset's price where the coins elsewhere are held, and how far it sits from the hedging mark (+: above).
    holding_price: Decimal | None = figure(Figure.PRICE)
    holding_spread: Decimal | None = figure(Figure.RATIO)
    # Each source of the coins held elsewhere: its name, its count (on the amount step) and when it was counted.
    exposure_sources: tuple[dict[str, Any], ...] = ()
    # A quarterly hedge: the contract it holds, its delivery, when the roll to the next one starts, the roll under way.
    contract: str = ""
    contract_expiry: float | None = figure(Figure.TIME)
    next_roll_at: float | None = figure(Figure.TIME)
    rolling: str = ""
    # instrument = "cheapest": the carries last compared ({symbol, annual_rate, source}) and why the contract was chosen.
    carries: tuple[dict[str, Any], ...] = ()
    choice: str = ""
    # ratio = "beta": the beta in force, the estimate and its OLS cross-check, the rolling correlation and the
    # out-of-sample variance reduction (engine/beta_sizing.py).
    beta: Decimal | None = figure(Figure.RATIO)
    beta_estimate: Decimal | None = figure(Figure.RATIO)
    beta_ols: Decimal | None = figure(Figure.RATIO)
    correlation: Decimal | None = figure(Figure.RATIO)
    hedge_effectiveness: Decimal | None = figure(Figure.RATIO)
    basket: tuple[dict[str, Any], ...] = ()  # a basket: each holding's {asset, beta, beta_estimate, correlation, ...}

    @property
    def ratio(self) -> Decimal | None:
        """Return the hedge ratio actually held (short / exposure)."""
        if self.exposure is None or self.short is None or self.exposure == 0:
            return None
        return self.short / self.exposure

    def to_json(self) -> dict[str, Any]:
        """Return the status as JSON-ready data: amounts and prices at the market's precision, times in ISO UTC."""
        out = as_json(self, Precision.of(self.market), extra={"ratio": (self.ratio, Figure.RATIO)})
        out["exposure_sources"] = list(self.exposure_sources)  # as JSON reads it back: a list
        out["carries"] = list(self.carries)
        out["basket"] = list(self.basket)
        return out


@dataclass(frozen=True)
class _HeldSale:
    """A margin-raising spot sale still owed after its reduction went through."""

    sell: Decimal
    margin: Decimal
    reason: str
    proceeds: Decimal = ZERO  # sold already (now, or settled late) and not yet moved to the margin: moved, never sold again
    counted: tuple[str, ...] = ()  # client ids of late-settled orders and transfers already counted here (a crash may settle one twice)

    @property
    def message(self) -> str:
        """Say what is held and why, for the alert and the status."""
        if self.sell <= 0:
            return (
                f"the proceeds of a margin sale ({self.proceeds}) are not on the margin yet; no further reduction or "
                "growth until they are moved (retried every tick)"
            )
        return (
            f"the spot sale of {self.sell} that funds the short's margin failed after the short was reduced; "
            "no further reduction or growth until the sale goes through (retried every tick) or a person acts"
        )


# How long one look waits for a holdings source (another exchange's balance, a file) before using its last count.
HOLDINGS_READ_SECONDS = 3.0


class Keeper:
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
        self.send_attempts = send_attempts
        # How long a lookup may miss an order that did execute (the venue's own figure), and when to cry out.
        self.settle_delay = float(getattr(port, "settle_seconds", 0.0))
        self.unknown_alert_seconds = unknown_alert_seconds
        self.lookup_failed = False
        # Reads the free space on the journal's filesystem before each tick (the daemon sets it; None: not watched).
        self.disk: DiskGuard | None = None
        self._space_critical = False
        self._busy_until = float("-inf")  # the exchange-busy breaker: until then only what lowers risk goes out
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
        # When this process began each intent, on the monotonic clock: the settle delay and the unknown-outcome
        # alert count from it, so a forward step of the wall clock does not make a just-sent action look old.
        self._sent_monotonic: dict[str, float] = {}
        self.exchange_errors: Counter[str] = Counter()
        self.last_venue_error_at: float | None = None
        self.watch = HedgeWatch(self.alerts, self._emit, clock.now)
        self.control = open_control(journal)
        self.breakers = CircuitBreakers(hedge.breakers)
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
        self._streamed: dict[str, OrderResult] = {}  # ended orders of open intents, as the user-data stream told
        # Guards that hold trading live in the journal, so that a restart keeps them (see the properties below).
        held = self.control.holds(account, hedge.name)
        if self.beta_sizing is not None:
            self.beta_sizing.restore(held.get(BETA_HOLD))
        self._reopen_guard = REOPEN_HOLD in held
        sale = held.get(SALE_HOLD)
        self._sale_hold = (
            _HeldSale(
                Decimal(sale["sell"]), Decimal(sale["margin"]), sale["reason"], Decimal(sale.get("proceeds", "0")),
                tuple(sale.get("counted", ())),
            )
            if sale else None
        )
        self._restore_breakers()

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
    def _held_sale(self) -> _HeldSale | None:
        """A margin-raising sale that failed after its reduction: no reduction or growth until it goes through."""
        return self._sale_hold

    @_held_sale.setter
    def _held_sale(self, sale: _HeldSale | None) -> None:
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

    # ---- outside signals ----------------------------------------------------------

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

    def notify_liquidation(self, liquidation: Liquidation) -> None:
        """Record that the venue liquidated the short: a critical alert until the hedge is whole again."""
        self._liquidation_unseen = True
        earlier = self._liquidation
        if earlier is not None:
            # Polling saw the short vanish before the stream's report arrived: one liquidation, told by both.
            # The exchange's fill price and amount are the better figures; the first sighting keeps its time.
            liquidation = replace(
                liquidation, at=earlier.at, margin_lost=liquidation.margin_lost or earlier.margin_lost,
                cause="; ".join(c for c in (earlier.cause, liquidation.cause) if c),
            )
        self._report_liquidation(liquidation)

    def notify_deleveraging(self) -> None:
        """Record that the venue auto-deleveraged the short: the next change of the short is named as such."""
        self._deleveraging_unseen = True
        self.wake.set()

    def _report_liquidation(self, liquidation: Liquidation) -> None:
        """Raise the critical `liquidated` alert with the liquidation's figures and cause; re-open under the re-open rules."""
        if not liquidation.margin_lost and self.last_snapshot is not None:
            # The venue did not say (Binance's forced order carries no margin figure): an isolated short loses its own.
            liquidation = replace(liquidation, margin_lost=self.last_snapshot.leg_of(self.policy.side).margin)
        self._liquidation = liquidation
        self._reopening = True
        quote = self.market.margin_asset if self.market else ""
        shown = Precision.of(self.market)
        cause = f"; cause: {liquidation.cause}" if liquidation.cause else ""
        amount = render(liquidation.amount, Figure.AMOUNT, shown)
        if self.market is not None and self.market.inverse and liquidation.price > 0:  # face value: say the coins too
            coins = rule_for(self.market).coins(liquidation.amount, liquidation.price)
            amount = f"{amount} {self.market.quote} of face ({coins:.8f} {self.market.base})"
        self.alerts.raise_alert(
            "liquidated", Severity.CRITICAL,
            f"the {self.policy.side.value} of {amount} was liquidated at "
            f"{render(liquidation.price, Figure.PRICE, shown)}; "
            f"{render(liquidation.margin_lost, Figure.MONEY, shown)} {quote} of margin lost{cause}",
            sticky=True, price=liquidation.price, amount=liquidation.amount, margin_lost=liquidation.margin_lost,
            liquidated_at=liquidation.at, cause=liquidation.cause,
        )
        self.status = replace(self.status, state="liquidated", **self._liquidation_fields())
        self.wake.set()

    def _liquidation_fields(self) -> dict[str, Any]:
        event = self._liquidation
        if event is None:
            return {}
        return {
            "liquidated_at": event.at, "liquidated_price": event.price,
            "liquidated_amount": event.amount, "margin_lost": event.margin_lost,
        }

    def _emit(self, kind: str, severity: Severity = Severity.INFO, **detail: Any) -> None:
        self.events.emit(self.account, self.hedge.name, kind, severity, **detail)

    async def _read(self, call: Callable[[], Awaitable[Any]]) -> Any:
        return await retry_transient(call, self.clock, self._backoff)

    # ---- the exchange's clock -------------------------------------------------------

    def _clock_offset(self) -> float | None:
        """Return how far the exchange's clock runs ahead of ours (0 for venues on our clock; None: not measured)."""
        return getattr(self.port, "clock_offset", 0.0)

    async def _measure_clock(self) -> None:
        """Measure the exchange's clock when the venue can; a failure leaves it unmeasured (risk waits)."""
        measure = getattr(self.port, "measure_clock", None)
        if measure is None:
            return
        try:
            offset = await self._read(measure)
        except ExchangeError as exc:
            self._venue_error(exc)
            return
        self._emit("exchange_clock_measured", offset_seconds=round(float(offset), 3), venue=self.port.name)

    def _exchange_now(self) -> float:
        """Return the time by the exchange's clock: ours plus its measured offset (ours while it is unmeasured)."""
        return self.clock.now() + (self._clock_offset() or 0.0)

    def _schedule_time(self) -> float | None:
        """Return the time a schedule's windows and end are judged on (the exchange's), or None while the clocks disagree.

        A wall clock stepped a day ahead must not end a hedge a day early: the exchange's time is the world's.
        """
        if self._clock_offset() is None or self._clock_problem() is not None:
            return None
        return self._exchange_now()

    def _clock_problem(self) -> str | None:
        """Return why the exchange's clock cannot be trusted, or None."""
        offset = self._clock_offset()
        limit = getattr(self.port, "max_clock_offset", None)
        if offset is None:
            return f"the clock of {self.port.name} could not be measured"
        if limit is not None and abs(offset) > limit:
            side = "ahead of" if offset > 0 else "behind"
            return (
                f"the clock of {self.port.name} is {abs(offset):.1f}s {side} this machine's, beyond "
                f"max_clock_offset_seconds = {limit:g}"
            )
        return None

    # ---- start-up -----------------------------------------------------------------

    async def prepare(self, *, dry_run: bool = False) -> list[str]:
        """Load the contract's rules and put its margin mode and leverage where the config says.

        With `dry_run` nothing on the exchange changes: a margin mode or leverage that
        differs from the config is only noted (`margin_mode_differs`, `leverage_differs`),
        and every problem is returned instead of raising the first.
        """
        problems: list[str] = []

        async def step(check: Callable[[], Awaitable[None]]) -> None:
            try:
                await check()
            except StartupRefused as exc:
                if not dry_run:
                    raise
                problems.append(str(exc))

        symbol = self.hedge.symbol
        await self._measure_clock()
        if self.hedge.instrument.follows_delivery:
            symbol = await self._contract_in_hand()
        self.market = await self._read(lambda: self.port.load_market(symbol))
        self.events.show_figures(self.account, self.hedge.name, Precision.of(self.market))
        market = self.market
        await step(lambda: self._check_order_limits(market))
        sizes = await self._size_problems(market)
        if sizes and not dry_run:
            raise StartupRefused(sizes[0])
        problems += sizes
        await step(lambda: self._check_margin_mode(dry_run))
        leverage = await self._read(lambda: self.port.fetch_leverage(symbol))
        if leverage != self.hedge.leverage:
            if dry_run:
                self._emit("leverage_differs", leverage=self.hedge.leverage, was=leverage,
                           note="`run` sets the configured leverage")
            else:
                await self._read(lambda: self.port.set_leverage(symbol, self.hedge.leverage))
                self._emit("leverage_set", leverage=self.hedge.leverage, was=leverage)
        return problems

    async def _check_margin_mode(self, dry_run: bool) -> None:
        """Put the contract in the configured margin mode (only note a difference in a dry run); refuse a cross short it cannot price."""
        assert self.market is not None
        symbol = self.market.symbol
        mode = await self._read(lambda: self.port.fetch_margin_mode(symbol))
        if mode is not self.hedge.margin_mode:
            if dry_run:
                self._emit("margin_mode_differs", mode=self.hedge.margin_mode.value, was=mode.value,
                           note="`run` sets the configured margin mode while the contract is flat")
            else:
                try:
                    await self._read(lambda: self.port.set_margin_mode(symbol, self.hedge.margin_mode))
                except ModeError as exc:
                    raise StartupRefused(
                        f"{self.account}/{self.hedge.name}: {symbol} is in {mode.value} margin but the config asks for "
                        f"{self.hedge.margin_mode.value}, and it cannot change now: {exc}"
                    ) from exc
                self._emit("margin_mode_set", mode=self.hedge.margin_mode.value)
        if self.hedge.margin_mode is MarginMode.CROSS:
            quote = self.market.margin_asset
            balance = await self._read(lambda: self.port.fetch_futures_balance(quote))
            if balance.cross_wallet is None:
                # Without it the whole wallet, other contracts' isolated margin included, would seem to back the short.
                raise StartupRefused(
                    f"{self.account}/{self.hedge.name}: {self.port.name} does not report the cross wallet apart from "
                    "isolated margin, so the liquidation price of a cross short cannot be known; use "
                    'margin_mode = "isolated" for this hedge'
                )

    async def _size_problems(self, market: Market) -> list[str]:
        """Return why the exchange could not fill min_order, and a leverage above the bracket's maximum for the short."""
        where = f"{self.account}/{self.hedge.name}"
        problems = []
        # An inverse contract's minimum is one contract of face value: the policy rounds coin amounts up to it.
        if not market.inverse and self.hedge.min_order < market.min_amount:
            problems.append(
                f"{where}: min_order {self.hedge.min_order} is below {market.symbol}'s minimum amount "
                f"{market.min_amount}; set min_order to at least {market.min_amount}"
            )
        try:
            snapshot = await self.observe()
        except ExchangeError as exc:
            self._emit("startup_check_skipped", Severity.WARNING, check="leverage bracket", error=str(exc))
            return problems
        mark = snapshot.mark_price
        if mark > 0 and not market.inverse and self.hedge.min_order * mark < market.min_notional:
            self._emit(
                "min_order_below_min_notional", Severity.INFO, min_order=self.hedge.min_order,
                min_notional=market.min_notional, effective_min_order=market.min_tradeable(mark),
                note="orders are rounded up to the exchange's minimum notional at the current price",
            )
        # The coins the policy will hedge (with a coin-margined hedge's COIN-M wallet coins).
        exposure = policy.exposure_of(snapshot, self.policy) if market.inverse else (
            snapshot.spot_asset * int(self.policy.include_spot) + self.policy.offset
        )
        rule = rule_for(market)
        if self.beta_sizing is not None:
            # A beta hedge's coins are not the instrument's: its largest short is beta_max x their worth in it.
            try:
                exposure = await self.beta_sizing.largest_short(self.port, snapshot, self.policy, self._read)
            except ExchangeError as exc:
                self._emit("startup_check_skipped", Severity.WARNING, check="leverage bracket", error=f"a holding's price: {exc}")
                return problems
        size = max(snapshot.leg_of(self.policy.side).size, rule.size_for(self.policy.ratio * exposure, mark))
        notional = rule.notional(size, mark)  # what the brackets are read by: coins for an inverse contract
        bracket = next((b for b in market.brackets if b.holds(notional)), None)
        if bracket is not None and bracket.max_leverage is not None and self.hedge.leverage > bracket.max_leverage:
            problems.append(
                f"{where}: leverage {self.hedge.leverage} is above {bracket.max_leverage}, the maximum the exchange allows "
                f"for a {market.symbol} {self.policy.side.value} of {notional:.0f} {market.margin_asset}; lower leverage"
            )
        return problems

    async def _check_order_limits(self, market: Market) -> None:
        """Refuse a max_order the market can never fill (below its minimum amount, or notional at the mark)."""
        where = f"{self.account}/{self.hedge.name}: max_order {self.hedge.max_order}"
        if market.inverse:
            # Configured in coins, an inverse contract's order is face value: judged at the policy's own price.
            return
        largest = floor_to_step(self.hedge.max_order, market.amount_step)
        if largest < market.min_amount:
            raise StartupRefused(f"{where} is below the minimum order {market.min_amount} of {market.symbol}; no order could be placed")
        try:
            price = (await self._read(lambda: self.port.fetch_mark_price(market.symbol))).price
        except ExchangeError:
            return  # no price yet: the policy raises an alert if orders cannot meet the minimum
        if largest * price < market.min_notional:
            raise StartupRefused(
                f"{where} is worth {largest * price:.2f} {market.quote} at {price}, below the minimum order of "
                f"{market.min_notional} {market.quote} on {market.symbol}"
            )

    # ---- observe ------------------------------------------------------------------

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

    # ---- the loop -----------------------------------------------------------------

    async def run(self) -> None:
        """Tick on the interval and on wake-ups until stopped."""
        while not self._stopping:
            self.wake.clear()
            try:
                await self.tick()
            except ExchangeError as exc:
                self.alerts.raise_alert("tick_failed", Severity.WARNING, f"the tick failed: {exc}", **self._venue_error(exc))
                self.alerts.end_tick(plan_judged=False)
            except Exception as exc:  # noqa: BLE001 - an unattended hedge is worse than a loud one
                # A bug must not silently end the hedge: say so loudly, repeatedly, and keep watching.
                self.alerts.raise_alert("keeper_error", Severity.CRITICAL, f"internal error: {exc!r}", error=repr(exc))
                self.alerts.end_tick(plan_judged=False)
                self._set_status(self.last_plan, None, "alert", f"internal error: {exc!r}")
            if self._stopping:
                break
            await self.clock.wait_for(self.wake, self.scheduled.wait(self._exchange_now(), self.hedge.tick_seconds))
        self.status = replace(self.status, state="stopped", updated_at=self.clock.now())

    async def tick(self) -> policy.Plan | None:
        """Bring the hedge back to target: one verified action at a time; then settle the alerts."""
        self._plan_judged = False
        if self.journal.damage is not None:
            # A damaged journal does not heal: nothing is sent until a person recovers it and restarts.
            message = (
                f"the journal {self.journal.path} is damaged ({self.journal.damage}), so nothing is sent; "
                + damage_advice(self.journal.path)
            )
            self.alerts.raise_alert(JOURNAL_DAMAGED, Severity.CRITICAL, message, path=self.journal.path, error=self.journal.damage)
            self.alerts.end_tick(plan_judged=False)
            self._set_status(self.last_plan, None, JOURNAL_DAMAGED, message)
            return None
        self._judge_space()
        try:
            plan = await self._tick()
        except IpBanned as exc:
            self._venue_error(exc)  # the critical exchange_ban alert, with the ban's end
            self.alerts.end_tick(plan_judged=False)
            self._set_status(self.last_plan, None, "alert", str(exc))
            return None
        except (JournalUnavailable, sqlite3.Error) as exc:
            # Nothing may be sent that the journal cannot record: the hedge waits, loudly, and carries on
            # by itself at the first tick the journal can be written again (settling what was left open).
            message = f"the journal cannot be written, so nothing is sent: {exc}"
            if self.disk is not None:
                self.disk.forget()  # a failed write may be a full disk: the next tick asks the filesystem afresh
            self.alerts.raise_alert(JOURNAL_UNWRITABLE, Severity.CRITICAL, message, error=str(exc))
            self.alerts.end_tick(plan_judged=False)
            self._set_status(self.last_plan, None, JOURNAL_UNWRITABLE, message)
            return None
        if JOURNAL_UNWRITABLE in self.alerts.active:
            self.alerts.resolve(JOURNAL_UNWRITABLE)
            if plan is not None and self.status.state == "alert":
                self._set_status(plan, self.last_snapshot)  # the status was judged while the alert was still up
        self.alerts.end_tick(self._plan_judged)
        return plan

    def _judge_space(self) -> None:
        """Read the journal's free space: warn when low; when critical, only top-ups and reductions go out this tick."""
        self._space_critical = False
        if self.disk is None:
            return
        reading = self.disk.read()
        if reading.level is SpaceLevel.CRITICAL:
            self._space_critical = True
            self.alerts.raise_alert(DISK_SPACE_CRITICAL, Severity.CRITICAL, reading.message, free_bytes=reading.free_bytes, path=self.disk.path)
            self.alerts.resolve(DISK_SPACE_LOW)
        elif reading.level is SpaceLevel.LOW:
            self.alerts.raise_alert(DISK_SPACE_LOW, Severity.WARNING, reading.message, free_bytes=reading.free_bytes, path=self.disk.path)
            self.alerts.resolve(DISK_SPACE_CRITICAL)
        else:
            self.alerts.resolve(DISK_SPACE_CRITICAL, free_bytes=reading.free_bytes)
            self.alerts.resolve(DISK_SPACE_LOW, free_bytes=reading.free_bytes)

    async def _tick(self) -> policy.Plan | None:
        if self._clock_offset() is None:
            await self._measure_clock()
        self._follow_schedule()
        if self.beta_sizing is not None:
            await self.beta_sizing.look(
                self.port, self.clock.now(), self._read, self._clock_offset() or 0.0, self.alerts, self._ask_unwind, self._emit,
                lambda betas: self.control.set_hold(self.account, self.hedge.name, BETA_HOLD, betas),
            )
        await self.take_requests()
        clock_problem = self._clock_problem()
        if clock_problem is not None:
            self.alerts.raise_alert(
                "clock_offset", Severity.CRITICAL,
                f"{clock_problem}: nothing that adds risk goes out until the clocks agree (margin top-ups and "
                "reductions of the short still go); set this machine's clock right (NTP)",
                offset_seconds=self._clock_offset(), limit_seconds=getattr(self.port, "max_clock_offset", None),
            )
        unsettled = not await self.settle_open_intents()
        if self.hedge.instrument.follows_delivery:
            try:
                await self._follow_delivery(unsettled or clock_problem is not None)
            except ExchangeError as exc:
                self.alerts.raise_alert(
                    "venue_unreadable", Severity.WARNING, f"cannot read the delivery contracts: {exc}", **self._venue_error(exc)
                )
        plan: policy.Plan | None = None
        snapshot: Snapshot | None = None
        traded = False
        short_before: Decimal | None = None
        acted = False
        unwinding = self.unwind is not None  # an unwind's slices are not a rebalance
        if self._held_sale is not None and self.trading_state is TradingState.CLOSED:
            self._drop_held_sale("the hedge is closed")  # a hold journaled before an unwind dropped it at its start
        if self._held_sale is not None and not self._stopping and not self._spot_sale_unsettled():
            # While a spot sale is unsettled it may be this one, executed with its answer lost: wait for it.
            # Other open actions (a futures buy-back, say) cannot be the sale and never hold it back.
            acted = True
            self._seen_short = None
            await self._retry_held_sale()
        topup_failed = False  # a refused top-up is retried next tick; until then only reductions follow it
        for step in range(self.max_steps):
            try:
                snapshot = await self.observe()
            except ExchangeError as exc:
                self.alerts.raise_alert(
                    "venue_unreadable", Severity.WARNING, f"cannot read the venue: {exc}", **self._venue_error(exc)
                )
                self._set_status(plan, snapshot, "blocked", f"cannot read the venue: {exc}")
                return plan
            before, self.last_snapshot = self.last_snapshot, snapshot
            self._check_short(snapshot, before)
            self._notice_lost_short(snapshot)
            acted = False
            if short_before is None:
                short_before = snapshot.leg_of(self.policy.side).size
            plan = self._plan(snapshot)
            if plan.blocked is not None:
                if self._confirm_jump(snapshot):
                    continue
                if not plan.actions:
                    self.alerts.raise_alert("trading_blocked", Severity.WARNING, f"trading blocked: {plan.blocked}", reason=plan.blocked)
                    self._set_status(plan, snapshot, "blocked", plan.blocked)
                    return plan
                # A jumped price: only the actions that lower risk were planned; they go ahead.
            else:
                suspect = self._suspect_price
                if suspect is not None and abs(snapshot.mark_price / suspect - 1) <= self.policy.max_jump:
                    # Back inside max_jump of the last price, but also near the jumped one: a partly retraced move, confirmed.
                    self._emit("price_jump_confirmed", Severity.WARNING, previous=self._accepted_price, price=snapshot.mark_price)
                elif suspect is not None:
                    # The jumped reading was not confirmed: the price source cannot be trusted to grow the short on.
                    self._trip(self.breakers.jump_unconfirmed(suspect, snapshot.mark_price))
                self._accepted_price = snapshot.mark_price
                self._suspect_price = None
                self._plan_judged = True
            # Every step's alerts, not only the first: one that appears mid-tick goes out at once.
            for alert in plan.alerts:
                self.alerts.raise_alert(alert.code, alert.severity, alert.message)
            actions = [a for a in self._allowed_actions(plan, snapshot, topups=not topup_failed) if not self._held_by_failed_sale(a)]
            if self.clock.now() >= self._busy_until:
                self.alerts.resolve("exchange_busy")
            if unsettled or clock_problem is not None or self._space_critical:
                # An order whose outcome is unknown may still execute, the exchange's clock cannot be trusted, or the
                # journal's disk is nearly full: only what lowers risk goes out meanwhile (and no margin change to a
                # leg the venue does not show yet). The guard's sale of coins for margin lowers risk too, but not while
                # an order is unknown: that order may be a sale of the same coins.
                actions = [
                    a for a in actions
                    if (is_margin_topup(a) and (snapshot.leg_of(self.policy.side).is_open or not isinstance(a, AdjustMargin)))
                    or (isinstance(a, PlaceOrder) and not a.spot and lowers_exposure(a))
                    or (is_margin_sale(a) and not unsettled)
                ]
            if topup_failed:
                actions = [a for a in actions if isinstance(a, PlaceOrder) and lowers_exposure(a)]
            if self._roll is not None:
                # The roll moves the leg at the short it began with; growth waits for it (it takes a few ticks).
                actions = [a for a in actions if not (isinstance(a, PlaceOrder) and not a.spot and not lowers_exposure(a))]
            if not actions or self._stopping:
                break
            action = actions[0]
            self._rebalancing = self.unwind is None and any(isinstance(a, PlaceOrder) for a in actions)
            acted = True
            self._seen_short = None  # our own action may change the short
            if not await self._execute_step(action, snapshot, actions[1:]):
                if is_margin_topup(action) and not topup_failed:
                    # Reducing the short is the safest action there is: it never waits behind a top-up that fails.
                    topup_failed = True
                    continue
                break
            traded = traded or isinstance(action, (PlaceOrder, RaiseFromSpot))
        if (
            self._roll is not None and not unsettled and clock_problem is None and not self._space_critical
            and not self._stopping and self.unwind is None and self.trading_state is TradingState.ACTIVE
        ):
            try:
                acted = await self._roll_steps(plan) or acted
            except ExchangeError as exc:
                self.alerts.raise_alert("roll_held", Severity.WARNING, f"the roll could not go on: {exc}", **self._venue_error(exc))
        if acted:
            # Status always shows the venue as it is now, not the plan made before the last action.
            try:
                snapshot = await self.observe()
            except ExchangeError as exc:
                self.alerts.raise_alert(
                    "venue_unreadable", Severity.WARNING, f"cannot read the venue: {exc}", **self._venue_error(exc)
                )
            else:
                before, self.last_snapshot = self.last_snapshot, snapshot
                self._check_short(snapshot, before)
                self._notice_lost_short(snapshot)
                plan = self._plan(snapshot)
                if plan.blocked is None:
                    for alert in plan.alerts:
                        self.alerts.raise_alert(alert.code, alert.severity, alert.message)
        if self.refill is not None and not self._stopping:
            # Money leaves another account: only for a hedge meant to be whole now, on a sound plan and clock.
            meant = self.hedge_meant and self.trading_state is TradingState.ACTIVE and self.unwind is None
            sound = plan is not None and plan.blocked is None and clock_problem is None and not self._space_critical
            await self._refill(plan if meant and sound else None)
        if plan is not None and not plan.actions:
            self._rebalancing = False
            if plan.short > 0:
                self._reopening = False
        if traded and plan is not None and snapshot is not None and not unwinding and self.trading_state is not TradingState.CLOSED:
            kind = "hedge_opened" if short_before == 0 and plan.short > 0 else "rebalanced"
            # The margin the leg locks up: its own under isolated margin, the wallet behind it under cross.
            locked, _ = snapshot.backing_of(self.policy.side)
            self._emit(
                kind, exposure=plan.exposure, short=plan.short, target=plan.target, mark=snapshot.mark_price,
                distance=plan.distance, margin_locked=locked, runway=plan.runway,
            )
        if self.journal.open_intents(self.account, self.hedge.name):
            self._set_status(plan, snapshot, "unresolved", "an earlier action's outcome is still unknown")
        else:
            self._set_status(plan, snapshot)
        if plan is not None:
            self.watch.observe(plan, self.hedge.warning_distance, meant=self.hedge_meant)
            cause, at_once = self._underhedge_cause(plan)
            self.watch.under_hedge(
                plan, cause, at_once=at_once, after=self.hedge.underhedge_alert_after,
                in_flight=bool(self.journal.open_intents(self.account, self.hedge.name)), asset=self.hedge.asset,
                precision=Precision.of(self.market),
            )
        return plan

    # What the policy says when the target cannot be reached however long one waits.
    _CANNOT_REACH = {
        "under_hedged_no_margin": "no margin: the futures wallet cannot fund the rest of the short",
        "order_below_minimum": "order size: max_order is below the market's minimum",
        "reopen_unfunded": "no margin: the short is not re-opened until its margin can reach the guard's target",
        "margin_sale_failed": "a failed margin sale holds growth",
        "margin_unfunded": "no margin: the margin sources ran dry",
        "exposure_stale": "a stale count of the coins held elsewhere holds growth",
        "exposure_unknown": "the coins held elsewhere could not be read",
        "buffer_lockstep": "the buffer: the margin cannot keep the whole short at the buffer's distance until a deposit arrives",
    }

    @property
    def hedge_meant(self) -> bool:
        """Return whether the hedge is meant to follow its target now: not closed, unwinding or paused by a person."""
        state = self.trading_state
        if state is TradingState.CLOSED or self.unwind is not None:
            return False
        return state is TradingState.ACTIVE or self.trading.actor.startswith("circuit breaker")

    def at_rest(self) -> bool:
        """Tell whether a tick now would change nothing while the mark stays inside the last plan's range.

        That is: the last plan was judged, in band, with nothing to do and nothing
        to say; no alert is up; no action is open, held or streamed; no signal
        waits; the hedge trades as configured, with no holdings source, disk or
        exchange-busy breaker to read. Such a tick only re-centres the plan's
        range on the new mark (a backtest leaps over a run of them).
        """
        plan = self.last_plan
        return (
            plan is not None and plan.blocked is None and plan.in_band and not plan.actions and not plan.alerts
            and plan.orders_remaining == 0
            and self._plan_judged and not self.alerts.active and not self._stopping
            and self.trading_state is TradingState.ACTIVE and self.unwind is None and self._roll is None
            and not self._rebalancing and not self._reopening and self._held_sale is None
            and self._suspect_price is None and self._liquidation is None
            and not self._liquidation_unseen and not self._deleveraging_unseen and not self._streamed
            and not self.holdings and self.disk is None and self.clock.now() >= self._busy_until
            and not self.wake.is_set()
            and not self.journal.open_intents(self.account, self.hedge.name)
        )

    def _underhedge_cause(self, plan: policy.Plan) -> tuple[str | None, bool]:
        """Say why the hedge is short of its target, and whether waiting can cure it; None when it is not meant to be hedged."""
        if not self.hedge_meant:
            return None, False  # closed, unwinding, or paused by a person: not meant to grow now
        state = self.trading_state
        active = set(self.alerts.active) | {a.code for a in plan.alerts}
        for code, cause in self._CANNOT_REACH.items():
            if code in active:
                return cause, True
        if state is not TradingState.ACTIVE:
            return f"held by a breaker ({self.trading.actor}: {self.trading.reason})", True
        if plan.blocked is not None:
            return f"trading blocked: {plan.blocked}", False
        if any("below the minimum order" in note for note in plan.notes):
            return "the drift is below the market's minimum order", False
        return "the rebalance has not reached the target", False

    def _figures_now(self, code: str) -> str:
        """Say the hedge's figures as they are now, for an alert resolved without words of its own."""
        plan = self.last_plan
        if plan is None:
            return ""
        shown = Precision.of(self.market)
        asset = self.hedge.asset
        beyond = "above" if self.policy.side is PositionSide.SHORT else "below"  # where the leg's liquidation lies
        if code == "runway_short" and plan.runway is not None and plan.runway_price is not None:
            return (
                f"runway back to {render(plan.runway_price, Figure.PRICE, shown)} ({plan.runway:.2%} {beyond} the mark; "
                f"warning below {self.policy.guard.runway_warning:.0%})"
            )
        parts = [
            f"{self.policy.side.value} {render(plan.short, Figure.AMOUNT, shown)} {asset} against a target of "
            f"{render(plan.target, Figure.AMOUNT, shown)} {asset}"
        ]
        if plan.distance is not None:
            parts.append(f"liquidation distance {plan.distance:.2%}")
        if plan.runway_price is not None:
            runway = "unlimited" if not plan.runway_price.is_finite() else render(plan.runway_price, Figure.PRICE, shown)
            fraction = f" ({plan.runway:.2%} {beyond} the mark)" if plan.runway is not None else ""
            parts.append(f"runway {runway}{fraction}")
        return "now " + ", ".join(parts)

    def _plan(self, snapshot: Snapshot) -> policy.Plan:
        unfunded = "margin_unfunded" in self.alerts.active
        warned = "runway_short" in self.alerts.active
        snapshot = as_if_carried_out(snapshot, self._open_actions(snapshot))
        sized = self.beta_sizing.size(snapshot, self.policy, self.clock.now()) if self.beta_sizing is not None else None
        planned = self.policy if sized is None else sized.policy
        snapshot = snapshot if sized is None else sized.snapshot
        plan = policy.plan(snapshot, planned, self.clock.now(), self._rebalancing, self._reopening, unfunded, warned)
        if sized is not None and sized.blocked is not None:
            plan = held_as_is(plan, sized.blocked, unwinding=self.unwind is not None)
        if self.beta_sizing is not None and sized is not None:
            self.beta_sizing.note_plan(plan, planned.band, sized.blocked is None)
        self.last_plan = plan
        return plan

    def _open_actions(self, snapshot: Snapshot) -> list[Action]:
        """Return this hedge's actions of open outcome, as what they still have to do to the account.

        Planning as if they were done keeps the keeper from planning them again (a second buy-back of
        the same excess, a second transfer for the same top-up). Of an order, only the part the venue
        does not show yet counts: its leg is compared with the size journaled when it was sent.
        """
        actions: list[Action] = []
        for intent in self.journal.open_intents(self.account, self.hedge.name):
            d = intent.detail
            amount = Decimal(str(d.get("amount", "0")))
            if intent.kind == "transfer":
                actions.append(Transfer(d["asset"], amount, Wallet(d["from"]), Wallet(d["to"]), d.get("reason", "")))
            elif intent.kind == "margin":
                actions.append(AdjustMargin(PositionSide(d["position_side"]), amount, d.get("reason", "")))
            elif intent.kind == "order":
                side = OrderSide(d["side"])
                position_side = PositionSide(d["position_side"]) if d.get("position_side") else None
                spot = position_side is None and (self.market is None or d.get("symbol") != self.market.symbol)
                if d.get("before") is not None:
                    now = _moved_size(snapshot, spot, position_side)
                    grows = (side is OrderSide.BUY) if (spot or position_side is PositionSide.LONG) else (side is OrderSide.SELL)
                    shown = (now - Decimal(d["before"])) * (1 if grows else -1)
                    amount -= min(max(shown, ZERO), amount)
                if amount > 0:
                    actions.append(PlaceOrder(side, amount, position_side, bool(d.get("reduce")), d.get("reason", ""), spot=spot))
                if "roll" in d and d.get("reason") == rolling.OPEN_NEXT and position_side is not None:
                    # The roll buys the slice back on the expiring contract once this open settles: the overlap is
                    # the roll's. Seen as excess, the plan would reduce the expiring leg as well (a double buy-back,
                    # below target minus band if the open failed).
                    closing = OrderSide.BUY if side is OrderSide.SELL else OrderSide.SELL
                    actions.append(PlaceOrder(closing, Decimal(str(d["amount"])), position_side, True, rolling.CLOSE_EXPIRING))
        return actions

    def _notice_lost_short(self, snapshot: Snapshot) -> None:
        """Note a short that vanished with no action of ours since it was last seen: liquidated (or closed by hand)."""
        seen = self._seen_short
        held = snapshot.leg_of(self.policy.side).size
        if seen is not None and seen > 0 and held == 0:
            self._reopening = True
        self._seen_short = held

    def _held_by_failed_sale(self, action: Action) -> bool:
        """Tell whether `action` waits for a failed margin sale: no more reductions for margin, and no growth."""
        return self._held_sale is not None and (
            isinstance(action, RaiseFromSpot) or (isinstance(action, PlaceOrder) and not action.reduce and not action.spot)
        )

    def _confirm_jump(self, snapshot: Snapshot) -> bool:
        """Accept a jumped price once a newer reading confirms it: near the jumped price, or further on the same way."""
        price = snapshot.mark_price
        accepted = snapshot.previous_price
        suspect = self._suspect_price
        limit = self.policy.max_jump
        if accepted is None or accepted <= 0 or not price.is_finite() or price <= 0:
            return False
        newer = suspect is None or snapshot.price_time > self._suspect_time
        if suspect is not None and newer:
            near = abs(price / suspect - 1) <= limit
            onward = (price - accepted) * (suspect - accepted) > 0 and abs(price / accepted - 1) > limit
            if near or onward:
                self._emit("price_jump_confirmed", Severity.WARNING, previous=self._accepted_price, price=price)
                self._accepted_price = price
                self._suspect_price = None
                return True
        if newer and abs(price / accepted - 1) > limit:
            self._suspect_price = price
            self._suspect_time = snapshot.price_time
        return False

    def _set_status(self, plan: policy.Plan | None, snapshot: Snapshot | None, state: str | None = None, note: str = "") -> None:
        if plan is None:
            self.status = HedgeStatus(
                self.account, self.hedge.name, self.hedge.symbol, state or "starting",
                updated_at=self.clock.now(), note=note, market=self.market, **self._liquidation_fields(),
                **self._trading_fields(), **self._contract_fields(),
            )
            return
        if self._liquidation is not None and plan.blocked is None and plan.in_band and plan.short > 0:
            # The hedge is whole again: say its figures now, and keep what was learnt of the liquidation.
            active = self.alerts.active.get("liquidated")
            told = f"; the liquidation: {active.message}" if active is not None else ""
            self.alerts.resolve("liquidated", f"the hedge is whole again, {self._figures_now('liquidated')}{told}")
            self._liquidation = None
        if self._held_sale is not None and state is None:
            state = "alert"
            note = note or self._held_sale.message
        trading = self.trading_state
        if state is None and trading in (TradingState.HALTED, TradingState.CLOSED):
            state = trading.value  # no order goes out: "rebalancing" or "drifting" would promise one
        if state is None:
            if any(a.severity is Severity.CRITICAL for a in plan.alerts) or self.alerts.worst() is Severity.CRITICAL:
                state = "alert"
            elif plan.in_band:
                state = "hedged"
            elif plan.actions:
                state = "rebalancing"
            else:
                state = "drifting"
        note = note or "; ".join([a.message for a in plan.alerts] + list(plan.notes))
        if self._liquidation is not None:
            state = "liquidated"
            active = self.alerts.active.get("liquidated")
            note = "; ".join(filter(None, [active.message if active else "", note]))
        # Coins held elsewhere not read yet: the exposure, and so the target and the drift, are not known.
        unknown = snapshot is not None and snapshot.elsewhere is not None and not snapshot.elsewhere.known
        self.status = HedgeStatus(
            self.account, self.hedge.name, self.hedge.symbol, state,
            exposure=None if unknown else plan.exposure, short=plan.short,
            # A closed hedge aims at no short until it is resumed.
            target=ZERO if trading is TradingState.CLOSED else None if unknown else plan.target, target_ratio=self.policy.ratio if self.beta_sizing is None else self.beta_sizing.beta_in_force(),
            # Closed, unwinding or paused by a person: no target is followed, so there is no drift from it.
            drift=plan.drift if self.hedge_meant and not unknown else None, mark=snapshot.mark_price if snapshot else self.status.mark,
            liquidation_price=plan.liquidation_price, distance=plan.distance,
            runway_price=plan.runway_price, runway=plan.runway,
            updated_at=self.clock.now(), note=note, market=self.market, **self._liquidation_fields(),
            **self._trading_fields(), **self._schedule_fields(), **self._exposure_fields(snapshot),
            **self._contract_fields(), **(self.beta_sizing.status_fields() if self.beta_sizing is not None else {}),
        )

    def _exposure_fields(self, snapshot: Snapshot | None) -> dict[str, Any]:
        if snapshot is None:
            return {}
        config = self.hedge.exposure
        held = snapshot.elsewhere
        return {
            "exposure_spot": snapshot.spot_asset if config.spot else None,
            "exposure_offset": self.policy.offset or None,
            "exposure_elsewhere": held.amount if held is not None and held.known else None,
            "exposure_elsewhere_at": held.at if held is not None else None,
            "holding_price": held.price if held is not None else None,
            # Beside the instrument's mark only when the holding is the instrument's coin (not a beta hedge's).
            "holding_spread": held.spread(snapshot.mark_price) if held is not None and self.beta_sizing is None else None,
            "exposure_sources": tuple(
                {"source": name, "amount": render(amount, Figure.AMOUNT, Precision.of(self.market)), "at": iso_utc(at)}
                for name, amount, at in (held.parts if held is not None else ())
            ),
        }

    def _schedule_fields(self) -> dict[str, Any]:
        now = self._exchange_now()
        schedule = self.scheduled.schedule
        window, coming = schedule.window_at(now), schedule.next_window(now)
        return {
            "window": window.name if window else "", "next_window": coming.name if coming else "",
            "next_window_at": coming.start if coming else None, "ends_at": schedule.ends_at,
        }

    # ---- trading states, requests and unwinds ----------------------------------------

    @property
    def trading_state(self) -> TradingState:
        """Return the state the hedge trades in: the stricter of the config's and the journal's."""
        return strictest(TradingState(self.hedge.state), self.trading.state)

    def _trading_fields(self) -> dict[str, Any]:
        state = self.trading_state
        if state is not self.trading.state:
            return {"trading_state": state.value, "trading_reason": "set in the config", "trading_actor": "config"}
        return {"trading_state": state.value, "trading_reason": self.trading.reason, "trading_actor": self.trading.actor}

    def set_trading_state(self, state: TradingState, reason: str, actor: str) -> None:
        """Move the hedge to `state`: journal it, and raise (or resolve) its alert with the reason and the actor."""
        before = self.trading.state
        self.trading = self.control.set_state(self.account, self.hedge.name, state, reason, actor)
        self._emit("trading_state_changed", Severity.WARNING if state is not TradingState.ACTIVE else Severity.INFO,
                   state=state.value, previous=before.value, reason=reason, actor=actor)
        if state in (TradingState.ACTIVE, TradingState.CLOSED):
            self.alerts.resolve("trading_state", trading=state.value, actor=actor)
        else:
            severity = Severity.CRITICAL if actor.startswith("circuit breaker") else Severity.WARNING
            self.alerts.raise_alert(
                "trading_state", severity, f"hedge {state.value}: {reason} (by {actor})",
                sticky=True, trading=state.value, reason=reason, actor=actor,
            )
        self.status = replace(self.status, **self._trading_fields())

    def _trip(self, trip: Trip | None) -> None:
        if trip is None or strictest(trip.state, self.trading.state) is self.trading.state:
            return  # already at least as strict
        self.set_trading_state(trip.state, trip.reason, f"circuit breaker {trip.breaker}")

    def _feed_breakers(
        self, kind: str, status: IntentStatus, outcome: dict[str, Any], at: float | None = None, trip: bool = True
    ) -> None:
        if kind == "withdrawal":
            return  # a refused withdrawal is the refill's alert, not a sign the hedge's own orders go wrong
        now = self.clock.now() if at is None else at
        tripped: Trip | None = None
        if status is IntentStatus.REJECTED:
            tripped = self.breakers.order_rejected(now, str(outcome.get("error", "")))
        elif status is IntentStatus.DONE and kind == "order":
            notional = Decimal(str(outcome.get("filled", 0))) * Decimal(str(outcome.get("average_price", 0)))
            tripped = self.breakers.order_filled(now, notional)
        if trip:
            self._trip(tripped)

    def _track_fill(
        self, kind: str, detail: dict[str, Any], status: IntentStatus, outcome: dict[str, Any], late: bool = False
    ) -> None:
        """Keep the expected short in step with our own fills (partial ones included).

        A `late` outcome (an unknown one settled afterwards) re-bases the watch instead:
        observations made meanwhile may already show the fill, and counting it again
        would look like someone else's trade.
        """
        if kind != "order" or detail.get("position_side") != self.policy.side.value:
            return
        if status is IntentStatus.UNKNOWN or late:
            self.short_watch.forget()
        elif status is IntentStatus.DONE and "filled" in outcome:
            filled = Decimal(str(outcome["filled"]))
            self.short_watch.our_fill(filled if detail.get("side") == self.policy.side.opening.value else -filled)

    def _check_short(self, snapshot: Snapshot, before: Snapshot | None = None) -> None:
        """Notice a short changed by someone else: say what happened, and stop trading if another trader is on the leg.

        A short lost past its liquidation price is a liquidation even when no stream reported it
        (the venue is polled): the critical `liquidated` alert names what was seen, and the short
        is re-opened under the re-open rules. `before` is the previous observation.
        """
        if self.journal.open_intents(self.account, self.hedge.name):
            # An order of ours of unknown outcome may execute at any moment: a change now proves nothing,
            # except a short gone with the mark past its liquidation price, which no order of ours explains.
            self.short_watch.forget()
            self._notice_liquidation_while_unsettled(snapshot, before)
            return
        liquidation_price = self.last_plan.liquidation_price if self.last_plan else None
        surprise = self.short_watch.check(snapshot, liquidation_price, self._liquidation_unseen, self._deleveraging_unseen)
        self._liquidation_unseen = False
        self._deleveraging_unseen = False
        if surprise is None:
            return
        severity = Severity.CRITICAL if surprise.cause in (LIQUIDATION, FOREIGN) else Severity.WARNING
        message = (
            f"the {self.policy.side.value} moved from {surprise.expected} to {surprise.seen} without a fill of ours; "
            f"likely cause: {surprise.cause} ({surprise.explanation})"
        )
        self._emit(
            "short_changed_outside", severity, expected=surprise.expected, seen=surprise.seen,
            change=surprise.change, cause=surprise.cause, explanation=surprise.explanation,
        )
        self.alerts.raise_alert("short_changed_outside", severity, message, cause=surprise.cause)
        if surprise.cause == LIQUIDATION:
            if self._liquidation is None:
                self._report_liquidation(Liquidation(
                    self.clock.now(), snapshot.mark_price, surprise.expected - surprise.seen,
                    self._margin_lost(before, snapshot), f"{surprise.explanation}, and the {self.policy.side.value} vanished",
                ))
            elif not self._liquidation.margin_lost:
                self._report_liquidation(replace(self._liquidation, margin_lost=self._margin_lost(before, snapshot)))
            self._trip(self.breakers.liquidated(self.clock.now()))
        elif surprise.cause == FOREIGN and self.trading_state in (TradingState.ACTIVE, TradingState.REDUCING):
            self.set_trading_state(
                TradingState.HALTED,
                f"the {self.policy.side.value} grew by {surprise.change} without an order of ours: another trader is on this leg; "
                "hedgebot does not fight it. Stop the other trader, then `hedgebot resume`",
                "surprise watch",
            )

    def _notice_liquidation_while_unsettled(self, snapshot: Snapshot, before: Snapshot | None) -> None:
        """Report a hedge leg that vanished past its liquidation price while an outcome is unknown (the watch is not judging)."""
        liquidation_price = self.last_plan.liquidation_price if self.last_plan else None
        side = self.policy.side
        if self._liquidation is not None or before is None or liquidation_price is None:
            return
        was, now = before.leg_of(side).size, snapshot.leg_of(side).size
        mark = snapshot.mark_price
        if not (mark.is_finite() and liquidation_price.is_finite()):
            return  # a bad price is the plan's to refuse; no liquidation is judged on it
        crossed = mark >= liquidation_price if side is PositionSide.SHORT else mark <= liquidation_price
        if was <= 0 or now > 0 or not crossed:
            return
        self._report_liquidation(Liquidation(
            self.clock.now(), mark, was, self._margin_lost(before, snapshot),
            f"the mark crossed the {side.value}'s liquidation price (liquidation price {liquidation_price}, mark "
            f"{mark}) while an order's outcome was unknown, and the {side.value} vanished",
        ))
        self._emit(
            "short_changed_outside", Severity.CRITICAL, expected=was, seen=ZERO, change=-was, cause=LIQUIDATION,
            explanation=f"the {side.value} vanished past its liquidation price while an order's outcome was unknown",
        )
        self._trip(self.breakers.liquidated(self.clock.now()))

    def _margin_lost(self, before: Snapshot | None, after: Snapshot) -> Decimal:
        """Return the margin a liquidation took: the isolated leg's own, or what the cross wallet lost."""
        if before is None:
            return ZERO
        if before.margin_mode is MarginMode.ISOLATED:
            return before.leg_of(self.policy.side).margin
        return max(ZERO, before.cross_backing - after.cross_backing)

    def _follow_schedule(self) -> None:
        """Hold the ratio of the schedule's window in force, say when one begins or ends, and ask for the unwind at the end.

        While the exchange's clock is unmeasured or far from ours, nothing changes: the window in force stays, the end waits.
        """
        now = self._schedule_time()
        if now is None:
            return
        self.policy = self.scheduled.policy_at(now)
        change = self.scheduled.look(now)
        if change is not None:
            left, entered = change
            said = f"window {entered.name!r} begins" if entered else f"window {left.name!r} ends" if left else ""
            self._emit(
                "schedule_window", Severity.INFO, entered=entered.name if entered else "", left=left.name if left else "",
                ratio=str(self.policy.ratio), message=f"{said}: the hedge keeps a ratio of {self.policy.ratio}",
            )
        if not self.scheduled.end_due(now) or self.unwind is not None or self.trading_state is TradingState.CLOSED:
            return
        reason = f"the hedge's end has come ({self.scheduled.schedule.ends_because})"
        if self.trading_state is TradingState.HALTED:
            # A person's pause or a breaker's halt is lifted only by a person: the end's unwind waits for `resume`.
            self.alerts.raise_alert(
                "hedge_end_waiting", Severity.WARNING,
                f"{reason}, but the hedge is halted ({self.trading.reason or self.hedge.state}): nothing is sent; "
                "`hedgebot resume` lets the unwind go",
            )
            return
        if any(r.command == "unwind" for r in self.control.pending(self.account, self.hedge.name)):
            return
        self.control.submit(self.account, self.hedge.name, "unwind", "schedule", reason, sell_spot=self.hedge.until_sell_spot)
        self._emit(
            "hedge_end_reached", Severity.WARNING, until=self.hedge.until, sell_spot=self.hedge.until_sell_spot,
            message=f"{reason}: the hedge is unwound" + (" with its spot sold" if self.hedge.until_sell_spot else ", its spot kept")
            + ", then stays closed until `hedgebot resume`",
        )

    def _ask_unwind(self, reason: str) -> None:
        """Ask for the normal unwind (once: not while one is asked for, under way, or the hedge is closed)."""
        if self.unwind is not None or self.trading_state in (TradingState.CLOSED, TradingState.HALTED):
            return  # halted by a person or a breaker: only a person lets anything go (the alert says why)
        if any(r.command == "unwind" for r in self.control.pending(self.account, self.hedge.name)):
            return
        self.control.submit(self.account, self.hedge.name, "unwind", "beta", reason, sell_spot=False)
        self._emit("hedge_unwind_asked", Severity.WARNING, reason=reason, message=f"{reason}: the hedge is unwound")

    async def take_requests(self) -> None:
        """Carry out what was asked through the control channel, oldest first, and acknowledge each."""
        for request in self.control.pending(self.account, self.hedge.name):
            result = await self._carry_out(request)
            self.control.take(request.id, self.taken_by, result)
            self._emit(
                "request_taken", request_id=request.id, command=request.command, actor=request.actor,
                reason=request.reason, result=result,
            )

    async def _carry_out(self, request: Request) -> str:
        actor = request.actor
        reason = request.reason or f"{request.command} requested"
        match request.command:
            case "pause":
                self.set_trading_state(TradingState.HALTED, reason, actor)
            case "reduce":
                self.set_trading_state(TradingState.REDUCING, reason, actor)
            case "resume":
                if self.scheduled.end_due(self._exchange_now()):
                    ends = self.scheduled.schedule.ends_because
                    if self.trading_state is TradingState.CLOSED:
                        # Re-armed now, the hedge would open its whole short only to be unwound again at once.
                        return (
                            f"not resumed: the hedge's end has passed ({ends}); change or remove `until` in the config "
                            "and reload, then resume"
                        )
                    # Halted when its end came: the person's resume lets the end's unwind go, and nothing else.
                    self.breakers.reset()
                    self.set_trading_state(TradingState.REDUCING, f"resumed at the hedge's end ({ends}): unwinding", actor)
                    return f"resumed into the hedge's end ({ends}): it is unwound now, then stays closed"
                self.breakers.reset()
                self.set_trading_state(TradingState.ACTIVE, reason, actor)
                if self.hedge.state != TradingState.ACTIVE.value:
                    return f"resumed in the journal, but the config sets state = {self.hedge.state!r}: edit the config"
            case "unwind":
                return await self._start_unwind(request)
            case _:
                return f"unknown command {request.command!r}; nothing done"
        return f"hedge is {self.trading_state.value}"

    async def _start_unwind(self, request: Request) -> str:
        if self.unwind is not None:
            return f"unwind {self.unwind.id} is already under way; it carries on"
        assert self.market is not None
        market = self.market
        legs = await self._read(lambda: self.port.fetch_legs(market.symbol))
        short = legs.of(self.policy.side)
        detail = request.detail
        sell_spot = bool(detail.get("sell_spot", False))
        if sell_spot and self.market.inverse:
            # An inverse short's margin is the coins themselves (the command refuses this; a raw request may not).
            return "refused: a coin-margined hedge's unwind sells no coins (its margin is the coins); ask without sell_spot"
        if sell_spot and self.beta_sizing is not None:
            # The coins held (the hedge's asset) are not the instrument's: a spot slice would sell the instrument's coins.
            return (
                f"refused: a beta hedge's unwind sells no coins ({self.hedge.asset} held is not {market.base}, the "
                "instrument's coin); ask without sell_spot"
            )
        slices = detail.get("slices")
        max_order = self.hedge.max_order
        if self.market.inverse:  # configured in coins; the leg counts face value
            price = (await self._read(lambda: self.port.fetch_mark_price(market.symbol))).price
            max_order = rule_for(self.market).size_for(max_order, price)
        spec = {
            "slice_size": str(unwinding.slice_size(short.size, max_order, slices, self.market)),
            "sell_spot": sell_spot,
            "margin_to_spot": str(short.margin if sell_spot else ZERO),
            "short_at_start": str(short.size),
        }
        self.unwind = self.control.start_unwind(self.account, self.hedge.name, spec, request.actor)
        self._emit("unwind_started", unwind=self.unwind.id, actor=request.actor, **spec)
        self._drop_held_sale(f"unwind {self.unwind.id} takes the {self.policy.side.value} off")
        self.set_trading_state(TradingState.REDUCING, f"unwinding (unwind {self.unwind.id})", request.actor)
        return f"unwind {self.unwind.id} started: {self.policy.side.value} {short.size} in slices of at most {spec['slice_size']}"

    def unwind_progress(self, unwind_id: int) -> tuple[Decimal, Decimal, Decimal]:
        """Return what an unwind has done so far, from the journal: short bought back, spot sold, margin moved."""
        reduced = sold = moved = ZERO
        for intent in self.journal.intents(self.account, self.hedge.name):
            if intent.detail.get("unwind") != unwind_id or intent.status is not IntentStatus.DONE:
                continue
            outcome = intent.outcome or {}
            if intent.kind == "transfer":
                moved += Decimal(intent.detail["amount"])
            elif intent.kind == "order" and "filled" in outcome:
                if intent.detail.get("position_side") == self.policy.side.value:
                    reduced += Decimal(outcome["filled"])
                else:
                    sold += Decimal(outcome["filled"])
        return reduced, sold, moved

    def unwind_view(self, record: UnwindRecord, snapshot: Snapshot) -> tuple[unwinding.UnwindView, unwinding.UnwindSpec]:
        """Return an unwind's view of the venue (with its progress from the journal) and what it was asked to do."""
        reduced, sold, moved = self.unwind_progress(record.id)
        elsewhere = self.policy.offset + (snapshot.long.size if self.policy.include_perp_long else ZERO)
        view = unwinding.UnwindView(
            snapshot.market, snapshot.mark_price, snapshot.leg_of(self.policy.side).size, snapshot.spot_asset, elsewhere,
            snapshot.futures_free, reduced, sold, moved,
        )
        spec = unwinding.UnwindSpec(
            Decimal(record.spec["slice_size"]), bool(record.spec["sell_spot"]), Decimal(record.spec["margin_to_spot"]),
            self.policy.side,
        )
        return view, spec

    def _allowed_actions(self, plan: policy.Plan, snapshot: Snapshot, topups: bool = True) -> list[Action]:
        """Return the actions the hedge may take now: the plan's (or the unwind's), as its trading state permits.

        With `topups` False (one failed this tick), the unwind's next slice is returned even though a top-up is due.
        """
        state = self.trading_state
        if self.unwind is None:
            return [a for a in plan.actions if permits(state, a)]
        # Unwinding: a margin top-up still comes first (it only lowers risk); the
        # policy's other wishes wait, since the user asked for the hedge to come off.
        topups = [a for a in plan.actions if is_margin_topup(a)] if topups else []
        if topups:
            return topups
        if state not in (TradingState.ACTIVE, TradingState.REDUCING):
            return []
        view, spec = self.unwind_view(self.unwind, snapshot)
        step = unwinding.next_step(view, spec)
        if step is None:
            self._finish_unwind(self.unwind, view)
            return []
        return [step]

    def _finish_unwind(self, record: UnwindRecord, view: unwinding.UnwindView) -> None:
        self.control.finish_unwind(record.id)
        self.unwind = None
        self._emit(
            "unwind_completed", unwind=record.id, short_bought_back=view.reduced, spot_sold=view.sold,
            margin_to_spot=view.moved, short_left=view.short, spot_left=view.spot_asset,
        )
        self.set_trading_state(
            TradingState.CLOSED,
            f"unwound (unwind {record.id}); `hedgebot resume --hedge {self.hedge.name}` re-arms it",
            "unwind",
        )

    async def _execute_step(self, action: Action, snapshot: Snapshot, following: Sequence[Action] = ()) -> bool:
        """Execute one action, tagging the journal's intents with the unwind it belongs to."""
        posting = following[0] if following else None
        if isinstance(action, Transfer) and is_margin_topup(action) and isinstance(posting, AdjustMargin) and is_margin_topup(posting):
            return await self._fund_topup(action, posting)
        if self.unwind is None or is_margin_topup(action):
            return await self._execute(action, snapshot)
        self._intent_tag = {"unwind": self.unwind.id}
        try:
            return await self._execute(action, snapshot)
        finally:
            self._intent_tag = {}

    async def _fund_topup(self, transfer: Transfer, posting: AdjustMargin) -> bool:
        """Move a top-up's money and post it on the leg as one unit; when the move fails, post what is already there.

        Re-planning between the two would find the moved money in the futures wallet, which may be a later
        source or none, and move more: money moved for a top-up is that top-up's money.
        """
        moved = await self._transfer(transfer.asset, transfer.amount, transfer.source, transfer.destination, transfer.reason)
        amount = posting.amount if moved else posting.amount - transfer.amount
        source = posting.source if moved else "futures wallet (the transfer from spot was refused)"
        posted = amount <= 0 or await self._margin(amount, posting.reason, source, posting.position_side)
        return moved and posted

    # ---- quarterlies: the contract held, and the roll --------------------------------

    async def _contract_in_hand(self) -> str:
        """Return the contract a quarterly hedge holds: the roll's expiring one, the nearest with a leg, else the one to hold.

        With no tradable quarterly far enough from delivery, the perpetual of the same market (a critical alert).
        """
        if self._roll is not None:
            return str(self._roll["from"])
        side = self.policy.side
        contracts = await self._read(lambda: self.port.fetch_delivery_contracts(self.hedge.symbol))
        for contract in sorted(contracts, key=lambda c: c.expiry):
            legs = await self._read(lambda c=contract: self.port.fetch_legs(c.symbol))
            if legs.of(side).is_open:
                return contract.symbol
        perpetual = await self._read(lambda: self.port.fetch_legs(self.hedge.symbol))
        chosen = rolling.contract_to_hold(contracts, self.clock.now(), self.hedge.quarterly_roll_before)
        if self.hedge.instrument.chooses:
            if perpetual.of(side).is_open:
                return self.hedge.symbol  # chosen before: judged again now, and at each roll window
            return (await self._choose(self.hedge.symbol, chosen, ZERO, "opening")).symbol
        if perpetual.of(side).is_open:
            # A roll fell back to it: it stays there, loudly, until a person moves it back.
            self._fallback_alert(f"the {side.value} is on the perpetual (a roll fell back to it)")
            return self.hedge.symbol
        if chosen is None or not chosen.tradable:
            self._fallback_alert("no quarterly contract of it can be traded more than roll_before from delivery")
            return self.hedge.symbol
        return chosen.symbol

    def _fallback_alert(self, why: str) -> None:
        self._fallback = why
        self.alerts.raise_alert(
            ROLL_FALLBACK, Severity.CRITICAL,
            f"{self.hedge.symbol}: {why}; the {self.policy.side.value} is held on the perpetual {self.hedge.symbol} "
            "instead, which pays or earns funding: check the exchange's quarterlies, then restart to go back",
            symbol=self.hedge.symbol,
        )

    async def _use_contract(self, symbol: str) -> Market:
        """Load a contract's rules and put its margin mode and leverage where the config says, before it is traded."""
        market = await self._read(lambda: self.port.load_market(symbol))
        if await self._read(lambda: self.port.fetch_margin_mode(symbol)) is not self.hedge.margin_mode:
            await self._read(lambda: self.port.set_margin_mode(symbol, self.hedge.margin_mode))
        if await self._read(lambda: self.port.fetch_leverage(symbol)) != self.hedge.leverage:
            await self._read(lambda: self.port.set_leverage(symbol, self.hedge.leverage))
        return market

    async def _follow_delivery(self, held_back: bool) -> None:
        """Hold the contract to hold: move to it while flat, or begin the roll when the held one nears delivery."""
        market = self.market
        if self._fallback is not None and market is not None and market.expiry is None:
            self._fallback_alert(self._fallback)
        roll = self._roll
        if roll is not None and roll["to"] == self.hedge.symbol and roll["from"] != self.hedge.symbol and not self.hedge.instrument.chooses:
            # Still critical while the roll moves the leg to the perpetual (for as long as delivery holds it up, too).
            self._fallback_alert(f"a roll off {roll['from']} goes to the perpetual: no next quarterly can be traded")
        if self._roll is not None or market is None:
            return
        if market.expiry is None:
            if self.hedge.instrument.chooses and not held_back:
                await self._judge_on_perpetual(market)
            return  # on the perpetual: chosen, or after a fallback
        now = self.clock.now()
        side = self.policy.side
        held = rolling.Contract(market.symbol, market.expiry)
        if not rolling.roll_due(held, now, self.hedge.quarterly_roll_before):
            return
        if held_back and self.hedge.instrument.chooses:
            return  # an action of unknown outcome first; the choice is made once it is settled
        contracts = await self._read(lambda: self.port.fetch_delivery_contracts(self.hedge.symbol))
        chosen = rolling.contract_to_hold(contracts, now, self.hedge.quarterly_roll_before)
        to = chosen.symbol if chosen is not None and chosen.tradable and chosen.symbol != market.symbol else None
        legs = await self._read(lambda: self.port.fetch_legs(market.symbol))
        if self.hedge.instrument.chooses:
            # The next quarterly is where the leg would go anyway: the perpetual must beat it by switch_advantage.
            nxt = chosen if to is not None else None
            to = (await self._choose(to or self.hedge.symbol, nxt, self.hedge.switch_advantage, "roll window")).symbol
        elif to is None:
            self._fallback_alert(f"no quarterly after {market.symbol} can be traded")
            to = self.hedge.symbol
        await self._move_leg(market, to, legs.of(side).size, held_back)

    async def _move_leg(self, market: Market, to: str, held: Decimal, held_back: bool) -> None:
        """Hold `to` from now on: at once while the leg is flat, else through a journaled roll from `market`."""
        now = self.clock.now()
        side = self.policy.side
        if held <= 0:
            self.market = await self._use_contract(to)  # nothing to move: hold the next one from now on
            self._emit("contract_held", contract=to, was=market.symbol)
            return
        if held_back:
            return  # an action of unknown outcome first; the roll begins once it is settled
        other = await self._read(lambda: self.port.fetch_legs(to))
        base = held + other.of(side).size
        self._roll = {"from": market.symbol, "to": to, "base": str(base), "started_at": now}
        self.control.set_hold(self.account, self.hedge.name, ROLL_HOLD, self._roll)
        crashpoints.reached("roll_journaled")
        target = self.last_plan.target if self.last_plan is not None else None
        self._emit("roll_started", contract=market.symbol, next_contract=to, base=base, expiry=market.expiry, target=target)

    async def _judge_on_perpetual(self, market: Market) -> None:
        """On the perpetual by choice: at each quarterly's roll window, move to the next quarterly when it earns enough more."""
        now = self.clock.now()
        if self._judged is not None and now < self._judged.expiry - self.hedge.quarterly_roll_before:
            return  # this window's choice is made; the next comes roll_before ahead of the judged quarterly's delivery
        contracts = await self._read(lambda: self.port.fetch_delivery_contracts(self.hedge.symbol))
        chosen = rolling.contract_to_hold(contracts, now, self.hedge.quarterly_roll_before)
        if chosen is None or (self._judged is not None and chosen.symbol == self._judged.symbol):
            return  # no quarterly to compare with (looked for again each tick), or this one is judged already
        when = "roll window" if self._judged is not None else "restart"  # a restart on the perpetual judges once at once
        made = await self._choose(market.symbol, chosen, self.hedge.switch_advantage, when)
        if made.symbol != market.symbol:
            legs = await self._read(lambda: self.port.fetch_legs(market.symbol))
            await self._move_leg(market, made.symbol, legs.of(self.policy.side).size, False)

    async def _choose(
        self, default: str, quarterly: rolling.Contract | None, threshold: Decimal, when: str,
    ) -> choosing.Choice:
        """Compare the perpetual's carry with `quarterly`'s and choose (`default` unless another earns `threshold` more).

        The quarterly compared is remembered: its roll window is the next time a hedge on the perpetual chooses.
        """
        self._judged = quarterly
        carries = tuple(await self._carries(quarterly if quarterly is not None and quarterly.tradable else None))
        if len(carries) < 2:
            why = "no quarterly of it can be traded more than roll_before from delivery"
            made = choosing.Choice(self.hedge.symbol, f"{why}: the perpetual {self.hedge.symbol} is the only choice", None)
        else:
            made = choosing.choose(carries, default, self.policy.side, threshold)
        self._choice = (made, carries)
        held = self.market.symbol if self.market is not None else None
        self._emit(
            "instrument_chosen", contract=made.symbol, held=held, when=when, reason=made.reason,
            advantage=_shown_rate(made.advantage), switch_advantage=str(threshold),
            carries={c.symbol: _shown_rate(c.annual_rate) for c in carries},
        )
        return made

    async def _carries(self, quarterly: rolling.Contract | None) -> list[choosing.Carry]:
        """Price the contracts the hedge chooses among: the perpetual by its recent funding, the quarterly by its basis."""
        now = self.clock.now()
        perpetual = self.hedge.symbol
        kinds = self.hedge.contract_kinds
        out: list[choosing.Carry] = []
        if any(not k.delivers for k in kinds):
            settlements = await self._read(lambda: self.port.fetch_funding_rates(perpetual, now - FUNDING_HISTORY_SECONDS))
            out.append(choosing.Carry(
                perpetual, funding_annual_rate(settlements), f"{len(settlements)} funding settlements in the last 30 days",
            ))
        if quarterly is not None and any(k.delivers for k in kinds):
            spot = (await self._read(lambda: self.port.fetch_mark_price(perpetual))).price
            future = (await self._read(lambda: self.port.fetch_mark_price(quarterly.symbol))).price
            out.append(choosing.Carry(
                quarterly.symbol, annual_basis(future, spot, now, quarterly.expiry), "basis to the perpetual's mark until delivery",
            ))
        return out

    def _max_order_of(self, market: Market, price: Decimal) -> Decimal:
        """Return max_order (configured in coins) in the contract's own amounts."""
        return rule_for(market).size_for(self.hedge.max_order, price) if market.inverse else self.hedge.max_order

    async def _roll_steps(self, plan: policy.Plan | None) -> bool:
        """Carry the roll on, one journaled slice at a time: open on the next contract, then buy back the expiring one.

        Each step follows from the two legs as the venue shows them and the `base` journaled when the roll began,
        so a restart at any point goes on without doubling a leg. Return whether an order went out.
        """
        roll = self._roll
        assert roll is not None and self.market is not None
        side = self.policy.side
        source, target, base = str(roll["from"]), str(roll["to"]), Decimal(roll["base"])
        if self._roll_market is None or self._roll_market.symbol != target:
            self._roll_market = await self._use_contract(target)
        market = self._roll_market
        acted = False
        if await self._expiring_frozen(source):
            return acted
        for _ in range(self.max_steps):
            expiring = (await self._read(lambda: self.port.fetch_legs(source))).of(side).size
            following = (await self._read(lambda: self.port.fetch_legs(target))).of(side).size
            price = (await self._read(lambda: self.port.fetch_mark_price(target))).price
            view = rolling.RollView(expiring, following, base)
            minimum = market.min_amount if market.inverse else market.min_tradeable(price)
            step = rolling.next_roll_step(view, self._max_order_of(market, price), market.amount_step, minimum)
            if step is None:
                self._finish_roll(market, view)
                return acted
            if step.reason == rolling.OPEN_NEXT:
                held = self._roll_held_by(plan, market, step.amount, price)
                if held is None:
                    held = await self._roll_unfunded(market, step.amount, price)
                if held is not None:
                    self.alerts.raise_alert("roll_held", Severity.WARNING, f"the roll to {target} waits: {held}")
                    return acted
            self._intent_tag = {"roll": source}
            try:
                if step.reason == rolling.OPEN_NEXT:
                    outcome = await self._order(side.opening, step.amount, side, False, step.reason, contract=target)
                else:
                    outcome = await self._order(side.closing, step.amount, side, True, step.reason, contract=source)
            finally:
                self._intent_tag = {}
            acted = True
            if outcome is None:
                refused = not self.journal.open_intents(self.account, self.hedge.name)
                # An answer lost on the way (unknown, looked up by client id) is no refusal: it may have executed.
                if step.reason == rolling.OPEN_NEXT and following == 0 and target != self.hedge.symbol and refused:
                    self._next_refused(roll, target, source)
                return acted
            self.alerts.resolve("roll_held")
        return acted

    async def _expiring_frozen(self, source: str) -> bool:
        """Tell whether the expiring contract still holds a leg but takes no order (pre-delivery): the roll waits.

        Binance stops orders on a contract in PRE_DELIVERING and settles what is still open at delivery. A slice
        opened now could not be bought back: the short would stay a slice over until delivery, and each refused
        buy-back counts towards the rejection breaker. The roll opens the rest on the next contract once the leg
        is settled (critical: the short is briefly below target between delivery and the next slice).
        """
        if source == self.hedge.symbol:
            return False  # a move off the perpetual: nothing is delivered
        held = (await self._read(lambda: self.port.fetch_legs(source))).of(self.policy.side).size
        if held <= 0:
            self.alerts.resolve("roll_delivery")
            return False
        contracts = await self._read(lambda: self.port.fetch_delivery_contracts(self.hedge.symbol))
        if any(c.symbol == source and c.tradable for c in contracts):
            self.alerts.resolve("roll_delivery")
            return False
        self.alerts.raise_alert(
            "roll_delivery", Severity.CRITICAL,
            f"{source} takes no more orders before its delivery with {held} still short on it: the exchange settles "
            "that leg at the delivery price, and the roll opens it on the next contract once it is settled",
        )
        return True

    def _next_refused(self, roll: dict[str, Any], target: str, source: str) -> None:
        """Nothing opened on the next contract and it refuses: the leg goes to (or, chosen, stays on) the perpetual."""
        why = f"{target} refused the roll's first slice (see its order_failed event)"
        if not self.hedge.instrument.chooses:
            self._fallback_alert(why)
        elif source == self.hedge.symbol:
            # A move off the perpetual that cannot begin: nothing moved, the leg stays where it is until the next window.
            self.control.set_hold(self.account, self.hedge.name, ROLL_HOLD, None)
            self._roll = None
            self._roll_market = None
            self._emit("instrument_chosen", Severity.WARNING, contract=source, held=source, when="refused",
                       reason=f"{why}: the leg stays on the perpetual {source}")
            return
        else:
            self._emit("instrument_chosen", Severity.WARNING, contract=self.hedge.symbol, held=source, when="refused",
                       reason=f"{why}: the leg goes to the perpetual {self.hedge.symbol} instead")
        self._roll = {**roll, "to": self.hedge.symbol}
        self.control.set_hold(self.account, self.hedge.name, ROLL_HOLD, self._roll)

    def _roll_held_by(self, plan: policy.Plan | None, market: Market, amount: Decimal, price: Decimal) -> str | None:
        """Return why the guard holds the roll's next slice (a top-up due or a plan it cannot judge), or None."""
        if plan is None or plan.blocked is not None:
            return f"the plan cannot be judged ({plan.blocked if plan else 'no plan yet'})"
        if any(is_margin_topup(a) for a in plan.actions):
            return "a margin top-up is due first"
        return None

    async def _roll_unfunded(self, market: Market, amount: Decimal, price: Decimal) -> str | None:
        """Return why the futures wallet cannot fund a slice on the next contract (its margin and fee), or None.

        What the futures wallet lacks is moved from spot first when the guard may draw on spot (`spot_stablecoin`:
        the margin asset in spot, coins for a coin-margined contract), as a journaled transfer.
        """
        rule = rule_for(market)
        asset = market.margin_asset
        need = rule.notional(amount, price) * (1 / Decimal(self.hedge.leverage) + 2 * market.taker_fee)
        free = (await self._read(lambda: self.port.fetch_futures_balance(asset))).free
        if free < need and self.policy.guard.from_spot_stablecoin:
            lacking = ceil_to_step(need - free, market.margin_step)
            in_spot = (await self._read(self.port.fetch_spot_balances)).get(asset, ZERO)
            if in_spot >= lacking and await self._transfer(asset, lacking, Wallet.SPOT, Wallet.FUTURES, "roll: margin for the next contract"):
                free = (await self._read(lambda: self.port.fetch_futures_balance(asset))).free
        if free < need:
            return f"{need:.8f} {asset} of margin needed for a slice of {amount}, {free:.8f} free"
        return None

    def _finish_roll(self, market: Market, view: rolling.RollView) -> None:
        roll = self._roll
        assert roll is not None
        was = self.market.symbol if self.market is not None else roll["from"]
        self.market = market
        self.control.set_hold(self.account, self.hedge.name, ROLL_HOLD, None)
        self._roll = None
        self._roll_market = None
        self.alerts.resolve("roll_held")
        self._emit("roll_completed", contract=was, next_contract=market.symbol, base=roll["base"], short=view.next)

    def trades(self, symbol: str) -> bool:
        """Tell whether `symbol` is a contract this hedge trades: its market, the contract it holds, or its roll's."""
        roll = self._roll
        return (
            symbol == self.hedge.symbol or (self.market is not None and symbol == self.market.symbol)
            or (roll is not None and symbol in (roll["from"], roll["to"]))
        )

    def _contract_fields(self) -> dict[str, Any]:
        market = self.market
        if market is None or not self.hedge.instrument.follows_delivery:
            return {}
        expiry = market.expiry
        roll = self._roll
        if expiry is None and self._judged is not None and self.hedge.instrument.chooses:
            expiry_window = self._judged.expiry  # on the perpetual, the choice is made again at the quarterly's window
        else:
            expiry_window = expiry
        fields: dict[str, Any] = {
            "contract": market.symbol, "contract_expiry": expiry,
            "next_roll_at": expiry_window - self.hedge.quarterly_roll_before if expiry_window is not None and roll is None else None,
            "rolling": f"{roll['from']} -> {roll['to']}" if roll is not None else "",
        }
        if self._choice is not None:
            made, carries = self._choice
            fields["carries"] = tuple(
                {"symbol": c.symbol, "annual_rate": _shown_rate(c.annual_rate), "source": c.source}
                for c in carries
            )
            fields["choice"] = made.reason
        return fields

    # ---- execute ------------------------------------------------------------------

    async def _execute(self, action: Action, snapshot: Snapshot) -> bool:
        """Carry out one action; return whether it went through (so the next may follow)."""
        assert self.market is not None
        match action:
            case PlaceOrder():
                amount = action.amount
                if self._roll is not None and not action.spot and lowers_exposure(action):
                    # The plan sees both contracts' legs as one; a reduction goes on the expiring leg, as far as it holds.
                    side = action.position_side or self.policy.side
                    amount = min(amount, (await self._read(lambda: self.port.fetch_legs(self.market.symbol))).of(side).size)
                    if amount <= 0:
                        return False
                outcome = await self._order(action.side, amount, action.position_side, action.reduce, action.reason, action.spot)
                return outcome is not None
            case AdjustMargin():
                return await self._margin(action.amount, action.reason, action.source, action.position_side)
            case Transfer():
                return await self._transfer(action.asset, action.amount, action.source, action.destination, action.reason)
            case RaiseFromSpot():
                # Short first, then spot: never net short in between. The sale
                # is sized from what the reduction actually filled.
                sell = action.sell_amount
                if action.reduce_amount > 0:
                    # The sale this reduction is for rides on its intent: settled late, it is still owed (and made).
                    funds = {"sell": str(action.sell_amount), "margin": str(action.margin_amount), "ratio": str(self.policy.sale_ratio)}
                    outcome = await self._order(
                        OrderSide.BUY, action.reduce_amount, PositionSide.SHORT, True, action.reason, funds_sale=funds,
                    )
                    if outcome is None:
                        return False
                    sell = sale_after_reduction(
                        sell, Decimal(outcome["filled"]), action.reduce_amount, self.policy.sale_ratio, self.market.amount_step
                    )
                margin = action.margin_amount * sell / action.sell_amount if action.sell_amount > 0 else ZERO
                return await self._sell_for_margin(_HeldSale(sell, margin, action.reason))
            case ReleaseMargin():
                if not await self._margin(-action.amount, action.reason, leg=self.policy.side):
                    return False
                return await self._transfer(action.asset, action.amount, Wallet.FUTURES, Wallet.SPOT, action.reason)
        raise AssertionError(f"unknown action {action!r}")

    async def _sell_for_margin(self, sale: _HeldSale) -> bool:
        """Sell spot and carry the proceeds onto the short; on a failed sale, hold further reductions and alert."""
        assert self.market is not None
        market = self.market
        spot = await self._read(self.port.fetch_spot_balances)
        sell = min(sale.sell, floor_to_step(spot.get(market.base, ZERO), market.amount_step))
        proceeds = sale.proceeds
        if sell > 0:
            outcome = await self._order(OrderSide.SELL, sell, None, False, sale.reason, spot=True)
            if outcome is None:
                self._held_sale = replace(sale, sell=sell)
                self.alerts.raise_alert("margin_sale_failed", Severity.CRITICAL, self._held_sale.message, sticky=True, sell=sell)
                return False
            filled = Decimal(outcome["filled"])
            proceeds += filled * Decimal(outcome["average_price"]) - Decimal(outcome["fee"])
            # Sold: the proceeds are owed to the margin, and the hold stays (journaled) until they are moved, so a
            # failed read or transfer in between can never lead to selling the same coins again.
            self._held_sale = replace(sale, sell=ZERO, proceeds=proceeds)
            if filled < sell:
                # Filled in part (the book ran out; Binance expires the rest): the short was reduced for all of it,
                # so the unsold coins are unhedged. The filled part's proceeds move now; the rest is held and retried,
                # its margin already carried by this pass.
                self._held_sale = replace(sale, sell=sell - filled, margin=ZERO, proceeds=proceeds)
                self.alerts.raise_alert(
                    "margin_sale_failed", Severity.CRITICAL, self._held_sale.message, sticky=True, sell=sell - filled,
                )
                return await self._carry_sale_onto_margin(sale, proceeds)
        self.alerts.resolve("margin_sale_failed")
        return await self._carry_sale_onto_margin(sale, proceeds)

    async def _carry_sale_onto_margin(self, sale: _HeldSale, proceeds: Decimal) -> bool:
        """Move a sale's proceeds to the futures wallet and, isolated, onto the short with the margin its reduction freed."""
        assert self.market is not None
        market = self.market
        if proceeds > 0:
            spot = await self._read(self.port.fetch_spot_balances)
            moved = floor_to_step(min(proceeds, spot.get(market.margin_asset, ZERO)), market.margin_step)
            if moved > 0 and not await self._transfer(market.margin_asset, moved, Wallet.SPOT, Wallet.FUTURES, SALE_PROCEEDS):
                return False
        # The proceeds are moved: the hold is lifted, unless coins are still owed as a sale (a partial fill).
        held = self._held_sale
        self._held_sale = replace(held, proceeds=ZERO) if held is not None and held.sell > 0 else None
        if self.hedge.margin_mode is MarginMode.ISOLATED and sale.margin > 0:
            free = (await self._read(lambda: self.port.fetch_futures_balance(market.margin_asset))).free
            add = floor_to_step(min(sale.margin, free), market.margin_step)
            if add > 0:
                return await self._margin(add, sale.reason, "sale of spot and the freed margin", self.policy.side)
        return True

    def _drop_held_sale(self, why: str) -> None:
        """Forget an owed margin sale: the leg it was to fund is coming off, and the coins are the user's to keep."""
        sale = self._held_sale
        if sale is None:
            return
        self._held_sale = None
        self._emit("margin_sale_dropped", Severity.WARNING, sell=sale.sell, proceeds=sale.proceeds, reason=sale.reason, why=why)
        self.alerts.resolve(
            "margin_sale_failed", f"the sale of {sale.sell} {self.market.base if self.market else ''} for margin is dropped: {why}",
        )

    async def _retry_held_sale(self) -> None:
        """Try the held sale again; a success carries its proceeds onto the leg and lifts the hold."""
        sale = self._held_sale
        assert sale is not None
        if await self._sell_for_margin(sale):
            self._emit("margin_sale_completed", sell=sale.sell, reason=sale.reason)

    async def _order(
        self, side: OrderSide, amount: Decimal, position_side: PositionSide | None, reduce: bool, reason: str, spot: bool = False,
        funds_sale: dict[str, str] | None = None, contract: str | None = None,
    ) -> dict[str, Any] | None:
        """Send one order through the journal; return the venue's outcome, or None when it did not go through.

        `funds_sale` names the margin sale a reduction is made for (planned sale, margin, sale ratio).
        """
        assert self.market is not None
        symbol = self.market.spot_symbol if spot else contract or self.market.symbol
        detail: dict[str, Any] = {
            "symbol": symbol, "side": side.value, "amount": str(amount), "reduce": reduce, "reason": reason,
            "position_side": position_side.value if position_side else None,
        }
        if funds_sale is not None:
            detail["funds_sale"] = funds_sale
        seen = self.last_snapshot
        if seen is not None:
            # What the order moves, as last seen before it: tells later whether the venue already shows its fill.
            detail["before"] = str(_moved_size(seen, spot, position_side))

        def send(cid: str) -> Awaitable[Any]:
            # In hedge mode the position side says what closes: Binance refuses reduceOnly there (-1106).
            return self.port.place_order(OrderRequest(cid, symbol, side, amount, position_side, reduce and position_side is None))

        return await self._run_intent("order", detail, send)

    async def _margin(
        self, amount: Decimal, reason: str, source: str = "futures wallet", leg: PositionSide = PositionSide.SHORT
    ) -> bool:
        assert self.market is not None
        symbol = self.market.symbol
        detail = {
            "symbol": symbol, "position_side": leg.value, "asset": self.market.margin_asset, "amount": str(amount),
            "reason": reason, "source": source,
        }
        outcome = await self._run_intent(
            "margin", detail, lambda _cid: self.port.adjust_margin(symbol, leg, amount)
        )
        return outcome is not None

    async def _refill(self, plan: policy.Plan | None) -> None:
        """Follow the refill's withdrawals, and withdraw the deposit the buffer asks for when allowed (see engine.refill)."""
        assert self.refill is not None and self.market is not None and self.hedge.buffer is not None
        refill, asset, config = self.refill, self.market.margin_asset, self.hedge.buffer
        try:
            await refill.follow(self.clock.now(), self._withdrawal_ended)
            decision = await refill.decide(
                config, plan.deposit_needed if plan is not None else None, asset, self.market.margin_step, self.clock.now(),
            )
        except ExchangeError as exc:
            decision = RefillDecision(None, f"account {refill.account} could not be read to refill the buffer: {exc}")
        if decision.refused is not None:
            self.alerts.raise_alert("withdrawal_refused", Severity.CRITICAL, decision.refused)
            return
        if plan is not None:
            self.alerts.resolve("withdrawal_refused")
        if decision.amount is None or plan is None:
            return
        assert config.withdraw_address is not None
        address, network, amount = config.withdraw_address, config.withdraw_network, decision.amount
        detail = {
            "asset": asset, "amount": str(amount), "from_account": refill.account, "address": address,
            "network": network, "refill_seconds": config.refill_seconds,
            "reason": f"refill the buffer: {plan.deposit_needed} {asset} needed to hedge in full",
        }
        await self._run_intent(
            "withdrawal", detail, lambda cid: refill.venue.withdraw(WithdrawalRequest(asset, amount, address, network, cid)),
        )

    def _withdrawal_ended(self, sent: Any) -> None:
        """Tell that a withdrawal ended: completed (journaled, for history), or failed after acceptance (an alert)."""
        if sent.status == "completed":
            self._emit("withdrawal_completed", client_id=sent.client_id, amount=sent.amount,
                       from_account=self.refill.account if self.refill else "")
            return
        self.alerts.raise_alert(
            "withdrawal_failed", Severity.CRITICAL,
            f"withdrawal {sent.client_id} of {sent.amount} from account {self.refill.account if self.refill else '?'} "
            f"failed after the exchange accepted it ({sent.error}); no other is sent for an hour: check the account",
            client_id=sent.client_id,
        )

    async def _transfer(self, asset: str, amount: Decimal, source: Wallet, destination: Wallet, reason: str) -> bool:
        detail = {"asset": asset, "amount": str(amount), "from": source.value, "to": destination.value, "reason": reason}
        outcome = await self._run_intent(
            "transfer", detail, lambda _cid: self.port.transfer(asset, amount, source, destination)
        )
        return outcome is not None

    async def _run_intent(
        self, kind: str, detail: dict[str, Any], send: Callable[[str], Awaitable[Any]]
    ) -> dict[str, Any] | None:
        """Journal the intent, send it, settle any ambiguity, journal the outcome; return it when done."""
        detail = {**detail, **self._intent_tag}
        if self.scheduled.window is not None:
            detail["window"] = self.scheduled.window.name  # the schedule's window this order serves
        held = self.last_snapshot.elsewhere if self.last_snapshot is not None else None
        if held is not None and held.known:
            # The coins counted elsewhere this action was sized on, and when they were counted.
            detail["exposure_elsewhere"], detail["exposure_elsewhere_at"] = str(held.amount), held.at
            detail["exposure_sources"] = {
                name: {"amount": render(amount, Figure.AMOUNT, Precision.of(self.market)), "at": iso_utc(at)}
                for name, amount, at in held.parts
            }
        sent_at = self._monotonic()
        intent = self.journal.begin(self.account, self.hedge.name, kind, detail)
        if kind == "withdrawal" and self.refill is not None:
            self.refill.record(intent)  # before it is sent: no other hedge withdraws from the account meanwhile
        self._sent_monotonic[intent.client_id] = sent_at
        crashpoints.reached("intent_journaled")
        status, outcome = await self._send(intent, send)
        crashpoints.reached("action_sent")
        self._settle(intent, status, outcome, [self._report(kind, intent.client_id, detail, status, outcome)])
        crashpoints.reached("outcome_journaled")
        self._feed_breakers(kind, status, outcome)
        self._track_fill(kind, detail, status, outcome)
        return outcome if status is IntentStatus.DONE else None

    async def _send(self, intent: Intent, send: Callable[[str], Awaitable[Any]]) -> tuple[IntentStatus, dict[str, Any]]:
        """Send once under the intent's client id; send again only after an answer that says it was not carried out.

        An ambiguous answer (a timeout, a 5xx, -1007) whose lookup finds nothing leaves the outcome
        unknown, never "not found": the venue may carry the request out later and its lookups may lag,
        and a client id is unique only among open orders, so the same id sent again can execute twice.
        `settle_open_intents` settles it later; only then does a new order go out, under a new id.
        """
        cid = intent.client_id
        last_error = ""
        # While the exchange keeps answering busy, each action is tried once a tick, not send_attempts times.
        attempts = 1 if self.clock.now() < self._busy_until else self.send_attempts
        for attempt in range(1, attempts + 1):
            try:
                return self._answered(await send(cid))
            except DuplicateClientId as exc:
                return await self._look_for(intent, f"venue reports a duplicate: {exc}")
            except Fenced as exc:
                # Refused before it left this process: the lease lapsed, so it never goes (a standby may lead now).
                return IntentStatus.ABSENT, {"error": str(exc)}
            except TransientError as exc:
                last_error = self._venue_error(exc)["error"] or ""
                if says_busy(exc):
                    self._note_busy(last_error)
                if not not_carried_out(exc):
                    return await self._look_for(intent, last_error)
            except BadData as exc:
                if intent.kind == "withdrawal":  # money may have left already: only its id can say
                    return await self._look_for(intent, f"unreadable answer: {exc}")
                return IntentStatus.REJECTED, self._venue_error(exc)
            except PermanentError as exc:
                return IntentStatus.REJECTED, self._venue_error(exc)
            await self.clock.sleep(self._backoff.delay(attempt))
        return IntentStatus.ABSENT, {"error": f"not executed after {attempts} attempts: {last_error}"}

    @staticmethod
    def _answered(result: Any) -> tuple[IntentStatus, dict[str, Any]]:
        """Judge a venue's answer: done, or (an order accepted and still working) unknown until it ends."""
        if getattr(result, "status", None) is OrderStatus.PENDING:
            return IntentStatus.UNKNOWN, {
                **describe(result), "pending": True,
                "error": "accepted and not filled yet: followed until it ends, never sent again",
            }
        if isinstance(result, Withdrawal) and result.status == "failed":
            return IntentStatus.REJECTED, {**describe(result), "error": "the exchange cancelled or rejected the withdrawal"}
        if getattr(result, "status", None) is OrderStatus.REJECTED:
            # Ended with nothing filled (Binance EXPIRED for want of liquidity, or cancelled by the exchange):
            # a refusal in effect, counted by the rejection breaker, and never a fill of 0.
            return IntentStatus.REJECTED, {**describe(result), "error": "the order ended with nothing filled (expired or cancelled by the exchange)"}
        return IntentStatus.DONE, describe(result)

    def _note_busy(self, error: str) -> None:
        """Count a busy answer; past the breaker's limit, send each action once a tick until the window is quiet."""
        until = self.breakers.exchange_busy(self.clock.now())
        if until is not None:
            self._busy_until = until
            self.alerts.raise_alert(
                "exchange_busy", Severity.WARNING,
                f"the exchange keeps answering busy ({error}); each action is tried once a tick until it is quiet",
            )

    async def _look_for(self, intent: Intent, error: str) -> tuple[IntentStatus, dict[str, Any]]:
        """Look up an intent whose answer was ambiguous: done when found, otherwise unknown until settled."""
        streamed = self._streamed.pop(intent.client_id, None)
        if streamed is not None:
            return self._answered(streamed)  # the user-data stream told its end while the answer was lost
        try:
            found = await self._read(functools.partial(self._lookup, intent))
        except ExchangeError as exc:
            return IntentStatus.UNKNOWN, {"error": f"{error}; lookup failed: {exc}"}
        if found is not None:
            return self._answered(found)
        return IntentStatus.UNKNOWN, {"error": f"{error}; not seen yet by a lookup (it may still execute or show up)"}

    _DONE_EVENTS = {"order": "order_filled", "margin": "margin_adjusted", "transfer": "transferred", "withdrawal": "withdrawal_sent"}
    _FAILURE_EVENTS = {
        IntentStatus.REJECTED: ("action_rejected", Severity.WARNING),
        IntentStatus.UNKNOWN: ("outcome_unknown", Severity.CRITICAL),
        IntentStatus.ABSENT: ("action_not_executed", Severity.WARNING),
    }

    def _report(
        self, kind: str, cid: str, detail: dict[str, Any], status: IntentStatus, outcome: dict[str, Any], **extra: Any
    ) -> tuple[str, Severity, dict[str, Any]]:
        """Return the event that tells of an intent's outcome: its kind, severity and fields."""
        if status is IntentStatus.DONE:
            fields_out = {k: outcome[k] for k in ("filled", "average_price", "fee", "status") if k in outcome}
            return self._DONE_EVENTS[kind], Severity.INFO, {"client_id": cid, **detail, **fields_out, **extra}
        if status is IntentStatus.UNKNOWN and outcome.get("pending"):
            return "order_pending", Severity.INFO, {"client_id": cid, **detail, "order_id": outcome.get("order_id"), **extra}
        name, severity = self._FAILURE_EVENTS[status]
        return name, severity, {
            "client_id": cid, "action": kind, **detail, "error": outcome.get("error"),
            "error_code": outcome.get("error_code"), "error_type": outcome.get("error_type"), **extra,
        }

    def _settle(
        self, intent: Intent, status: IntentStatus, outcome: dict[str, Any], events: Sequence[tuple[str, Severity, dict[str, Any]]]
    ) -> None:
        """Journal an intent's outcome and the events telling of it in one transaction, then log and send the events.

        A crash can then never keep a fill out of `history`. When the journal cannot take them, the events
        still reach the log and the senders, and JournalUnavailable goes up to the tick.
        """
        if intent.kind == "withdrawal" and self.refill is not None:
            self.refill.record(replace(intent, status=status, outcome=outcome, updated_at=self.clock.now()))
        now = self.clock.now()
        records = [EventRecord(now, self.account, self.hedge.name, kind, severity, fields) for kind, severity, fields in events]
        try:
            self.journal.finish(intent.client_id, status, outcome, [
                NewEvent(r.account, r.hedge, r.kind, r.severity.value, r.detail, at=now) for r in records
            ])
        finally:
            self.events.journaled_elsewhere(records)

    # ---- recovery -----------------------------------------------------------------

    async def settle_open_intents(self) -> bool:
        """Look up every journaled action of this hedge whose outcome is unknown; True when none is left.

        A lookup that finds it settles it as done. A lookup that misses proves nothing: once the intent is
        older than the venue's settle delay (longer than its lookups and its history may lag), an order is
        proven absent only by the symbol's whole order history over the intent's window (a margin change or
        transfer by the venue's own history of those); until then it stays unknown. `lookup_failed` says
        whether the venue could not be asked at all.
        """
        self.lookup_failed = False
        left: list[Intent] = []
        for intent in self.journal.open_intents(self.account, self.hedge.name):
            source = "lookup"
            streamed = self._streamed.pop(intent.client_id, None)
            try:
                found = streamed if streamed is not None else await self._read(functools.partial(self._lookup, intent))
            except ExchangeError as exc:
                self._cannot_settle(intent, f"cannot settle earlier action {intent.client_id} ({intent.kind})", exc)
                left.append(intent)
                continue
            if found is None and self._intent_age(intent) < self._settle_delay_of(intent):
                left.append(intent)
                continue
            if found is None and self._clock_offset() is None:
                # Histories searched on an unmeasured clock may not show it yet: unknown, never absent.
                left.append(intent)
                continue
            proof = ""
            if streamed is not None:
                source = "user_stream"
            if found is None and intent.kind == "order":
                # A lookup that misses proves nothing on its own (a lagging replica answers "not found"):
                # only the symbol's order history over the intent's window proves the order absent.
                try:
                    history = await self._read(functools.partial(self._order_history, intent))
                except ExchangeError as exc:
                    self._cannot_settle(intent, f"cannot read the order history to settle {intent.client_id}", exc)
                    left.append(intent)
                    continue
                found = history.find(intent.client_id)
                if found is None and not history.complete:
                    self.alerts.raise_alert(
                        "unsettled_actions", Severity.WARNING,
                        f"the order history of {intent.detail['symbol']} is too long to prove {intent.client_id} absent; "
                        "it stays unknown",
                        client_id=intent.client_id,
                    )
                    left.append(intent)
                    continue
                proof = f", nor in the order history of {intent.detail['symbol']} since it was sent"
                source = "order_history"
            if getattr(found, "status", None) is OrderStatus.PENDING:
                left.append(intent)  # accepted and still working: it ends when the exchange says so, not by a delay
                continue
            if found is None and (intent.outcome or {}).get("pending"):
                # The exchange acknowledged this order (it gave it an id): it exists, whatever a lagging lookup
                # or history says. It stays open, and `outcome_unknown` names it past the limit.
                left.append(intent)
                continue
            if found is not None:
                status, outcome = self._answered(found)
            else:
                status, outcome = IntentStatus.ABSENT, {
                    "error": f"the venue has no record of it {self._settle_delay_of(intent):g}s after it was sent{proof}"
                }
            # A fill settled late is a fill like any other: its order_filled, with amount, price and fee, goes to history.
            told = [("intent_settled", Severity.INFO, {
                "client_id": intent.client_id, "action": intent.kind, "status": status.value, "settled_by": source,
                **intent.detail,
            })]
            if status is IntentStatus.DONE:
                told.append(self._report(intent.kind, intent.client_id, intent.detail, status, outcome, settled_late=True))
            # The hold counts it first: a crash before the intent is settled settles it again, and the hold
            # knows it counted it; the other way round, the hold would sell the same coins again.
            self._owe_late_sale(intent, status, outcome)
            self._count_late_sale(intent, status, outcome)
            self._settle(intent, status, outcome, told)
            self._track_fill(intent.kind, intent.detail, status, outcome, late=True)
        for settled in [c for c in self._sent_monotonic if c not in {i.client_id for i in left}]:
            del self._sent_monotonic[settled]
        age = max((self._intent_age(i) for i in left), default=None)
        if age is not None and age > self.unknown_alert_seconds:
            names = ", ".join(f"{i.client_id} ({i.kind} {i.detail.get('side', '')} {i.detail.get('amount', '')})" for i in left)
            self.alerts.raise_alert(
                "outcome_unknown", Severity.CRITICAL,
                f"the outcome of {names} is still unknown after {age:.0f}s; "
                "only margin top-ups and reductions go out until it is settled: check the order on the exchange",
                client_ids=[i.client_id for i in left],
            )
        elif age is None:
            self.alerts.resolve("outcome_unknown")
        return not [i for i in left if i.kind != "withdrawal"]  # a withdrawal moves another account's money, never this hedge's

    def _intent_age(self, intent: Intent) -> float:
        """Return how long ago an intent was begun: on the monotonic clock when this process began it.

        The journal's time is the wall clock's, which a step (NTP after a resumed machine) can move by minutes;
        measured on it, a sale sent 20 s ago could look past its settle delay and be proven absent while the
        exchange's lookups still lag. An intent from before this process started has only the wall time.
        """
        sent = self._sent_monotonic.get(intent.client_id)
        wall_age = self.clock.now() - intent.created_at
        return wall_age if sent is None else min(wall_age, self._monotonic() - sent)

    def _settle_delay_of(self, intent: Intent) -> float:
        """Return how long a lookup may miss `intent`: a withdrawal's history may lag its whole refill time."""
        if intent.kind == "withdrawal":
            return max(self.settle_delay, float(intent.detail.get("refill_seconds") or 0.0))
        return self.settle_delay

    def _cannot_settle(self, intent: Intent, what: str, exc: ExchangeError) -> None:
        """Note that the venue could not be read to settle `intent`: it stays unknown, with a warning naming it."""
        # A withdrawal is looked up on the holdings account: its exchange being down never holds this hedge.
        self.lookup_failed = self.lookup_failed or intent.kind != "withdrawal"
        self.alerts.raise_alert(
            "unsettled_actions", Severity.WARNING, f"{what}: {exc}", client_id=intent.client_id, **self._venue_error(exc),
        )

    def _is_spot_sale(self, intent: Intent) -> bool:
        """Tell whether `intent` is a sale of this hedge's coin on the spot pair."""
        return (
            intent.kind == "order" and self.market is not None and intent.detail.get("symbol") == self.market.spot_symbol
            and intent.detail.get("side") == OrderSide.SELL.value
        )

    def _spot_sale_unsettled(self) -> bool:
        """Tell whether a spot sale of this hedge's coin is of open outcome."""
        return any(self._is_spot_sale(i) for i in self.journal.open_intents(self.account, self.hedge.name))

    def _owe_late_sale(self, intent: Intent, status: IntentStatus, outcome: dict[str, Any]) -> None:
        """Hold the margin sale owed by a reduction made for it that settled late: it is sold next, never planned again.

        Sized from what the reduction filled, as when it is answered at once; recorded (journaled) before the
        intent is settled, with the reduction's client id, so that a crash in between never owes it twice.
        """
        funds = intent.detail.get("funds_sale")
        held = self._held_sale
        if not funds or status is not IntentStatus.DONE or self.market is None:
            return
        if held is not None and intent.client_id in held.counted:
            return
        planned = Decimal(str(funds["sell"]))
        sell = sale_after_reduction(
            planned, Decimal(str(outcome.get("filled", 0))), Decimal(str(intent.detail["amount"])),
            Decimal(str(funds["ratio"])), self.market.amount_step,
        )
        if sell <= 0:
            return
        margin = Decimal(str(funds["margin"])) * sell / planned if planned > 0 else ZERO
        if held is None:
            self._held_sale = _HeldSale(sell, margin, intent.detail.get("reason", ""), counted=(intent.client_id,))
        else:
            self._held_sale = replace(
                held, sell=held.sell + sell, margin=held.margin + margin, counted=(*held.counted, intent.client_id),
            )
        self._emit(
            "margin_sale_owed", Severity.WARNING, client_id=intent.client_id, sell=sell, margin=margin,
            reduced=Decimal(str(outcome.get("filled", 0))),
            explanation="the short was reduced for a margin sale whose reduction settled late: the sale is made now",
        )

    def _count_late_sale(self, intent: Intent, status: IntentStatus, outcome: dict[str, Any]) -> None:
        """Count a held margin sale's order that settled late as sold: its coins are not sold again, its proceeds move."""
        sale = self._held_sale
        if sale is None or status is not IntentStatus.DONE or self.market is None or intent.client_id in sale.counted:
            return
        counted = (*sale.counted, intent.client_id)
        if intent.kind == "transfer" and intent.detail.get("reason") == SALE_PROCEEDS:
            # The proceeds' transfer went through after all: they are moved, not owed.
            moved = Decimal(str(intent.detail.get("amount", "0")))
            self._held_sale = replace(sale, proceeds=max(ZERO, sale.proceeds - moved), counted=counted)
            return
        if not self._is_spot_sale(intent):
            return
        filled = Decimal(str(outcome.get("filled", 0)))
        if filled <= 0:
            return
        proceeds = filled * Decimal(str(outcome.get("average_price", 0))) - Decimal(str(outcome.get("fee", 0)))
        self._held_sale = replace(sale, sell=max(ZERO, sale.sell - filled), proceeds=sale.proceeds + proceeds, counted=counted)

    def _lookup(self, intent: Intent) -> Awaitable[Any]:
        """Look an intent up: an order by its client id, a margin change or transfer in the venue's history."""
        if intent.kind == "order":
            return self.port.fetch_order(intent.detail["symbol"], intent.client_id)
        if intent.kind == "withdrawal":
            return self._find_withdrawal(intent)
        return self.port.find_funds_movement(self._funds_query(intent))

    async def _find_withdrawal(self, intent: Intent) -> Withdrawal | None:
        """Look a withdrawal up by its client id on the account it was sent from."""
        if self.refill is None or self.refill.account != intent.detail.get("from_account"):
            raise ExchangeError(f"withdrawal {intent.client_id} was sent from account {intent.detail.get('from_account')}, "
                                "which this hedge no longer refills from: look it up there, then settle it by hand")
        return await self.refill.venue.find_withdrawal(intent.client_id, intent.created_at - self.FUNDS_WINDOW_SLACK)

    # Venue and journal clocks differ by at most the signed-request window; look a little wider.
    FUNDS_WINDOW_SLACK = 60.0
    # The longest window one order-history request may span (Binance spot allOrders: 24 hours).
    ORDER_HISTORY_SPAN = 23 * 3600.0

    def _order_history(self, intent: Intent) -> Awaitable[Any]:
        """Read the order history of an order intent's symbol from a little before it was sent until now.

        The history is stamped on the exchange's clock: the window is shifted onto it.
        """
        offset = self._clock_offset() or 0.0
        since = intent.created_at + offset - self.FUNDS_WINDOW_SLACK
        until = min(self.clock.now() + offset + self.FUNDS_WINDOW_SLACK, since + self.ORDER_HISTORY_SPAN)
        return self.port.fetch_order_history(intent.detail["symbol"], since, until)

    def _funds_query(self, intent: Intent) -> FundsQuery:
        """Describe a journaled margin change or transfer as the venue's history would show it."""
        detail = intent.detail
        claimed = frozenset(
            str(other.outcome["venue_id"])
            for other in self.journal.intents(self.account)
            if other.kind == intent.kind and other.status is IntentStatus.DONE and (other.outcome or {}).get("venue_id")
        )
        # The venue's history is stamped on the exchange's clock: search there, not on ours.
        offset = self._clock_offset() or 0.0
        common = {
            "kind": intent.kind,
            "amount": Decimal(detail["amount"]),
            "since": intent.created_at + offset - self.FUNDS_WINDOW_SLACK,
            "until": self.clock.now() + offset + self.FUNDS_WINDOW_SLACK,
            "claimed": claimed,
        }
        if intent.kind == "margin":
            quote = detail.get("asset") or (self.market.margin_asset if self.market else "USDT")
            return FundsQuery(asset=quote, symbol=detail["symbol"], side=PositionSide(detail["position_side"]), **common)
        return FundsQuery(
            asset=detail["asset"], source=Wallet(detail["from"]), destination=Wallet(detail["to"]), **common
        )

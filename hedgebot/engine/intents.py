"""The intent lifecycle: one action sent to the venue under a journaled client id, looked up, settled and reported.

Owns: journaling an intent before it is sent; sending it once under its client id (again only after an answer
that says it was not carried out); judging the venue's answer; looking an ambiguous one up by its client id (or
in the venue's history); journaling the outcome and the events that tell of it in one transaction; settling the
intents left open (`settle_open_intents`, the keeper's recovery after a lost answer or a restart). Where an
order's outcome is settled is here.

May not touch: the plan, the choice of actions, trading states or the hedge's holds. What an outcome means for
the hedge is the keeper's: the breakers are fed, a fill is tracked and a late margin sale is owed or counted
through the keeper (`_feed_breakers`, `_track_fill`, `_owe_late_sale`, `_count_late_sale`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import fields, replace
from decimal import Decimal
from typing import Any, Protocol

from hedgebot.clock import Clock, monotonic_of
from hedgebot.config import HedgeConfig
from hedgebot.domain.model import Market, PositionSide, Severity, Snapshot, Wallet
from hedgebot.engine import crashpoints
from hedgebot.engine.breakers import CircuitBreakers
from hedgebot.engine.refill import Refill
from hedgebot.engine.retry import Backoff
from hedgebot.engine.scheduling import ScheduleFollower
from hedgebot.exchange.port import (
    BadData,
    ClockSkew,
    DuplicateClientId,
    ExchangeBusy,
    ExchangeError,
    ExchangePort,
    Fenced,
    FundsQuery,
    OrderResult,
    OrderStatus,
    PermanentError,
    RateLimited,
    ServerStruggling,
    TransientError,
)
from hedgebot.exchange.withdrawals import Withdrawal
from hedgebot.ops.alerts import AlertBook
from hedgebot.ops.events import EventLog, EventRecord
from hedgebot.ops.figures import Figure, Precision, iso_utc, plain, render
from hedgebot.store.journal import Intent, IntentStatus, JournalStore, NewEvent


def says_busy(exc: TransientError) -> bool:
    """Tell whether a transient answer says the exchange is struggling (throttles, rate limits, -1001): it slows, never halts."""
    return isinstance(exc, (ExchangeBusy, RateLimited, ServerStruggling))


def not_carried_out(exc: TransientError) -> bool:
    """Tell whether a transient answer says the request was refused before execution, so the same id may go again."""
    return isinstance(exc, (RateLimited, ClockSkew, ExchangeBusy, Fenced))


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


class KeptHedge(Protocol):
    """What the lifecycle asks of the hedge it serves (the keeper): whose actions, their tags, and what an outcome means."""

    account: str
    hedge: HedgeConfig
    market: Market | None
    last_snapshot: Snapshot | None
    refill: Refill | None
    scheduled: ScheduleFollower
    _intent_tag: dict[str, Any]

    def _clock_offset(self) -> float | None: ...
    async def _read(self, call: Callable[[], Awaitable[Any]]) -> Any: ...
    def _venue_error(self, exc: ExchangeError) -> dict[str, str | None]: ...
    def _feed_breakers(
        self, kind: str, status: IntentStatus, outcome: dict[str, Any], at: float | None = None, trip: bool = True
    ) -> None: ...
    def _track_fill(
        self, kind: str, detail: dict[str, Any], status: IntentStatus, outcome: dict[str, Any], late: bool = False
    ) -> None: ...
    def _owe_late_sale(self, intent: Intent, status: IntentStatus, outcome: dict[str, Any]) -> None: ...
    def _count_late_sale(self, intent: Intent, status: IntentStatus, outcome: dict[str, Any]) -> None: ...


class IntentLifecycle:
    """Sends, looks up, settles and reports one hedge's actions through its journal and its venue.

    Composed by the keeper (`keeper.intents`): the keeper's execution, its unwind and its recovery all go
    through this one object. The keeper is given for its journal, venue, clock, alerts and counters.
    """

    def __init__(
        self,
        keeper: KeptHedge,
        journal: JournalStore,
        port: ExchangePort,
        clock: Clock,
        events: EventLog,
        alerts: AlertBook,
        breakers: CircuitBreakers,
        backoff: Backoff,
        *,
        send_attempts: int,
        unknown_alert_seconds: float,
    ) -> None:
        self.keeper = keeper
        self.journal = journal
        self.port = port
        self.clock = clock
        self.events = events
        self.alerts = alerts
        self.breakers = breakers
        self.backoff = backoff
        self.send_attempts = send_attempts
        # How long a lookup may miss an order that did execute (the venue's own figure), and when to cry out.
        self.settle_delay = float(getattr(port, "settle_seconds", 0.0))
        self.unknown_alert_seconds = unknown_alert_seconds
        self.lookup_failed = False
        self.busy_until = float("-inf")  # the exchange-busy breaker: until then only what lowers risk goes out
        self.monotonic = monotonic_of(clock)
        # When this process began each intent, on the monotonic clock: the settle delay and the unknown-outcome
        # alert count from it, so a forward step of the wall clock does not make a just-sent action look old.
        self.sent_monotonic: dict[str, float] = {}
        self.streamed: dict[str, OrderResult] = {}  # ended orders of open intents, as the user-data stream told

    async def run(
        self, kind: str, detail: dict[str, Any], send: Callable[[str], Awaitable[Any]]
    ) -> dict[str, Any] | None:
        """Journal the intent, send it, settle any ambiguity, journal the outcome; return it when done."""
        detail = {**detail, **self.keeper._intent_tag}
        if self.keeper.scheduled.window is not None:
            detail["window"] = self.keeper.scheduled.window.name  # the schedule's window this order serves
        held = self.keeper.last_snapshot.elsewhere if self.keeper.last_snapshot is not None else None
        if held is not None and held.known:
            # The coins counted elsewhere this action was sized on, and when they were counted.
            detail["exposure_elsewhere"], detail["exposure_elsewhere_at"] = str(held.amount), held.at
            detail["exposure_sources"] = {
                name: {"amount": render(amount, Figure.AMOUNT, Precision.of(self.keeper.market)), "at": iso_utc(at)}
                for name, amount, at in held.parts
            }
        sent_at = self.monotonic()
        intent = self.journal.begin(self.keeper.account, self.keeper.hedge.name, kind, detail)
        if kind == "withdrawal" and self.keeper.refill is not None:
            self.keeper.refill.record(intent)  # before it is sent: no other hedge withdraws from the account meanwhile
        self.sent_monotonic[intent.client_id] = sent_at
        crashpoints.reached("intent_journaled")
        status, outcome = await self._send(intent, send)
        crashpoints.reached("action_sent")
        self._settle(intent, status, outcome, [self._report(kind, intent.client_id, detail, status, outcome)])
        crashpoints.reached("outcome_journaled")
        self.keeper._feed_breakers(kind, status, outcome)
        self.keeper._track_fill(kind, detail, status, outcome)
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
        attempts = 1 if self.clock.now() < self.busy_until else self.send_attempts
        for attempt in range(1, attempts + 1):
            try:
                return self._answered(await send(cid))
            except DuplicateClientId as exc:
                return await self._look_for(intent, f"venue reports a duplicate: {exc}")
            except Fenced as exc:
                # Refused before it left this process: the lease lapsed, so it never goes (a standby may lead now).
                return IntentStatus.ABSENT, {"error": str(exc)}
            except TransientError as exc:
                last_error = self.keeper._venue_error(exc)["error"] or ""
                if says_busy(exc):
                    self._note_busy(last_error)
                if not not_carried_out(exc):
                    return await self._look_for(intent, last_error)
            except BadData as exc:
                if intent.kind == "withdrawal":  # money may have left already: only its id can say
                    return await self._look_for(intent, f"unreadable answer: {exc}")
                return IntentStatus.REJECTED, self.keeper._venue_error(exc)
            except PermanentError as exc:
                return IntentStatus.REJECTED, self.keeper._venue_error(exc)
            await self.clock.sleep(self.backoff.delay(attempt))
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
            self.busy_until = until
            self.alerts.raise_alert(
                "exchange_busy", Severity.WARNING,
                f"the exchange keeps answering busy ({error}); each action is tried once a tick until it is quiet",
            )

    async def _look_for(self, intent: Intent, error: str) -> tuple[IntentStatus, dict[str, Any]]:
        """Look up an intent whose answer was ambiguous: done when found, otherwise unknown until settled."""
        streamed = self.streamed.pop(intent.client_id, None)
        if streamed is not None:
            return self._answered(streamed)  # the user-data stream told its end while the answer was lost
        try:
            found = await self.keeper._read(functools.partial(self._lookup, intent))
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
        if intent.kind == "withdrawal" and self.keeper.refill is not None:
            self.keeper.refill.record(replace(intent, status=status, outcome=outcome, updated_at=self.clock.now()))
        now = self.clock.now()
        records = [EventRecord(now, self.keeper.account, self.keeper.hedge.name, kind, severity, fields) for kind, severity, fields in events]
        try:
            self.journal.finish(intent.client_id, status, outcome, [
                NewEvent(r.account, r.hedge, r.kind, r.severity.value, r.detail, at=now) for r in records
            ])
        finally:
            self.events.journaled_elsewhere(records)

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
        for intent in self.journal.open_intents(self.keeper.account, self.keeper.hedge.name):
            source = "lookup"
            streamed = self.streamed.pop(intent.client_id, None)
            try:
                found = streamed if streamed is not None else await self.keeper._read(functools.partial(self._lookup, intent))
            except ExchangeError as exc:
                self._cannot_settle(intent, f"cannot settle earlier action {intent.client_id} ({intent.kind})", exc)
                left.append(intent)
                continue
            if found is None and self._intent_age(intent) < self._settle_delay_of(intent):
                left.append(intent)
                continue
            if found is None and self.keeper._clock_offset() is None:
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
                    history = await self.keeper._read(functools.partial(self._order_history, intent))
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
            self.keeper._owe_late_sale(intent, status, outcome)
            self.keeper._count_late_sale(intent, status, outcome)
            self._settle(intent, status, outcome, told)
            self.keeper._track_fill(intent.kind, intent.detail, status, outcome, late=True)
        for settled in [c for c in self.sent_monotonic if c not in {i.client_id for i in left}]:
            del self.sent_monotonic[settled]
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
        sent = self.sent_monotonic.get(intent.client_id)
        wall_age = self.clock.now() - intent.created_at
        return wall_age if sent is None else min(wall_age, self.monotonic() - sent)

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
            "unsettled_actions", Severity.WARNING, f"{what}: {exc}", client_id=intent.client_id, **self.keeper._venue_error(exc),
        )

    def _lookup(self, intent: Intent) -> Awaitable[Any]:
        """Look an intent up: an order by its client id, a margin change or transfer in the venue's history."""
        if intent.kind == "order":
            return self.port.fetch_order(intent.detail["symbol"], intent.client_id)
        if intent.kind == "withdrawal":
            return self._find_withdrawal(intent)
        return self.port.find_funds_movement(self._funds_query(intent))

    async def _find_withdrawal(self, intent: Intent) -> Withdrawal | None:
        """Look a withdrawal up by its client id on the account it was sent from."""
        if self.keeper.refill is None or self.keeper.refill.account != intent.detail.get("from_account"):
            raise ExchangeError(f"withdrawal {intent.client_id} was sent from account {intent.detail.get('from_account')}, "
                                "which this hedge no longer refills from: look it up there, then settle it by hand")
        return await self.keeper.refill.venue.find_withdrawal(intent.client_id, intent.created_at - self.FUNDS_WINDOW_SLACK)

    # Venue and journal clocks differ by at most the signed-request window; look a little wider.
    FUNDS_WINDOW_SLACK = 60.0

    # The longest window one order-history request may span (Binance spot allOrders: 24 hours).
    ORDER_HISTORY_SPAN = 23 * 3600.0

    def _order_history(self, intent: Intent) -> Awaitable[Any]:
        """Read the order history of an order intent's symbol from a little before it was sent until now.

        The history is stamped on the exchange's clock: the window is shifted onto it.
        """
        offset = self.keeper._clock_offset() or 0.0
        since = intent.created_at + offset - self.FUNDS_WINDOW_SLACK
        until = min(self.clock.now() + offset + self.FUNDS_WINDOW_SLACK, since + self.ORDER_HISTORY_SPAN)
        return self.port.fetch_order_history(intent.detail["symbol"], since, until)

    def _funds_query(self, intent: Intent) -> FundsQuery:
        """Describe a journaled margin change or transfer as the venue's history would show it."""
        detail = intent.detail
        claimed = frozenset(
            str(other.outcome["venue_id"])
            for other in self.journal.intents(self.keeper.account)
            if other.kind == intent.kind and other.status is IntentStatus.DONE and (other.outcome or {}).get("venue_id")
        )
        # The venue's history is stamped on the exchange's clock: search there, not on ours.
        offset = self.keeper._clock_offset() or 0.0
        common = {
            "kind": intent.kind,
            "amount": Decimal(detail["amount"]),
            "since": intent.created_at + offset - self.FUNDS_WINDOW_SLACK,
            "until": self.clock.now() + offset + self.FUNDS_WINDOW_SLACK,
            "claimed": claimed,
        }
        if intent.kind == "margin":
            quote = detail.get("asset") or (self.keeper.market.margin_asset if self.keeper.market else "USDT")
            return FundsQuery(asset=quote, symbol=detail["symbol"], side=PositionSide(detail["position_side"]), **common)
        return FundsQuery(
            asset=detail["asset"], source=Wallet(detail["from"]), destination=Wallet(detail["to"]), **common
        )

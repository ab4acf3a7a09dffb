"""Trading states and breakers: active, reducing, halted, closed; what trips a breaker; the short changed outside.

Owns: the hedge's trading state (journaled), the circuit breakers' feeding and trips, fills tracked against the
short, a liquidation or deleveraging told by the venue or seen, and the re-open after it.
May not touch: the venue (it sends nothing), the journal's intents, the plan.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from hedgebot.domain.margin import rule_for
from hedgebot.domain.model import ZERO, MarginMode, PositionSide, Severity, Snapshot
from hedgebot.domain.trading import TradingState, strictest
from hedgebot.engine.breakers import Trip
from hedgebot.engine.surprises import FOREIGN, LIQUIDATION
from hedgebot.ops.figures import Figure, Precision, render
from hedgebot.store.journal import IntentStatus


@dataclass(frozen=True)
class Liquidation:
    """A liquidation of the hedge's short, as the venue reported it."""

    at: float
    price: Decimal
    amount: Decimal
    margin_lost: Decimal
    cause: str = ""  # how it is known: the exchange's own order, or the mark seen past the liquidation price


class TradingStates:
    """Holds the hedge's trading state and its breakers, and judges the short changed outside.

    A mixin of `Keeper` (engine/keeper.py): `self` is the keeper, whose state it reads and writes.
    """

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

    def _notice_lost_short(self, snapshot: Snapshot) -> None:
        """Note a short that vanished with no action of ours since it was last seen: liquidated (or closed by hand)."""
        seen = self._seen_short
        held = snapshot.leg_of(self.policy.side).size
        if seen is not None and seen > 0 and held == 0:
            self._reopening = True
        self._seen_short = held

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

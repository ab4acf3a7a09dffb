"""The tick loop: observe -> plan -> execute one action -> observe again, until stopped.

Owns: the loop (`run`, `tick`), the order of a tick's steps, the guards that filter the plan's actions in a tick
(unknown outcomes, clock, disk space, a failed top-up, a roll), the plan from a snapshot with the open actions
as if carried out, and the confirmation of a jumped price.
May not touch: how an action is sent or settled (engine/intents.py), how a contract is rolled (engine/contracts.py).
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from decimal import Decimal

from hedgebot.domain import policy
from hedgebot.domain import roll as rolling
from hedgebot.domain.in_flight import as_if_carried_out
from hedgebot.domain.model import (
    ZERO,
    Action,
    AdjustMargin,
    OrderSide,
    PlaceOrder,
    PositionSide,
    RaiseFromSpot,
    Severity,
    Snapshot,
    Transfer,
    Wallet,
)
from hedgebot.domain.trading import TradingState, is_margin_sale, is_margin_topup, lowers_exposure
from hedgebot.engine.beta_sizing import held_as_is
from hedgebot.engine.execution import moved_size
from hedgebot.engine.holds import BETA_HOLD, DISK_SPACE_CRITICAL, DISK_SPACE_LOW, JOURNAL_DAMAGED, JOURNAL_UNWRITABLE
from hedgebot.exchange.port import ExchangeError, IpBanned
from hedgebot.ops.figures import Precision
from hedgebot.store.integrity import damage_advice
from hedgebot.store.journal import JournalUnavailable
from hedgebot.store.space import SpaceLevel


class TickLoop:
    """Runs the hedge: ticks on the interval and on wake-ups, one verified action at a time.

    A mixin of `Keeper` (engine/keeper.py): `self` is the keeper, whose state it reads and writes.
    """

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
                    now = moved_size(snapshot, spot, position_side)
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

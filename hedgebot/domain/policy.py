"""Decide what one hedge should do next, from a snapshot and the user's policy.

The order of business is fixed, because the dangers are not equal:
1. an over-hedge (the account is net short) is reduced first;
2. then the short's margin is topped up if it is near liquidation;
3. then an under-hedge is grown;
4. and only when all is calm, spare margin may be released (opt-in).
The keeper executes the first action, observes again, and plans again, so
every step is verified against the venue before the next one is chosen.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from hedgebot.domain.margin import rule_for
from hedgebot.domain.model import (
    ZERO,
    Action,
    AdjustMargin,
    Alert,
    HedgePolicy,
    Leg,
    MarginMode,
    PlaceOrder,
    PositionSide,
    RaiseFromSpot,
    ReleaseMargin,
    Severity,
    Snapshot,
    Transfer,
    Wallet,
    ceil_to_step,
    floor_to_step,
)
from hedgebot.domain.exposure import exposure_from
from hedgebot.domain.lockstep import deposit_needed, largest_leg
from hedgebot.domain.runway import runway_price
from hedgebot.domain.sale import size_sale

@dataclass(frozen=True)
class Plan:
    """What the policy saw and what it wants done next, in priority order.

    `actions` holds the next steps only: at most one slice of each order the
    policy wants, and `orders_remaining` counts the slices still to come after
    them (the keeper re-plans after every step, so they are never built).
    """

    exposure: Decimal
    target: Decimal
    short: Decimal
    drift: Decimal
    in_band: bool
    liquidation_price: Decimal | None
    distance: Decimal | None
    actions: tuple[Action, ...]
    alerts: tuple[Alert, ...]
    notes: tuple[str, ...]
    blocked: str | None = None
    # The mark-price range over which this plan stays what the policy would
    # decide (until a balance, a leg or the wallet changes); None: no bound.
    valid_low: Decimal | None = None
    valid_high: Decimal | None = None
    orders_remaining: int = 0
    runway_price: Decimal | None = None
    runway: Decimal | None = None
    # The buffer holds the leg under its target: the deposit (margin asset) that lets it hedge in full again.
    deposit_needed: Decimal | None = None

    def holds_at(self, price: Decimal) -> bool:
        """Return whether the plan is still the policy's decision at mark `price` (balances unchanged)."""
        return (self.valid_low is None or price >= self.valid_low) and (self.valid_high is None or price <= self.valid_high)

    @property
    def drift_ratio(self) -> Decimal | None:
        """Return the drift as a fraction of the target (None with no target)."""
        return self.drift / self.target if self.target > 0 else None

# A runway warning clears only once the runway is this much (relatively) above the warning level:
# a price hovering at the level is one warning, not one per crossing.
RUNWAY_REARM = Decimal("1.1")


def exposure_of(snapshot: Snapshot, policy: HedgePolicy) -> Decimal:
    """Return the amount of the asset the hedge protects, in coins.

    On a coin-margined contract the coins posted as margin are still the user's coins: a short's exposure
    counts them (the futures wallet with its legs' PnL, in coins) beside the spot ones.
    """
    elsewhere = snapshot.elsewhere.amount if snapshot.elsewhere is not None else ZERO
    rule = rule_for(snapshot.market)
    price = snapshot.mark_price
    priced = price.is_finite() and price > 0
    long_coins = rule.coins(snapshot.long.size, price) if priced else snapshot.long.size
    coins = exposure_from(policy, snapshot.spot_asset, long_coins, elsewhere)
    if rule.inverse and policy.side is PositionSide.SHORT and policy.include_spot and priced:
        posted = snapshot.futures_wallet + sum((rule.pnl(leg, price) for leg in (snapshot.long, snapshot.short)), ZERO)
        coins += max(posted, ZERO)
    return coins


def _elsewhere_hold(snapshot: Snapshot, policy: HedgePolicy) -> tuple[Alert | None, bool, bool]:
    """Return the alert about coins counted elsewhere, and whether it holds the leg's growth, and its reduction too.

    A stale count (or one unreadable past its age limit) may not add risk: the leg is not grown on it, while
    reductions and margin top-ups go on. A count never read holds the leg both ways: reducing it on the coins
    that could be read would unhedge coins that are only unreadable, not gone. A read that failed while the last
    count is still fresh holds nothing, and says so.
    """
    held = snapshot.elsewhere
    if held is None:
        return None, False, False
    side = policy.side.value
    if not held.known:
        return Alert(
            Severity.CRITICAL, "exposure_unknown",
            f"the coins held elsewhere could not be read ({held.error or 'no count yet'}): the {side} is neither "
            "grown nor reduced until they are; margin top-ups go on",
        ), True, True
    if held.stale is not None:
        return Alert(
            Severity.CRITICAL, "exposure_stale",
            f"{held.stale}: the {side} is not grown on it until a fresh count arrives; reductions and margin top-ups go on",
        ), True, False
    if held.error is not None:
        return Alert(
            Severity.WARNING, "exposure_read_failed",
            f"{held.error}: the last count of the coins held elsewhere stands until it is too old to grow the {side} on",
        ), False, False
    return None, False, False


COIN_DIGITS = Decimal("0.00000001")  # an inverse leg's figures in coins, to the satoshi

# What a plan says when the margin sources cannot pay for the leg's target (a buffered leg then asks for a deposit).
_UNFUNDED = frozenset({"margin_unfunded", "buffer_lockstep", "under_hedged_no_margin", "reopen_unfunded"})


def _venues_diverge(snapshot: Snapshot, policy: HedgePolicy) -> Alert | None:
    """Return a warning when the holding's price sits further from the hedging mark than the buffer allows for.

    The buffer's floor counts on at most `divergence` between the two venues' prices; a wider gap leaves the leg
    thinner than the user sized it for. Nothing is held: the floor still stands on the hedging venue's own mark.
    """
    held, allowed = snapshot.elsewhere, policy.guard.divergence
    if held is None or not allowed:
        return None  # no buffer, or one that allows for no divergence: the spread is shown, not judged
    spread = held.spread(snapshot.mark_price)
    if spread is None or abs(spread) <= allowed:
        return None
    return Alert(
        Severity.WARNING, "venues_diverge",
        f"{held.price_source} prices the coins at {held.price}, {spread:+.2%} from the hedging mark "
        f"{snapshot.mark_price}: beyond the {allowed:.2%} divergence the buffer allows for, so its floor is thinner "
        "than sized (check both prices, or raise buffer.divergence)",
    )


def check_snapshot(snapshot: Snapshot, policy: HedgePolicy, now: float) -> str | None:
    """Return why nothing may trade on this snapshot, or None when it is sound (a price jump aside)."""
    price = snapshot.mark_price
    if not price.is_finite() or price <= 0:
        return f"absurd mark price {price}"
    age = now - snapshot.price_time
    if not age <= policy.staleness_seconds:  # also catches a missing (NaN) timestamp
        return f"stale mark price: {age:.1f}s old, limit {policy.staleness_seconds:.1f}s"
    if snapshot.read_at is not None and now - snapshot.read_at > policy.staleness_seconds:
        return f"stale balances: read {now - snapshot.read_at:.1f}s ago, limit {policy.staleness_seconds:.1f}s"
    for name in ("spot_asset", "spot_quote", "futures_wallet"):
        value: Decimal = getattr(snapshot, name)
        if not value.is_finite() or value < 0:
            return f"absurd {name} {value}"
    for leg in (snapshot.short, snapshot.long):
        if not leg.size.is_finite() or leg.size < 0 or (leg.size > 0 and leg.entry_price <= 0):
            return f"absurd {leg.side.value} leg: size {leg.size} entry {leg.entry_price}"
    return None


# An unconfirmed reading this far from the last accepted price (or closer to
# zero than its inverse) is taken for bad data: nothing at all acts on it.
_IMPLAUSIBLE_MOVE = Decimal(1)


def price_jump(snapshot: Snapshot, policy: HedgePolicy) -> tuple[str | None, bool]:
    """Return how the mark jumped beyond `max_jump` from the last accepted price (or None), and whether it is implausible."""
    previous = snapshot.previous_price
    if previous is None or previous <= 0:
        return None, False
    move = snapshot.mark_price / previous
    jump = abs(move - 1)
    if jump <= policy.max_jump:
        return None, False
    implausible = jump > _IMPLAUSIBLE_MOVE or 1 / move - 1 > _IMPLAUSIBLE_MOVE
    return f"mark price jumped {jump:.1%} ({previous} -> {snapshot.mark_price}), guard {policy.max_jump:.1%}", implausible


def first_slice(amount: Decimal, max_order: Decimal, step: Decimal, minimum: Decimal = ZERO) -> tuple[Decimal, int]:
    """Return the first of the near-equal slices of `amount` (on the step, none above `max_order`) and how many follow.

    Every slice is at least `minimum`. Where `amount` cannot be cut into such slices under the cap (a cap
    under twice the minimum), the first slice is the cap, or, when what it would leave could not be
    traded on its own, the whole amount: over the cap by less than the minimum.
    """
    if amount <= 0:
        return ZERO, 0
    cap = max(floor_to_step(max_order, step), step)
    count = int((amount / cap).to_integral_value(rounding=ROUND_CEILING))
    most = int(amount / minimum) if minimum > 0 else count  # the most slices that each still meet the minimum
    if count <= most:
        size = ceil_to_step(amount / count, step)
    else:
        size = cap if amount - cap >= minimum else amount
    pieces = int((amount / size).to_integral_value(rounding=ROUND_CEILING))
    return min(size, amount), pieces - 1


def _leg_risk(snapshot: Snapshot, side: PositionSide) -> tuple[Decimal | None, Decimal | None]:
    """Return the nearer liquidation price of the legs the hedge leg's margin backs, and the distance to it."""
    leg = snapshot.leg_of(side)
    if not leg.is_open:
        return None, None
    wallet, others = snapshot.backing_of(side)
    return rule_for(snapshot.market).nearer_liquidation(wallet, [leg, *others], snapshot.market.brackets, snapshot.mark_price)


def _fund_margin(snapshot: Snapshot, policy: HedgePolicy, needed: Decimal, target: Decimal) -> tuple[list[Action], list[Alert]]:
    """Choose where `needed` stablecoin of margin comes from, taking the guard's sources in their configured order."""
    guard = policy.guard
    market = snapshot.market
    step = market.margin_step
    isolated = snapshot.margin_mode is MarginMode.ISOLATED
    from_wallet = ZERO
    moved = ZERO
    sale: SaleSize | None = None
    sale_first = False
    remaining = needed
    for source in guard.sources:
        if remaining <= 0:
            break
        if source == "futures_wallet" and isolated:
            from_wallet = min(remaining, max(floor_to_step(snapshot.futures_free, step), ZERO))
            remaining -= from_wallet
        elif source == "spot_stablecoin":
            moved = min(remaining, floor_to_step(snapshot.spot_quote, step))
            remaining -= moved
        elif source == "sell_spot":
            sale = size_sale(snapshot, policy.sale_ratio, needed - remaining, target)
            if sale is not None:
                sale_first = from_wallet == 0 and moved == 0
                remaining = sale.shortfall
    actions: list[Action] = []
    if moved > 0:
        actions.append(Transfer(market.margin_asset, moved, Wallet.SPOT, Wallet.FUTURES, "margin top-up"))
    covered = from_wallet + moved
    if isolated and covered > 0:
        source = "futures wallet" if moved == 0 else f"futures wallet, with {moved} {market.margin_asset} moved from spot"
        actions.append(AdjustMargin(policy.side, covered, "margin top-up", source))
    if sale is not None:
        raise_action = RaiseFromSpot(
            sale.sell, sale.reduce, f"margin top-up: raise {needed - covered} {market.margin_asset} from spot",
            floor_to_step(sale.margin, step) if isolated else ZERO,
        )
        # The configured order decides what runs first; the keeper re-plans after each step.
        actions.insert(0, raise_action) if sale_first else actions.append(raise_action)
    alerts: list[Alert] = []
    if remaining > 0:
        alerts.append(
            Alert(
                Severity.CRITICAL,
                "margin_unfunded",
                f"{policy.side.value} needs {_on_step(needed, market.margin_step, ROUND_CEILING)} {market.margin_asset} more margin to sit {target:.0%} "
                f"from liquidation; the sources ({', '.join(guard.sources) or 'none'}) can cover only "
                f"{_on_step(needed - remaining, market.margin_step, ROUND_FLOOR)}",
            )
        )
    return actions, alerts


def valid_price_range(
    snapshot: Snapshot, policy: HedgePolicy, liquidation: Decimal | None, settled: bool,
    runway: Decimal | None = None, trigger: Decimal | None = None, runway_warned: bool = False,
) -> tuple[Decimal | None, Decimal | None]:
    """Return the mark-price range over which a plan stays valid while balances and legs stay as they are.

    A coin-denominated hedge's drift does not move with the price, so once it
    is settled (in band, nothing to do) only the price-driven rules can change
    the decision: the jump guard (measured from this mark), the margin guard's
    trigger (the distance to the nearer liquidation, above or below, falls
    below it), its release (the distance grows past it) and the runway
    warning. A plan that is not settled is valid at this exact mark only.
    """
    price = snapshot.mark_price
    if not settled or not price.is_finite() or price <= 0 or snapshot.market.inverse:
        # An inverse leg's size in coins moves with the price: its drift may leave the band at any mark.
        return price, price
    low = price * (1 - policy.max_jump)
    high = price * (1 + policy.max_jump)
    guard = policy.guard
    trigger = guard.trigger if trigger is None else trigger
    if guard.enabled and liquidation is not None and liquidation >= price:
        # distance = (liquidation - mark) / mark, so distance < d  <=>  mark > liquidation / (1 + d)
        high = min(high, liquidation / (1 + trigger))
        if guard.release is not None:
            low = max(low, liquidation / (1 + guard.release))
    elif guard.enabled and liquidation is not None and trigger < 1:
        # a liquidation below the mark: distance = (mark - liquidation) / mark < d  <=>  mark < liquidation / (1 - d)
        low = max(low, liquidation / (1 - trigger))
        if guard.release is not None and guard.release < 1:
            high = min(high, liquidation / (1 - guard.release))
    if runway is not None and runway.is_finite() and policy.side is PositionSide.LONG:
        # A long's runway lies below the mark: fraction = 1 - runway / mark falls under the warning below runway / (1 - w).
        if guard.runway_warning < 1:
            low = max(low, runway / (1 - guard.runway_warning))
        if runway_warned and guard.runway_warning * RUNWAY_REARM < 1 and runway > 0:
            high = min(high, runway / (1 - guard.runway_warning * RUNWAY_REARM))  # the warning clears above this mark
    elif runway is not None and runway.is_finite():
        high = min(high, runway / (1 + guard.runway_warning))
        if runway_warned:
            low = max(low, runway / (1 + guard.runway_warning * RUNWAY_REARM))  # the warning clears below this mark
    return low, high


def plan(
    snapshot: Snapshot, policy: HedgePolicy, now: float, rebalancing: bool = False, reopening: bool = False,
    unfunded: bool = False, runway_warned: bool = False,
) -> Plan:
    """Return the plan for one hedge at time `now` (seconds, same clock as the snapshot).

    `rebalancing` says a rebalance is under way: once the drift has left the
    band, the keeper trades all the way back to the target, not just to the
    edge of the band, so the band is ignored until the target is reached.
    `reopening` says the short was lost (liquidated) and is being opened
    again: it is opened only when its margin can reach the guard's target
    distance, and topped up to that target at once.
    `unfunded` says the guard's sources ran dry earlier and that alert is still
    up: it stays up, as the same critical alert, until the runway is healthy
    again (a person added money, or the price fell well back), so a price that
    wanders back and forth over the point where the money ran out raises one
    alert, not one per crossing.
    `runway_warned` says the `runway_short` warning is up: it stays up until the
    runway is `RUNWAY_REARM` times the warning level above the mark, so a price
    hovering at the level is one warning.

    On a price that jumped beyond `max_jump` and is not yet confirmed, only
    the actions that lower risk are planned (reducing an over-hedge, adding
    margin from stablecoin): acting on a wrong price then costs a transfer,
    while waiting can cost the leg. `blocked` still says why.
    """
    market = snapshot.market
    price = snapshot.mark_price
    rule = rule_for(market)
    # The policy sizes in the leg's own units (coins for a linear contract, face value for an inverse one);
    # the plan reports coins, as the user reads them.
    priced = price.is_finite() and price > 0
    exposure = rule.size_for(exposure_of(snapshot, policy), price) if priced or not rule.inverse else ZERO
    if rule.inverse and priced:
        # Order limits are configured in coins: in the leg's face value at this price.
        policy = replace(policy, max_order=rule.size_for(policy.max_order, price), min_order=rule.size_for(policy.min_order, price))
    target = policy.ratio * exposure
    side = policy.side
    hedge_leg = snapshot.leg_of(side)
    short = hedge_leg.size  # the hedge leg: the short, or the long of a long hedge
    drift = short - target
    in_band = abs(drift) <= policy.band * target
    # Rebalancing aims at the target itself. An inverse leg's trading costs are paid in the hedged coins and lower the
    # target as the order fills: its growth leaves room for the fee (below), but the fill's distance from the mark is
    # not known before it, and buying back what it leaves over would pay the cost again: twice the fee is tolerated.
    band_width = (2 * market.taker_fee * target if rule.inverse else ZERO) if rebalancing else policy.band * target
    liquidation, distance = (None, None)
    runway: Decimal | None = None
    blocked = check_snapshot(snapshot, policy, now)
    jumped: str | None = None
    if blocked is None:
        jumped, implausible = price_jump(snapshot, policy)
        if implausible:
            blocked, jumped = jumped, None
    if blocked is None:
        liquidation, distance = _leg_risk(snapshot, side)
        runway = runway_price(snapshot, policy)
    # How far the price may move toward the leg's liquidation before the sources run dry: up for a short, down for a long.
    runway_fraction: Decimal | None = None
    if runway is not None and runway.is_finite():
        runway_fraction = runway / price - 1 if side is PositionSide.SHORT else 1 - runway / price
    beyond = "above" if side is PositionSide.SHORT else "below"
    remaining = 0
    # Re-opening after a liquidation tops the margin up straight to the target.
    trigger = policy.guard.target if reopening else policy.guard.trigger

    def result(actions: list[Action], alerts: list[Alert], notes: list[str]) -> Plan:
        settled = in_band and not actions and blocked is None and jumped is None
        low, high = valid_price_range(snapshot, policy, liquidation, settled, runway, trigger, runway_warned)
        # A buffered leg its sources cannot back: the deposit that would let it keep the whole target.
        short_of_money = policy.guard.floor is not None and any(a.code in _UNFUNDED for a in alerts)
        def coins(size: Decimal) -> Decimal:
            if not rule.inverse:
                return size
            return rule.coins(size, price).quantize(COIN_DIGITS) if priced else ZERO

        return Plan(
            coins(exposure), coins(target), coins(short), coins(drift), in_band, liquidation, distance, tuple(actions),
            tuple(alerts), tuple(notes),
            blocked or jumped, low, high, remaining, runway, runway_fraction,
            deposit_needed=deposit_needed(snapshot, policy, target, policy.guard.target) if short_of_money else None,
        )

    if blocked is not None:
        return result([], [], [blocked])

    actions: list[Action] = []
    alerts: list[Alert] = []
    notes: list[str] = [jumped] if jumped else []
    min_trade = max(policy.min_order, market.min_tradeable(price))
    step = market.amount_step
    largest = floor_to_step(policy.max_order, step)

    elsewhere_alert, holds_growth, holds_both_ways = _elsewhere_hold(snapshot, policy)
    if elsewhere_alert is not None:
        alerts.append(elsewhere_alert)
    diverged = _venues_diverge(snapshot, policy)
    if diverged is not None:
        alerts.append(diverged)

    # 1. Over-hedged: the account is net short. Reduce toward the target,
    # rounding the reduction up (ending at or under the target, never above).
    if drift > band_width and holds_both_ways:
        notes.append("over the target, but the coins held elsewhere are unknown: not reduced")
    elif drift > band_width:
        reduce = min(max(ceil_to_step(drift, step), min_trade), short)
        if 0 < short - reduce < market.min_amount:
            reduce = short  # a leg under the minimum could never be closed by an order
        if largest < market.min_amount:
            alerts.append(_below_minimum(policy, market.min_amount))
        else:
            piece, remaining = first_slice(reduce, policy.max_order, step, market.min_amount)
            actions.append(PlaceOrder(side.closing, piece, side, True, f"over-hedged: reduce {side.value}"))

    # 2. Margin: keep the short away from liquidation (straight to the target when re-opening).
    guard = policy.guard
    if guard.enabled and distance is not None and distance < trigger:
        wallet, others = snapshot.backing_of(side)
        needed = rule_for(market).topup_needed(hedge_leg, others, wallet, price, guard.target, market.brackets, market.margin_step)
        if needed > 0:
            fund, shortfall = _fund_margin(snapshot, policy, needed, guard.target)
            if jumped:
                fund = [a for a in fund if not isinstance(a, RaiseFromSpot)]  # no coin is sold on an unconfirmed price
            actions.extend(fund)
            alerts.extend(shortfall)
            if shortfall and guard.floor is not None:
                order, alert = _lockstep(snapshot, policy, min_trade, distance, target)
                if jumped:
                    order = None  # no buy-back on an unconfirmed price (bad data would unhedge the coins): next look
                if order is not None:
                    actions.insert(0, order)  # the buy-back first: it frees the margin the top-up then puts back
                if alert is not None:
                    alerts.append(alert)

    if (
        unfunded and guard.enabled and runway_fraction is not None and runway_fraction < guard.runway_warning
        and not any(a.code == "margin_unfunded" for a in alerts)
    ):
        alerts.append(
            Alert(
                Severity.CRITICAL, "margin_unfunded",
                f"the margin sources ran dry: they keep the {side.value} above its {guard.trigger:.0%} trigger only "
                f"{'up' if side is PositionSide.SHORT else 'down'} to {_on_step(runway, market.price_step, _toward_mark(side))} ({runway_fraction:.2%} {beyond} the mark); add {market.margin_asset} to a source",
            )
        )

    # 3. Under-hedged: grow the short, rounding down (never past the target); risk-adding, so never on a jump.
    if drift < -band_width and not jumped:
        gap = -drift
        if rule.inverse:
            # Its fee, paid in the hedged coins, lowers the target by ratio x fee as the order fills: leave room for it.
            gap = gap / (1 + policy.ratio * market.taker_fee)
        grow = floor_to_step(gap, step)
        if holds_growth:
            pass  # its alert says why the leg is not grown
        elif grow < min_trade:
            notes.append(
                f"drift {_leg_amount(snapshot, drift)} is outside the band but below the minimum order "
                f"{_leg_amount(snapshot, min_trade)}; not traded"
            )
        elif largest < min_trade:
            alerts.append(_below_minimum(policy, min_trade))
        elif reopening and short == 0 and (hold := _reopen_hold(snapshot, policy, target)) is not None:
            alerts.append(hold)
        else:
            if guard.floor is not None:
                # The buffer: grow only as far as what backs the leg keeps it the guard's target from liquidation.
                room = floor_to_step(max(largest_leg(snapshot, policy, guard.target) - short, ZERO), step)
                if room < grow:
                    alerts.append(Alert(
                        Severity.WARNING, "under_hedged_no_margin",
                        f"the buffer: what backs the {side.value} keeps it {guard.target:.0%} from liquidation only up to "
                        f"{_leg_amount(snapshot, short + room, ROUND_FLOOR)} of the {_leg_amount(snapshot, target)} target",
                    ))
                    if not any(a.code == "buffer_lockstep" for a in alerts):
                        # What it is held at: as far as this plan grows it (an opening's first order included).
                        held = _leg_amount(snapshot, short + room, ROUND_FLOOR)
                        alerts.append(_buffer_held(snapshot, policy, f"the {side.value} is held at {held}", target))
                    grow = room
            if grow >= min_trade:
                grown, remaining = _grow_short(snapshot, policy, grow, min_trade, alerts, notes)
                actions.extend(grown)
    elif drift != 0 and in_band:
        if rule.inverse:  # face value means little to a reader: coins at this price
            notes.append(f"drift {rule.coins(drift, price):.4f} within band ±{rule.coins(band_width, price):.4f} {market.base}")
        else:
            notes.append(f"drift {_on_step(drift, step)} within band ±{_on_step(band_width, step)}")

    # 4. Release spare margin, only when nothing else is pending.
    if not actions and not jumped and guard.enabled and guard.release is not None and distance is not None and distance > guard.release:
        actions.extend(_release(snapshot, policy))

    # Once warned, the warning holds until the runway is clearly healthy again, and is not
    # dropped (to be raised anew) while a critical alert says more.
    runway_level = guard.runway_warning * RUNWAY_REARM if runway_warned else guard.runway_warning
    if (
        runway_fraction is not None and runway_fraction < runway_level
        and (runway_warned or not any(a.severity is Severity.CRITICAL for a in alerts))
    ):
        alerts.append(
            Alert(
                Severity.WARNING, "runway_short",
                f"the margin sources keep the {side.value} above its {guard.trigger:.0%} trigger only "
                f"{'up' if side is PositionSide.SHORT else 'down'} to {_on_step(runway, market.price_step, _toward_mark(side))} "
                f"({runway_fraction:.2%} {beyond} the mark; warning below {guard.runway_warning:.0%})",
            )
        )
    return result(actions, alerts, notes)


def _leg_amount(snapshot: Snapshot, units: Decimal, rounding: str = ROUND_HALF_EVEN) -> str:
    """Return a leg amount as a person reads it: on the step, or (an inverse leg's face value) in coins at the mark."""
    market = snapshot.market
    if market.inverse and snapshot.mark_price.is_finite() and snapshot.mark_price > 0:
        coins = rule_for(market).coins(units, snapshot.mark_price)
        return f"{format(coins.quantize(COIN_DIGITS, rounding=rounding), 'f')} {market.base}"
    return _on_step(units, market.amount_step, rounding)


def _on_step(value: Decimal, step: Decimal, rounding: str = ROUND_HALF_EVEN) -> str:
    """Return an amount as a person reads it: at the step's decimal places, never an exponent.

    A figure a user acts on is rounded to the safe side: what is needed or missing up (a deposit of the shown
    amount closes the gap), what is held or covered down.
    """
    places = Decimal(1).scaleb(min(int(step.normalize().as_tuple().exponent), 0))
    return format(value.quantize(places, rounding=rounding), "f")


def _toward_mark(side: PositionSide) -> str:
    """Return the rounding that moves a runway price toward the mark (it never reads as more room than there is)."""
    return ROUND_FLOOR if side is PositionSide.SHORT else ROUND_CEILING


# How far beyond the buffer's floor a lockstep buy-back aims (a fraction of the price, like the floor itself).
LOCKSTEP_MARGIN = Decimal("0.005")


def _lockstep(
    snapshot: Snapshot, policy: HedgePolicy, min_trade: Decimal, distance: Decimal, target: Decimal,
) -> tuple[PlaceOrder | None, Alert | None]:
    """Plan the buy-back that keeps the leg the buffer's floor from liquidation, with its alert (None above the floor).

    Called while the guard's sources cannot fund the leg. Below the floor the leg is bought back just enough that
    what backs it keeps the floor (one market order: it lowers risk, so it is not sliced). Afterwards the growth cap
    keeps the same alert up while the leg stays under its target, until a deposit (or a fall) lets it grow back.
    """
    guard = policy.guard
    assert guard.floor is not None
    side = policy.side
    leg = snapshot.leg_of(side)
    market = snapshot.market
    step = market.amount_step
    order = None
    kept = ""
    if distance < guard.floor:
        # Aimed a little beyond the floor: the fill's slippage must not leave the rest under it, for a second buy-back.
        cut = leg.size - largest_leg(snapshot, policy, guard.floor + LOCKSTEP_MARGIN)
        if cut > 0:
            cut = min(leg.size, max(cut, min_trade))  # the exchange's minimum: a little more bought back, never less
            if 0 < leg.size - cut < market.min_amount:
                cut = leg.size
            order = PlaceOrder(side.closing, cut, side, True, f"lockstep: keep the {side.value} {guard.floor:.0%} from liquidation")
            kept = f"buying back {_leg_amount(snapshot, cut)} of {_leg_amount(snapshot, leg.size)}"
    if order is None:
        return None, None  # above the floor: the growth cap keeps the alert up while the leg is under its target
    return order, _buffer_held(snapshot, policy, kept, target)


def _buffer_held(snapshot: Snapshot, policy: HedgePolicy, kept: str, target: Decimal) -> Alert:
    """Return the critical alert that stays up while the buffer holds the leg under its target, asking for a deposit."""
    guard = policy.guard
    step = snapshot.market.amount_step
    refill = f"{guard.refill_seconds / 60:.0f} min" if guard.refill_seconds else "the refill time"
    return Alert(
        Severity.CRITICAL, "buffer_lockstep",
        f"the margin cannot keep the whole {policy.side.value} {guard.floor:.0%} from liquidation (the buffer), and a "
        f"deposit takes {refill} to arrive: {kept} of the {_leg_amount(snapshot, target)} target so the rest keeps it; deposit "
        f"{deposit_needed(snapshot, policy, target, guard.target)} {snapshot.market.margin_asset} to this account to hedge in "
        "full again",
    )


def _below_minimum(policy: HedgePolicy, minimum: Decimal) -> Alert:
    return Alert(
        Severity.WARNING, "order_below_minimum",
        f"max_order {policy.max_order} is below the market's minimum order {minimum} at this price; nothing can be traded",
    )


def _reopen_hold(snapshot: Snapshot, policy: HedgePolicy, size: Decimal) -> Alert | None:
    """Return the alert that holds a re-open whose margin the sources cannot bring to the guard's target, or None."""
    market = snapshot.market
    price = snapshot.mark_price
    guard = policy.guard
    leg = Leg(policy.side, size, price)
    if snapshot.margin_mode is MarginMode.ISOLATED:
        required = rule_for(market).margin_gap([leg], ZERO, price, guard.target, market.brackets)
        available = snapshot.futures_free
    else:
        _, others = snapshot.backing_of(policy.side)
        required = rule_for(market).margin_gap([leg, *others], ZERO, price, guard.target, market.brackets)
        available = snapshot.cross_backing
    required += rule_for(market).notional(size, price) * market.taker_fee
    if guard.from_spot_stablecoin:
        available += snapshot.spot_quote
    if available >= required:
        return None
    return Alert(
        Severity.CRITICAL, "reopen_unfunded",
        f"the {policy.side.value} was lost; re-opening {_leg_amount(snapshot, size)} needs "
        f"{_on_step(required, market.margin_step, ROUND_CEILING)} {market.margin_asset} of margin to sit {guard.target:.0%} "
        f"from liquidation, the sources hold {_on_step(available, market.margin_step, ROUND_FLOOR)}: "
        f"{_on_step(required - available, market.margin_step, ROUND_CEILING)} "
        f"{market.margin_asset} missing. Holding with no short (the coins are kept) until it is funded",
    )


def _release(snapshot: Snapshot, policy: HedgePolicy) -> list[Action]:
    """Plan the release of margin beyond the guard's target (and, isolated, beyond initial margin)."""
    market = snapshot.market
    price = snapshot.mark_price
    wallet, others = snapshot.backing_of(policy.side)
    spare = rule_for(market).release_possible(
        snapshot.leg_of(policy.side), others, wallet, price, policy.guard.target, market.brackets, market.margin_step
    )
    if snapshot.margin_mode is MarginMode.CROSS:
        spare = min(spare, floor_to_step(snapshot.futures_free, market.margin_step))
        return [Transfer(market.margin_asset, spare, Wallet.FUTURES, Wallet.SPOT, "release spare margin")] if spare > 0 else []
    spare = _isolated_spare(snapshot, policy)
    return [ReleaseMargin(market.margin_asset, spare, "release spare margin")] if spare > 0 else []


def _isolated_spare(snapshot: Snapshot, policy: HedgePolicy) -> Decimal:
    """Return the isolated margin above the guard's target distance that may be taken off the short."""
    market = snapshot.market
    price = snapshot.mark_price
    short = snapshot.leg_of(policy.side)
    if snapshot.margin_mode is not MarginMode.ISOLATED or not short.is_open or not policy.guard.enabled:
        return ZERO
    spare = rule_for(market).release_possible(short, [], short.margin, price, policy.guard.target, market.brackets, market.margin_step)
    # Binance lets isolated margin go down to the initial margin at the mark, never below.
    rule = rule_for(market)
    above_initial = short.margin + min(rule.pnl(short, price), ZERO) - rule.notional(short.size, price) / snapshot.leverage
    return max(min(spare, floor_to_step(above_initial, market.margin_step)), ZERO)


def _sale_to_fund(snapshot: Snapshot, policy: HedgePolicy, cost_per_unit: Decimal, funds: Decimal) -> Decimal:
    """Return the coins to sell so that `funds` plus the proceeds open the whole (smaller) target: N/(L+1) from nothing.

    Selling x coins of a counted holding lowers the target by ratio * x and brings x * price less the fee:
    (target - short - ratio * x) * cost_per_unit = funds + x * price * (1 - fee).
    """
    market = snapshot.market
    price = snapshot.mark_price
    per_coin = policy.sale_ratio
    target = policy.sellable_target_ratio * exposure_of(snapshot, policy)
    needed = (target - snapshot.short.size) * cost_per_unit - funds
    if needed <= 0:
        return ZERO
    coins = needed / (price * (1 - market.taker_fee) + per_coin * cost_per_unit)
    return min(ceil_to_step(coins, market.amount_step), floor_to_step(snapshot.spot_asset, market.amount_step))


def _grow_short(
    snapshot: Snapshot,
    policy: HedgePolicy,
    grow: Decimal,
    min_trade: Decimal,
    alerts: list[Alert],
    notes: list[str],
) -> tuple[list[Action], int]:
    """Plan the next order (or the transfer that funds it) that grows the short by `grow`, and count the slices after it."""
    market = snapshot.market
    price = snapshot.mark_price
    step = market.amount_step
    per_unit = rule_for(market).notional(Decimal(1), price)  # one unit of the leg, in the margin asset
    cost_per_unit = per_unit / Decimal(snapshot.leverage) + per_unit * market.taker_fee * 2
    affordable = floor_to_step(snapshot.futures_free / cost_per_unit, step)
    if affordable < grow:
        # Margin stuck on the short above the guard's target funds its growth first.
        spare = _isolated_spare(snapshot, policy)
        if spare >= market.margin_step:
            return [AdjustMargin(policy.side, -spare, f"fund the {policy.side.value}'s growth: margin above the guard's target")], 0
        missing = ceil_to_step((grow - affordable) * cost_per_unit, market.margin_step)
        movable = floor_to_step(snapshot.spot_quote, market.margin_step) if policy.guard.from_spot_stablecoin else ZERO
        if movable > 0:
            return [Transfer(market.margin_asset, min(missing, movable), Wallet.SPOT, Wallet.FUTURES, f"fund the {policy.side.value}")], 0
        guard = policy.guard
        if guard.fund_target_by_selling and guard.sell_spot:
            sell = _sale_to_fund(snapshot, policy, cost_per_unit, snapshot.futures_free)
            if sell >= max(min_trade, market.min_amount):
                return [RaiseFromSpot(sell, ZERO, "fund the target: sell spot so the rest is fully hedged")], 0
        alerts.append(
            Alert(
                Severity.WARNING,
                "under_hedged_no_margin",
                f"{policy.side.value} should grow by {_leg_amount(snapshot, grow)} but the futures wallet affords only "
                f"{_leg_amount(snapshot, affordable, ROUND_FLOOR)}",
            )
        )
        grow = affordable
        if grow < min_trade:
            notes.append(f"no margin to grow the {policy.side.value}")
            return [], 0
    piece, remaining = first_slice(grow, policy.max_order, step, min_trade)
    side = policy.side
    return [PlaceOrder(side.opening, piece, side, False, f"under-hedged: grow {side.value}")], remaining

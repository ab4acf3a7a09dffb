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

from dataclasses import dataclass
from decimal import Decimal

from hedgebot.domain import margin as mm
from hedgebot.domain.model import (
    ZERO,
    Action,
    AdjustMargin,
    Alert,
    HedgePolicy,
    MarginMode,
    OrderSide,
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

# Extra stablecoin asked for when selling spot to fund margin: covers fees and
# the move of the price between planning and the sale.
_SALE_BUFFER = Decimal("0.02")


@dataclass(frozen=True)
class Plan:
    """What the policy saw and what it wants done, in priority order."""

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

    def holds_at(self, price: Decimal) -> bool:
        """Return whether the plan is still the policy's decision at mark `price` (balances unchanged)."""
        return (self.valid_low is None or price >= self.valid_low) and (self.valid_high is None or price <= self.valid_high)

    @property
    def drift_ratio(self) -> Decimal | None:
        """Return the drift as a fraction of the target (None with no target)."""
        return self.drift / self.target if self.target > 0 else None


def exposure_of(snapshot: Snapshot, policy: HedgePolicy) -> Decimal:
    """Return the amount of the asset the hedge protects."""
    exposure = policy.offset
    if policy.include_spot:
        exposure += snapshot.spot_asset
    if policy.include_perp_long:
        exposure += snapshot.long.size
    return max(exposure, ZERO)


def check_snapshot(snapshot: Snapshot, policy: HedgePolicy, now: float) -> str | None:
    """Return why nothing may trade on this snapshot, or None when it is sound."""
    price = snapshot.mark_price
    if not price.is_finite() or price <= 0:
        return f"absurd mark price {price}"
    age = now - snapshot.price_time
    if age > policy.staleness_seconds:
        return f"stale mark price: {age:.1f}s old, limit {policy.staleness_seconds:.1f}s"
    previous = snapshot.previous_price
    if previous is not None and previous > 0:
        jump = abs(price / previous - 1)
        if jump > policy.max_jump:
            return f"mark price jumped {jump:.1%} ({previous} -> {price}), guard {policy.max_jump:.1%}"
    for name in ("spot_asset", "spot_quote", "futures_wallet"):
        value: Decimal = getattr(snapshot, name)
        if not value.is_finite() or value < 0:
            return f"absurd {name} {value}"
    for leg in (snapshot.short, snapshot.long):
        if not leg.size.is_finite() or leg.size < 0 or (leg.size > 0 and leg.entry_price <= 0):
            return f"absurd {leg.side.value} leg: size {leg.size} entry {leg.entry_price}"
    return None


def _slices(amount: Decimal, max_order: Decimal, step: Decimal) -> list[Decimal]:
    """Split `amount` into near-equal slices on the step, none above `max_order`."""
    if amount <= 0:
        return []
    cap = max(floor_to_step(max_order, step), step)
    count = int((amount / cap).to_integral_value(rounding="ROUND_CEILING"))
    size = ceil_to_step(amount / count, step)
    out: list[Decimal] = []
    remaining = amount
    while remaining > 0:
        piece = min(size, remaining)
        out.append(piece)
        remaining -= piece
    return out


def _short_risk(snapshot: Snapshot) -> tuple[Decimal | None, Decimal | None]:
    """Return the short's liquidation price and distance to it."""
    short = snapshot.short
    if not short.is_open:
        return None, None
    brackets = snapshot.market.brackets
    if snapshot.margin_mode is MarginMode.ISOLATED:
        price = mm.liquidation_price_of(short.margin, [short], brackets)
    else:
        price = mm.liquidation_price_of(snapshot.futures_wallet, [short, snapshot.long], brackets)
    return price, mm.distance_to_liquidation(PositionSide.SHORT, price, snapshot.mark_price)


def _margin_wallet_and_others(snapshot: Snapshot) -> tuple[Decimal, list]:
    if snapshot.margin_mode is MarginMode.ISOLATED:
        return snapshot.short.margin, []
    return snapshot.futures_wallet, [snapshot.long]


def _fund_margin(snapshot: Snapshot, policy: HedgePolicy, needed: Decimal, target: Decimal) -> tuple[list[Action], list[Alert]]:
    """Choose where `needed` stablecoin of margin comes from, in the configured order."""
    guard = policy.guard
    market = snapshot.market
    step = market.margin_step
    isolated = snapshot.margin_mode is MarginMode.ISOLATED
    actions: list[Action] = []
    covered = ZERO
    if isolated and guard.from_futures_wallet:
        covered = min(needed, floor_to_step(snapshot.futures_free, step))
    from_spot = ZERO
    if guard.from_spot_stablecoin and covered < needed:
        from_spot = min(needed - covered, floor_to_step(snapshot.spot_quote, step))
        if from_spot > 0:
            actions.append(Transfer(market.quote, from_spot, Wallet.SPOT, Wallet.FUTURES, "margin top-up"))
    covered += from_spot
    if isolated and covered > 0:
        source = "futures wallet" if from_spot == 0 else f"futures wallet, with {from_spot} {market.quote} moved from spot"
        actions.append(AdjustMargin(PositionSide.SHORT, covered, "margin top-up", source))
    shortfall = needed - covered
    alerts: list[Alert] = []
    if shortfall > 0 and guard.sell_spot and snapshot.spot_asset > 0:
        price = snapshot.mark_price
        sell = ceil_to_step(shortfall * (1 + _SALE_BUFFER) / price, market.amount_step)
        sell = max(sell, market.min_tradeable(price))
        sell = min(sell, floor_to_step(snapshot.spot_asset, market.amount_step))
        reduce = min(ceil_to_step(sell * policy.ratio, market.amount_step), snapshot.short.size)
        if sell > 0:
            # Selling comes last: transfers already planned run first and the
            # sale only makes up what they cannot.
            actions.append(RaiseFromSpot(sell, reduce, f"margin top-up: raise {shortfall} {market.quote} from spot"))
            shortfall = ZERO
    if shortfall > 0:
        alerts.append(
            Alert(
                Severity.CRITICAL,
                "margin_unfunded",
                f"short needs {needed} {market.quote} more margin to sit {target:.0%} from liquidation; "
                f"sources can cover only {covered}",
            )
        )
    return actions, alerts


def valid_price_range(
    snapshot: Snapshot, policy: HedgePolicy, liquidation: Decimal | None, settled: bool
) -> tuple[Decimal | None, Decimal | None]:
    """Return the mark-price range over which a plan stays valid while balances and legs stay as they are.

    A coin-denominated hedge's drift does not move with the price, so once it
    is settled (in band, nothing to do) only the price-driven rules can change
    the decision: the jump guard (measured from this mark), the margin guard's
    trigger (the short's distance to liquidation falls below it) and its
    release (the distance grows past it). A plan that is not settled is valid
    at this exact mark only.
    """
    price = snapshot.mark_price
    if not settled or not price.is_finite() or price <= 0:
        return price, price
    low = price * (1 - policy.max_jump)
    high = price * (1 + policy.max_jump)
    guard = policy.guard
    if guard.enabled and liquidation is not None:
        # distance = (liquidation - mark) / mark, so distance < d  <=>  mark > liquidation / (1 + d)
        high = min(high, liquidation / (1 + guard.trigger))
        if guard.release is not None:
            low = max(low, liquidation / (1 + guard.release))
    return low, high


def plan(snapshot: Snapshot, policy: HedgePolicy, now: float, rebalancing: bool = False) -> Plan:
    """Return the plan for one hedge at time `now` (seconds, same clock as the snapshot).

    `rebalancing` says a rebalance is under way: once the drift has left the
    band, the keeper trades all the way back to the target, not just to the
    edge of the band, so the band is ignored until the target is reached.
    """
    market = snapshot.market
    price = snapshot.mark_price
    exposure = exposure_of(snapshot, policy)
    target = policy.ratio * exposure
    short = snapshot.short.size
    drift = short - target
    in_band = abs(drift) <= policy.band * target
    band_width = ZERO if rebalancing else policy.band * target
    liquidation, distance = (None, None)
    blocked = check_snapshot(snapshot, policy, now)
    if blocked is None:
        liquidation, distance = _short_risk(snapshot)

    def result(actions: list[Action], alerts: list[Alert], notes: list[str]) -> Plan:
        low, high = valid_price_range(snapshot, policy, liquidation, in_band and not actions and blocked is None)
        return Plan(
            exposure, target, short, drift, in_band, liquidation, distance, tuple(actions), tuple(alerts), tuple(notes),
            blocked, low, high,
        )

    if blocked is not None:
        return result([], [], [blocked])

    actions: list[Action] = []
    alerts: list[Alert] = []
    notes: list[str] = []
    min_trade = max(policy.min_order, market.min_tradeable(price))
    step = market.amount_step

    # 1. Over-hedged: the account is net short. Reduce toward the target,
    # rounding the reduction up (ending at or under the target, never above).
    if drift > band_width:
        reduce = min(max(ceil_to_step(drift, step), min_trade), short)
        for piece in _slices(reduce, policy.max_order, step):
            actions.append(PlaceOrder(OrderSide.BUY, piece, PositionSide.SHORT, True, "over-hedged: reduce short"))

    # 2. Margin: keep the short away from liquidation.
    guard = policy.guard
    if guard.enabled and distance is not None and distance < guard.trigger:
        wallet, others = _margin_wallet_and_others(snapshot)
        needed = mm.short_topup_needed(
            snapshot.short, others, wallet, price, guard.target, market.brackets, market.margin_step
        )
        if needed > 0:
            fund, unfunded = _fund_margin(snapshot, policy, needed, guard.target)
            actions.extend(fund)
            alerts.extend(unfunded)

    # 3. Under-hedged: grow the short, rounding down (never past the target).
    if drift < -band_width:
        grow = floor_to_step(-drift, step)
        if grow < min_trade:
            notes.append(f"drift {drift} is outside the band but below the minimum order {min_trade}; not traded")
        else:
            actions.extend(_grow_short(snapshot, policy, grow, min_trade, alerts, notes))
    elif not in_band:
        pass
    elif drift != 0:
        notes.append(f"drift {drift} within band ±{band_width}")

    # 4. Release spare margin, only when nothing else is pending.
    if not actions and guard.enabled and guard.release is not None and distance is not None and distance > guard.release:
        wallet, others = _margin_wallet_and_others(snapshot)
        spare = mm.short_release_possible(
            snapshot.short, others, wallet, price, guard.target, market.brackets, market.margin_step
        )
        if snapshot.margin_mode is MarginMode.CROSS:
            spare = min(spare, floor_to_step(snapshot.futures_free, market.margin_step))
            if spare > 0:
                actions.append(Transfer(market.quote, spare, Wallet.FUTURES, Wallet.SPOT, "release spare margin"))
        elif spare > 0:
            actions.append(ReleaseMargin(market.quote, spare, "release spare margin"))

    return result(actions, alerts, notes)


def _grow_short(
    snapshot: Snapshot,
    policy: HedgePolicy,
    grow: Decimal,
    min_trade: Decimal,
    alerts: list[Alert],
    notes: list[str],
) -> list[Action]:
    """Plan the orders (and the transfer that funds them) that grow the short by `grow`."""
    market = snapshot.market
    price = snapshot.mark_price
    step = market.amount_step
    cost_per_unit = price / Decimal(snapshot.leverage) + price * market.taker_fee * 2
    affordable = floor_to_step(snapshot.futures_free / cost_per_unit, step)
    actions: list[Action] = []
    if affordable < grow:
        missing = ceil_to_step((grow - affordable) * cost_per_unit, market.margin_step)
        movable = floor_to_step(snapshot.spot_quote, market.margin_step) if policy.guard.from_spot_stablecoin else ZERO
        if movable > 0:
            actions.append(Transfer(market.quote, min(missing, movable), Wallet.SPOT, Wallet.FUTURES, "fund the short"))
            return actions
        alerts.append(
            Alert(
                Severity.WARNING,
                "under_hedged_no_margin",
                f"short should grow by {grow} but the futures wallet affords only {affordable}",
            )
        )
        grow = affordable
        if grow < min_trade:
            notes.append("no margin to grow the short")
            return actions
    for piece in _slices(grow, policy.max_order, step):
        actions.append(PlaceOrder(OrderSide.SELL, piece, PositionSide.SHORT, False, "under-hedged: grow short"))
    return actions

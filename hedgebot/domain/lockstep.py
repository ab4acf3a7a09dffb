"""How large a hedge leg what backs it can keep a given distance from liquidation: the buffer's lockstep.

A short whose margin cannot be refilled in seconds (its coins are held on another venue, and a deposit
takes `refill_seconds` to arrive) is kept at least the buffer's floor from liquidation. When the guard's
sources cannot pay for that, the leg is bought back just enough that what backs it keeps the floor: the
hedge goes under its target (and says so) rather than being liquidated. While the buffer holds, the leg
also grows only as far as what backs it keeps the guard's target.

Pure arithmetic on a snapshot: the largest leg size, on the market's amount step, whose liquidation sits at
least `distance` from the mark once the guard's own sources (free futures balance, spot stablecoin) stand
behind it. Buying part of a leg back realises its PnL and pays the taker fee; an isolated leg's margin
leaves with the part bought back, to the free balance the guard then puts back behind the rest.
"""

from __future__ import annotations

from decimal import Decimal

from hedgebot.domain.margin import rule_for
from hedgebot.domain.model import ZERO, HedgePolicy, Leg, MarginMode, PositionSide, Snapshot, ceil_to_step, floor_to_step


def sources_free(snapshot: Snapshot, policy: HedgePolicy) -> Decimal:
    """Return what the guard's sources hold now, ready to stand behind the leg (coins to sell aside)."""
    guard = policy.guard
    free = ZERO
    if guard.from_futures_wallet and snapshot.margin_mode is MarginMode.ISOLATED:
        free += max(snapshot.futures_free, ZERO)
    if guard.from_spot_stablecoin:
        free += max(snapshot.spot_quote, ZERO)
    return free


def margin_gap_at(snapshot: Snapshot, policy: HedgePolicy, size: Decimal, distance: Decimal) -> Decimal:
    """Return how much more than the guard's sources hold a leg of `size` needs to sit `distance` from liquidation.

    Negative: what would be left over. The leg is bought back to `size` (realising its PnL, paying the fee)
    or grown to it at the mark (paying the opening fee).
    """
    side = policy.side
    leg = snapshot.leg_of(side)
    market = snapshot.market
    price = snapshot.mark_price
    free = sources_free(snapshot, policy)
    if size <= 0:
        return -free
    rule = rule_for(market)
    if size <= leg.size:  # bought back: realised PnL and the fee land in the wallet
        cut = leg.size - size
        realised = rule.pnl(Leg(side, cut, leg.entry_price), price) - rule.notional(cut, price) * market.taker_fee
        entry = leg.entry_price
    else:  # grown at the mark: the opening fee leaves the wallet
        realised = -rule.notional(size - leg.size, price) * market.taker_fee
        if rule.inverse:  # an inverse leg's entry is the harmonic mean of its fills
            entry = size / (leg.size / leg.entry_price + (size - leg.size) / price) if leg.size > 0 else price
        else:
            entry = (leg.size * leg.entry_price + (size - leg.size) * price) / size
    if snapshot.margin_mode is MarginMode.ISOLATED:
        kept = leg.margin * min(size, leg.size) / leg.size if leg.size > 0 else ZERO
        # What a buy-back frees lands in the free futures balance: behind the rest only if the guard may use it.
        freed = (leg.margin - kept) + realised if policy.guard.from_futures_wallet else min(realised, ZERO)
        rest = Leg(side, size, entry, kept)
        return rule_for(market).margin_gap([rest], kept, price, distance, market.brackets) - (free + freed)
    wallet, others = snapshot.backing_of(side)
    rest = Leg(side, size, entry, ZERO)
    return rule_for(market).margin_gap([rest, *others], wallet + realised, price, distance, market.brackets) - free


def deposit_needed(snapshot: Snapshot, policy: HedgePolicy, size: Decimal, distance: Decimal) -> Decimal:
    """Return the deposit (in the margin asset, rounded up to its step) that lets a leg of `size` sit `distance` away."""
    return ceil_to_step(max(margin_gap_at(snapshot, policy, size, distance), ZERO), snapshot.market.margin_step)


def largest_leg(snapshot: Snapshot, policy: HedgePolicy, distance: Decimal) -> Decimal:
    """Return the largest size of the hedge leg that sits `distance` from liquidation on what can back it now."""
    leg = snapshot.leg_of(policy.side)
    step = snapshot.market.amount_step

    def fits(size: Decimal) -> bool:
        return margin_gap_at(snapshot, policy, size, distance) <= 0

    if fits(leg.size):
        # It holds as it is: how far could it grow? (doubling, then a search on the step)
        high = max(leg.size, step)
        while fits(high * 2) and high < Decimal("1e9"):
            high *= 2
        low, high = leg.size, high * 2
    else:
        low, high = ZERO, leg.size
    # The largest multiple of `step` in [low, high) that fits: a binary search on whole steps.
    lo, hi = int(low / step), int(high / step)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(step * mid):
            lo = mid
        else:
            hi = mid - 1
    return floor_to_step(step * lo, step)

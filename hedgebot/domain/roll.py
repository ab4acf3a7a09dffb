"""The roll of a delivery-future hedge: from an expiring contract to the next, never unhedged.

A quarterly hedge holds the nearest contract that is more than `roll_before`
from its expiry. When the held one comes that close, the roll moves the short
to the next contract in slices no larger than `max_order`:

1. open a slice on the next contract first, and wait for its fill;
2. then buy back the same amount of the expiring contract.

So the account is never short less than when the roll began (never below
target minus band, if it was in band), and the extra short during an overlap
is at most one slice. Like the unwind, the plan is a pure function of what the
venue shows now and of one number fixed when the roll began (the short across
both contracts, `base`): whatever a crash interrupted, the next step follows
from the two legs alone, so no leg is doubled on resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from hedgebot.domain.model import ZERO, ceil_to_step, floor_to_step

OPEN_NEXT = "roll: open the next contract"
CLOSE_EXPIRING = "roll: buy back the expiring contract"


@dataclass(frozen=True)
class Contract:
    """One delivery contract of the hedged coin: its symbol, its delivery time (epoch seconds), and whether it trades.

    `tradable` is false once the exchange's contract status stops new orders (Binance's PRE_DELIVERING,
    DELIVERING, SETTLING; a contract not yet open), whatever the time left.
    """

    symbol: str
    expiry: float
    tradable: bool = True


def contract_to_hold(contracts: Sequence[Contract], now: float, roll_before: float) -> Contract | None:
    """Return the nearest contract that is more than `roll_before` from its expiry, or None when there is none."""
    candidates = [c for c in contracts if c.expiry - now > roll_before]
    return min(candidates, key=lambda c: c.expiry) if candidates else None


def roll_due(held: Contract, now: float, roll_before: float) -> bool:
    """Tell whether the held contract is within `roll_before` of its expiry, so the roll must start."""
    return held.expiry - now <= roll_before


@dataclass(frozen=True)
class RollView:
    """The two legs as the venue shows them now, and the total short when the roll began."""

    expiring: Decimal  # live short on the expiring contract
    next: Decimal  # live short on the next contract
    base: Decimal  # expiring + next when the roll began (journaled with the roll)


@dataclass(frozen=True)
class RollStep:
    """One order of the roll: which contract, and how much (the keeper sends it through the journal)."""

    reason: str  # OPEN_NEXT (sell on the next contract) or CLOSE_EXPIRING (buy on the expiring one)
    amount: Decimal


def next_roll_step(view: RollView, max_order: Decimal, step: Decimal, minimum: Decimal) -> RollStep | None:
    """Return the roll's next order, or None when the expiring contract is flat.

    What was opened on the next contract beyond `base` is bought back on the
    expiring one first; otherwise a new slice is opened on the next contract.
    A slice meets `minimum`; where the expiring leg left is below it, the whole
    leg is bought back in one order (the exchange closes a whole leg at any size).
    """
    if view.expiring <= 0:
        return None
    overlap = view.expiring + view.next - view.base
    if overlap > 0:
        return RollStep(CLOSE_EXPIRING, min(floor_to_step(overlap, step), view.expiring))
    cap = max(floor_to_step(max_order, step), step)
    size = min(cap, view.expiring)
    rest = view.expiring - size
    if 0 < rest < minimum:
        # What a full slice would leave could not be traded on its own: split the last two slices instead,
        # each at least the minimum and neither above the cap. Only where the leg left is under twice the
        # minimum can that not be done, and the slice carries the remainder (over the cap by less than it).
        half = ceil_to_step(view.expiring / 2, step)
        size = half if view.expiring - half >= minimum and half <= cap else view.expiring
    if size < minimum:
        # The leg left is smaller than any order the next contract accepts: open the minimum, then buy the leg back.
        size = minimum
    return RollStep(OPEN_NEXT, size)


def overlap_after(view: RollView, step: RollStep) -> Decimal:
    """Return the short above `base` once `step` has filled (what the roll adds to the account's short at most)."""
    if step.reason == OPEN_NEXT:
        return view.expiring + view.next + step.amount - view.base
    return view.expiring + view.next - step.amount - view.base


def apply_fill(view: RollView, step: RollStep, filled: Decimal) -> RollView:
    """Return the view after `filled` of `step` went through (a partial fill is a smaller step)."""
    if step.reason == OPEN_NEXT:
        return RollView(view.expiring, view.next + filled, view.base)
    return RollView(max(ZERO, view.expiring - filled), view.next, view.base)

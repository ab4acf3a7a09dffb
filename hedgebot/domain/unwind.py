"""The safe close plan of one hedge: short slices first, each followed by its matching spot slice.

The plan is a pure function of two things: what the venue shows now (the live
short, the spot balance) and what this unwind has already done (read from the
journal's fills). `next_step` returns the one action to take next, or None
when the hedge is flat; the keeper executes it, observes again, and asks
again. Resuming after a crash is nothing special: the journal still says what
was done, the venue still shows what is left, so no slice is repeated.

Rules, in the order they are applied:
1. A spot slice is owed once a short slice has filled (only with `sell_spot`):
   the amount the short was reduced by, less what was sold already. It is sold
   before the next short slice, and never more than keeps the account's
   holdings at or above the short, so the account is never net short.
2. Otherwise the short is reduced by one slice: a BUY on the SHORT position
   side (the hedge-mode close form), never more than the live leg.
3. When the short is flat, margin the user asked back is moved to spot.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from hedgebot.domain.model import (
    ZERO,
    Action,
    Market,
    OrderSide,
    PlaceOrder,
    PositionSide,
    Transfer,
    Wallet,
    ceil_to_step,
    floor_to_step,
)

SHORT_SLICE = "unwind: short slice"
LONG_SLICE = "unwind: long slice"
SPOT_SLICE = "unwind: spot slice"
MARGIN_BACK = "unwind: margin back to spot"


@dataclass(frozen=True)
class UnwindSpec:
    """What the user asked for, fixed when the unwind starts."""

    slice_size: Decimal  # the largest short slice, on the amount step
    sell_spot: bool = False
    margin_to_spot: Decimal = ZERO  # stablecoin to move from futures to spot once flat
    side: PositionSide = PositionSide.SHORT  # the hedge's leg: a long hedge closes its long (and sells no spot)


@dataclass(frozen=True)
class UnwindView:
    """The venue now, and this unwind's progress so far (from the journal)."""

    market: Market
    mark_price: Decimal
    short: Decimal  # live size of the short leg
    spot_asset: Decimal  # live spot balance of the hedged coin
    held_elsewhere: Decimal  # exposure not in spot (configured offset, counted long leg)
    futures_free: Decimal
    reduced: Decimal = ZERO  # short bought back by this unwind so far
    sold: Decimal = ZERO  # spot sold by this unwind so far
    moved: Decimal = ZERO  # margin moved to spot by this unwind so far

    @property
    def holdings(self) -> Decimal:
        """Return the coins the account holds against the short."""
        return self.spot_asset + self.held_elsewhere


def slice_size(short: Decimal, max_order: Decimal, slices: int | None, market: Market) -> Decimal:
    """Return the largest short slice: `max_order`, or smaller when `slices` asks for more pieces.

    Always on the amount step and at least the market's minimum amount.
    """
    step = market.amount_step
    size = floor_to_step(max_order, step)
    if slices is not None and slices > 0 and short > 0:
        size = min(size, ceil_to_step(short / slices, step))
    return max(size, market.min_amount, step)


def spot_owed(view: UnwindView, spec: UnwindSpec) -> Decimal:
    """Return the spot still to sell for the short slices already filled."""
    if not spec.sell_spot or spec.side is not PositionSide.SHORT:
        return ZERO
    return max(view.reduced - view.sold, ZERO)


def _spot_sale(view: UnwindView, spec: UnwindSpec) -> Decimal:
    """Return the spot that may be sold now: owed, held, on the step, and never below the short."""
    market = view.market
    room = view.holdings - view.short  # selling more would leave the account net short
    amount = min(spot_owed(view, spec), view.spot_asset, room)
    amount = floor_to_step(amount, market.amount_step)
    # The perp's minimum notional does not bind a spot sale; a lot is the floor.
    if amount <= 0 or amount < max(market.min_amount, market.amount_step):
        return ZERO
    return amount


def _short_slice(view: UnwindView, spec: UnwindSpec) -> Decimal:
    """Return the next short slice, clamped to the live leg."""
    market = view.market
    live = view.short
    if live <= 0:
        return ZERO
    amount = min(spec.slice_size, live)
    left = live - amount
    if 0 < left < market.min_amount:
        # What would be left could not be closed on its own: leave exactly the
        # minimum for the last slice, so both slices meet it; when the leg is
        # under twice the minimum no split can, and it closes in one slice.
        amount = live - market.min_amount if live - market.min_amount >= market.min_amount else live
    return amount


def next_step(view: UnwindView, spec: UnwindSpec) -> Action | None:
    """Return the one action that brings the hedge closer to flat, or None when it is done."""
    market = view.market
    sale = _spot_sale(view, spec)
    if sale > 0:
        return PlaceOrder(OrderSide.SELL, sale, None, False, SPOT_SLICE, spot=True)
    reduce = _short_slice(view, spec)
    if reduce > 0:
        return PlaceOrder(spec.side.closing, reduce, spec.side, True, SHORT_SLICE if spec.side is PositionSide.SHORT else LONG_SLICE)
    back = floor_to_step(min(spec.margin_to_spot - view.moved, view.futures_free), market.margin_step)
    if back > 0:
        return Transfer(market.margin_asset, back, Wallet.FUTURES, Wallet.SPOT, MARGIN_BACK)
    return None


def apply_fill(view: UnwindView, action: Action, filled: Decimal) -> UnwindView:
    """Return the view after `filled` of `action` went through (what the next observation would show)."""
    if isinstance(action, PlaceOrder) and action.spot:
        return replace(view, spot_asset=view.spot_asset - filled, sold=view.sold + filled)
    if isinstance(action, PlaceOrder):
        return replace(view, short=view.short - filled, reduced=view.reduced + filled)
    if isinstance(action, Transfer):
        return replace(view, futures_free=view.futures_free - filled, moved=view.moved + filled)
    raise ValueError(f"not an unwind step: {action!r}")


def amount_of(action: Action) -> Decimal:
    """Return the amount an unwind step moves."""
    if isinstance(action, (PlaceOrder, Transfer)):
        return action.amount
    raise ValueError(f"not an unwind step: {action!r}")


def plan_unwind(view: UnwindView, spec: UnwindSpec, limit: int = 10_000) -> tuple[Action, ...]:
    """Return every step of the unwind, assuming each fills in full (what `--plan` shows)."""
    steps: list[Action] = []
    for _ in range(limit):
        step = next_step(view, spec)
        if step is None:
            break
        steps.append(step)
        view = apply_fill(view, step, amount_of(step))
    return tuple(steps)

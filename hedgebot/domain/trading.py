"""Trading states of a hedge, and which actions each one lets through.

- `active`: everything the policy plans.
- `reducing`: only actions that lower exposure or add margin.
- `halted`: no orders; margin top-ups still run (they only lower risk).
- `closed`: the hedge was unwound and stays flat until the user re-arms it;
  like `halted`, nothing but a top-up may go out.

A state is never a reason to hold back a margin top-up: an action that only
lowers risk must not wait behind a guard meant to stop risky ones. (With the
margin guard switched off the policy plans no top-ups in the first place.)
"""

from __future__ import annotations

from enum import StrEnum

from hedgebot.domain.model import (
    Action,
    AdjustMargin,
    OrderSide,
    PlaceOrder,
    RaiseFromSpot,
    Transfer,
    Wallet,
)

TOPUP_REASON = "margin top-up"


class TradingState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"
    CLOSED = "closed"


_STRICTNESS = [TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED, TradingState.CLOSED]


def strictest(*states: TradingState) -> TradingState:
    """Return the most restrictive of `states`."""
    return max(states, key=_STRICTNESS.index)


def is_margin_topup(action: Action) -> bool:
    """Tell whether `action` only adds margin to the short (or the wallet that backs it)."""
    if isinstance(action, AdjustMargin):
        return action.amount > 0
    if isinstance(action, Transfer):
        return action.destination is Wallet.FUTURES and action.reason.startswith(TOPUP_REASON)
    return False


def is_margin_sale(action: Action) -> bool:
    """Tell whether `action` is the guard's sale of coins for margin (a top-up), not a sale that funds the target."""
    return isinstance(action, RaiseFromSpot) and action.reason.startswith(TOPUP_REASON)


def lowers_exposure(action: Action) -> bool:
    """Tell whether `action` makes the hedge smaller: closes part of a leg (short or long), or sells spot to fund margin."""
    if isinstance(action, PlaceOrder):
        closes_leg = action.position_side is not None and action.side is action.position_side.closing
        sells_spot = action.spot and action.side is OrderSide.SELL
        return closes_leg or sells_spot
    return isinstance(action, RaiseFromSpot)


def permits(state: TradingState, action: Action) -> bool:
    """Tell whether a hedge in `state` may carry out `action`."""
    if state is TradingState.ACTIVE:
        return True
    if is_margin_topup(action):
        return True
    if state is TradingState.REDUCING:
        return lowers_exposure(action)
    return False

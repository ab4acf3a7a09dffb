"""The account as it will be once the actions whose outcome is still open are carried out.

An order the exchange accepted and has not filled, or a request whose answer
was lost, may execute at any moment. Planning on the venue's view alone would
plan the same action again: a second buy-back of the same excess, a second
transfer for the same top-up. So the keeper plans on this view instead, in
which every open action counts as done. If one turns out never to have
happened, the next plan after it settles sees that and acts: one settle delay
late, never twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal

from hedgebot.domain.margin import rule_for
from hedgebot.domain.model import (
    ZERO,
    Action,
    AdjustMargin,
    Leg,
    MarginMode,
    OrderSide,
    PlaceOrder,
    PositionSide,
    Snapshot,
    Transfer,
    Wallet,
)


def _grow(leg: Leg, amount: Decimal, price: Decimal, inverse: bool) -> Leg:
    size = leg.size + amount
    if size <= 0:
        return replace(leg, size=size, entry_price=ZERO)
    if inverse:  # an inverse leg's entry is the harmonic mean: face value over the coins it cost
        held = leg.size / leg.entry_price if leg.size > 0 and leg.entry_price > 0 else ZERO
        entry = size / (held + amount / price)
    else:
        entry = (leg.size * leg.entry_price + amount * price) / size
    return replace(leg, size=size, entry_price=entry)


def _shrink(leg: Leg, amount: Decimal) -> Leg:
    size = max(ZERO, leg.size - amount)
    margin = leg.margin * size / leg.size if leg.size > 0 else leg.margin
    return replace(leg, size=size, margin=margin, entry_price=leg.entry_price if size > 0 else ZERO)


def _order(snapshot: Snapshot, order: PlaceOrder) -> Snapshot:
    price = snapshot.mark_price
    rule = rule_for(snapshot.market)
    if order.spot:
        sign = Decimal(-1) if order.side is OrderSide.SELL else Decimal(1)
        return replace(
            snapshot,
            spot_asset=max(ZERO, snapshot.spot_asset + sign * order.amount),
            spot_quote=snapshot.spot_quote - sign * order.amount * price,
        )
    side = order.position_side or (PositionSide.SHORT if order.side is OrderSide.SELL else PositionSide.LONG)
    leg = snapshot.short if side is PositionSide.SHORT else snapshot.long
    opening = (order.side is OrderSide.SELL) == (side is PositionSide.SHORT)
    moved = _grow(leg, order.amount, price, rule.inverse) if opening else _shrink(leg, order.amount)
    # What closes realises its PnL at the price into the wallet (a loss, for a short bought back on a rally).
    closed = ZERO if opening else min(order.amount, leg.size)
    realised = rule.pnl(Leg(side, closed, leg.entry_price), price) if closed > 0 else ZERO
    if snapshot.margin_mode is MarginMode.ISOLATED:
        # The exchange posts the initial margin of what opens, and frees the share of what closes.
        posted = rule.notional(order.amount, price) / snapshot.leverage if opening else moved.margin - leg.margin
        moved = replace(moved, margin=moved.margin + posted) if opening else moved
        snapshot = replace(snapshot, futures_free=snapshot.futures_free - posted + realised)
    else:
        snapshot = replace(snapshot, futures_free=snapshot.futures_free + realised)
    if realised:
        cross = snapshot.cross_wallet + realised if snapshot.cross_wallet is not None else None
        snapshot = replace(snapshot, futures_wallet=snapshot.futures_wallet + realised, cross_wallet=cross)
    return replace(snapshot, short=moved) if side is PositionSide.SHORT else replace(snapshot, long=moved)


def _transfer(snapshot: Snapshot, transfer: Transfer) -> Snapshot:
    if transfer.asset != snapshot.market.margin_asset:
        return snapshot
    sign = Decimal(1) if transfer.destination is Wallet.FUTURES else Decimal(-1)
    amount = sign * transfer.amount
    cross = snapshot.cross_wallet + amount if snapshot.cross_wallet is not None else None
    if snapshot.market.inverse:  # the margin asset is the hedged coin: its spot count moves too, never twice counted
        snapshot = replace(snapshot, spot_asset=max(ZERO, snapshot.spot_asset - amount))
    return replace(
        snapshot,
        spot_quote=snapshot.spot_quote - amount,
        futures_free=snapshot.futures_free + amount,
        futures_wallet=snapshot.futures_wallet + amount,
        cross_wallet=cross,
    )


def _margin(snapshot: Snapshot, change: AdjustMargin) -> Snapshot:
    if snapshot.margin_mode is not MarginMode.ISOLATED:
        return snapshot
    leg = snapshot.short if change.position_side is PositionSide.SHORT else snapshot.long
    moved = replace(leg, margin=max(ZERO, leg.margin + change.amount))
    snapshot = replace(snapshot, futures_free=snapshot.futures_free - change.amount)
    return replace(snapshot, short=moved) if change.position_side is PositionSide.SHORT else replace(snapshot, long=moved)


def as_if_carried_out(snapshot: Snapshot, actions: Iterable[Action]) -> Snapshot:
    """Return `snapshot` with every open action counted as done (orders filled at the mark)."""
    for action in actions:
        if isinstance(action, PlaceOrder):
            snapshot = _order(snapshot, action)
        elif isinstance(action, Transfer):
            snapshot = _transfer(snapshot, action)
        elif isinstance(action, AdjustMargin):
            snapshot = _margin(snapshot, action)
    return snapshot

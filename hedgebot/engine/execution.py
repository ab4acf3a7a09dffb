"""Carrying out one planned action: an order, a margin change, a transfer, a top-up's move and posting.

Owns: turning a planned action into the intents that carry it out (their journaled detail) and saying whether
it went through. May not touch: how an intent is sent, looked up or settled (engine/intents.py), the plan.
"""

from __future__ import annotations

from collections.abc import Awaitable
from decimal import Decimal
from typing import Any

from hedgebot.domain.model import (
    ZERO,
    Action,
    AdjustMargin,
    OrderSide,
    PlaceOrder,
    PositionSide,
    RaiseFromSpot,
    ReleaseMargin,
    Snapshot,
    Transfer,
    Wallet,
)
from hedgebot.domain.sale import sale_after_reduction
from hedgebot.domain.trading import lowers_exposure
from hedgebot.engine.margin_keeping import HeldSale
from hedgebot.exchange.port import OrderRequest


def moved_size(snapshot: Snapshot, spot: bool, position_side: PositionSide | None) -> Decimal:
    """Return what an order moves, as `snapshot` shows it: the spot coin, or the leg on its position side."""
    if spot:
        return snapshot.spot_asset
    return (snapshot.long if position_side is PositionSide.LONG else snapshot.short).size


class ActionExecution:
    """Carries out one action through the intent lifecycle; says whether it went through.

    A mixin of `Keeper` (engine/keeper.py): `self` is the keeper, whose state it reads and writes.
    """

    async def _fund_topup(self, transfer: Transfer, posting: AdjustMargin) -> bool:
        """Move a top-up's money and post it on the leg as one unit; when the move fails, post what is already there.

        Re-planning between the two would find the moved money in the futures wallet, which may be a later
        source or none, and move more: money moved for a top-up is that top-up's money.
        """
        moved = await self._transfer(transfer.asset, transfer.amount, transfer.source, transfer.destination, transfer.reason)
        amount = posting.amount if moved else posting.amount - transfer.amount
        source = posting.source if moved else "futures wallet (the transfer from spot was refused)"
        posted = amount <= 0 or await self._margin(amount, posting.reason, source, posting.position_side)
        return moved and posted

    async def _execute(self, action: Action, snapshot: Snapshot) -> bool:
        """Carry out one action; return whether it went through (so the next may follow)."""
        assert self.market is not None
        match action:
            case PlaceOrder():
                amount = action.amount
                if self._roll is not None and not action.spot and lowers_exposure(action):
                    # The plan sees both contracts' legs as one; a reduction goes on the expiring leg, as far as it holds.
                    side = action.position_side or self.policy.side
                    amount = min(amount, (await self._read(lambda: self.port.fetch_legs(self.market.symbol))).of(side).size)
                    if amount <= 0:
                        return False
                outcome = await self._order(action.side, amount, action.position_side, action.reduce, action.reason, action.spot)
                return outcome is not None
            case AdjustMargin():
                return await self._margin(action.amount, action.reason, action.source, action.position_side)
            case Transfer():
                return await self._transfer(action.asset, action.amount, action.source, action.destination, action.reason)
            case RaiseFromSpot():
                # Short first, then spot: never net short in between. The sale
                # is sized from what the reduction actually filled.
                sell = action.sell_amount
                if action.reduce_amount > 0:
                    # The sale this reduction is for rides on its intent: settled late, it is still owed (and made).
                    funds = {"sell": str(action.sell_amount), "margin": str(action.margin_amount), "ratio": str(self.policy.sale_ratio)}
                    outcome = await self._order(
                        OrderSide.BUY, action.reduce_amount, PositionSide.SHORT, True, action.reason, funds_sale=funds,
                    )
                    if outcome is None:
                        return False
                    sell = sale_after_reduction(
                        sell, Decimal(outcome["filled"]), action.reduce_amount, self.policy.sale_ratio, self.market.amount_step
                    )
                margin = action.margin_amount * sell / action.sell_amount if action.sell_amount > 0 else ZERO
                return await self._sell_for_margin(HeldSale(sell, margin, action.reason))
            case ReleaseMargin():
                if not await self._margin(-action.amount, action.reason, leg=self.policy.side):
                    return False
                return await self._transfer(action.asset, action.amount, Wallet.FUTURES, Wallet.SPOT, action.reason)
        raise AssertionError(f"unknown action {action!r}")

    async def _order(
        self, side: OrderSide, amount: Decimal, position_side: PositionSide | None, reduce: bool, reason: str, spot: bool = False,
        funds_sale: dict[str, str] | None = None, contract: str | None = None,
    ) -> dict[str, Any] | None:
        """Send one order through the journal; return the venue's outcome, or None when it did not go through.

        `funds_sale` names the margin sale a reduction is made for (planned sale, margin, sale ratio).
        """
        assert self.market is not None
        symbol = self.market.spot_symbol if spot else contract or self.market.symbol
        detail: dict[str, Any] = {
            "symbol": symbol, "side": side.value, "amount": str(amount), "reduce": reduce, "reason": reason,
            "position_side": position_side.value if position_side else None,
        }
        if funds_sale is not None:
            detail["funds_sale"] = funds_sale
        seen = self.last_snapshot
        if seen is not None:
            # What the order moves, as last seen before it: tells later whether the venue already shows its fill.
            detail["before"] = str(moved_size(seen, spot, position_side))

        def send(cid: str) -> Awaitable[Any]:
            # In hedge mode the position side says what closes: Binance refuses reduceOnly there (-1106).
            return self.port.place_order(OrderRequest(cid, symbol, side, amount, position_side, reduce and position_side is None))

        return await self.intents.run("order", detail, send)

    async def _margin(
        self, amount: Decimal, reason: str, source: str = "futures wallet", leg: PositionSide = PositionSide.SHORT
    ) -> bool:
        assert self.market is not None
        symbol = self.market.symbol
        detail = {
            "symbol": symbol, "position_side": leg.value, "asset": self.market.margin_asset, "amount": str(amount),
            "reason": reason, "source": source,
        }
        outcome = await self.intents.run(
            "margin", detail, lambda _cid: self.port.adjust_margin(symbol, leg, amount)
        )
        return outcome is not None

    async def _transfer(self, asset: str, amount: Decimal, source: Wallet, destination: Wallet, reason: str) -> bool:
        detail = {"asset": asset, "amount": str(amount), "from": source.value, "to": destination.value, "reason": reason}
        outcome = await self.intents.run(
            "transfer", detail, lambda _cid: self.port.transfer(asset, amount, source, destination)
        )
        return outcome is not None

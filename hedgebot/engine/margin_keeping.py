"""Margin keeping: the margin sale of spot coins, held while owed, and the buffer's refill.

Owns: the sale of spot for margin and its proceeds carried onto the leg, the held sale (owed, counted late,
dropped), the spot sale's open outcome holding it back, and the refill's withdrawals.
May not touch: how an intent is sent or settled (engine/intents.py), trading states, the plan.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from hedgebot.domain import policy
from hedgebot.domain.model import (
    ZERO,
    Action,
    MarginMode,
    OrderSide,
    PlaceOrder,
    RaiseFromSpot,
    Severity,
    Wallet,
    floor_to_step,
)
from hedgebot.domain.sale import sale_after_reduction
from hedgebot.engine.refill import RefillDecision
from hedgebot.exchange.port import ExchangeError
from hedgebot.exchange.withdrawals import WithdrawalRequest
from hedgebot.store.journal import Intent, IntentStatus


SALE_PROCEEDS = "margin top-up: sale proceeds"


@dataclass(frozen=True)
class HeldSale:
    """A margin-raising spot sale still owed after its reduction went through."""

    sell: Decimal
    margin: Decimal
    reason: str
    proceeds: Decimal = ZERO  # sold already (now, or settled late) and not yet moved to the margin: moved, never sold again
    counted: tuple[str, ...] = ()  # client ids of late-settled orders and transfers already counted here (a crash may settle one twice)

    @property
    def message(self) -> str:
        """Say what is held and why, for the alert and the status."""
        if self.sell <= 0:
            return (
                f"the proceeds of a margin sale ({self.proceeds}) are not on the margin yet; no further reduction or "
                "growth until they are moved (retried every tick)"
            )
        return (
            f"the spot sale of {self.sell} that funds the short's margin failed after the short was reduced; "
            "no further reduction or growth until the sale goes through (retried every tick) or a person acts"
        )


class MarginKeeping:
    """Sells spot for margin and keeps the sale held until it is done; refills the buffer.

    A mixin of `Keeper` (engine/keeper.py): `self` is the keeper, whose state it reads and writes.
    """

    def _held_by_failed_sale(self, action: Action) -> bool:
        """Tell whether `action` waits for a failed margin sale: no more reductions for margin, and no growth."""
        return self._held_sale is not None and (
            isinstance(action, RaiseFromSpot) or (isinstance(action, PlaceOrder) and not action.reduce and not action.spot)
        )

    async def _sell_for_margin(self, sale: HeldSale) -> bool:
        """Sell spot and carry the proceeds onto the short; on a failed sale, hold further reductions and alert."""
        assert self.market is not None
        market = self.market
        spot = await self._read(self.port.fetch_spot_balances)
        sell = min(sale.sell, floor_to_step(spot.get(market.base, ZERO), market.amount_step))
        proceeds = sale.proceeds
        if sell > 0:
            outcome = await self._order(OrderSide.SELL, sell, None, False, sale.reason, spot=True)
            if outcome is None:
                self._held_sale = replace(sale, sell=sell)
                self.alerts.raise_alert("margin_sale_failed", Severity.CRITICAL, self._held_sale.message, sticky=True, sell=sell)
                return False
            filled = Decimal(outcome["filled"])
            proceeds += filled * Decimal(outcome["average_price"]) - Decimal(outcome["fee"])
            # Sold: the proceeds are owed to the margin, and the hold stays (journaled) until they are moved, so a
            # failed read or transfer in between can never lead to selling the same coins again.
            self._held_sale = replace(sale, sell=ZERO, proceeds=proceeds)
            if filled < sell:
                # Filled in part (the book ran out; Binance expires the rest): the short was reduced for all of it,
                # so the unsold coins are unhedged. The filled part's proceeds move now; the rest is held and retried,
                # its margin already carried by this pass.
                self._held_sale = replace(sale, sell=sell - filled, margin=ZERO, proceeds=proceeds)
                self.alerts.raise_alert(
                    "margin_sale_failed", Severity.CRITICAL, self._held_sale.message, sticky=True, sell=sell - filled,
                )
                return await self._carry_sale_onto_margin(sale, proceeds)
        self.alerts.resolve("margin_sale_failed")
        return await self._carry_sale_onto_margin(sale, proceeds)

    async def _carry_sale_onto_margin(self, sale: HeldSale, proceeds: Decimal) -> bool:
        """Move a sale's proceeds to the futures wallet and, isolated, onto the short with the margin its reduction freed."""
        assert self.market is not None
        market = self.market
        if proceeds > 0:
            spot = await self._read(self.port.fetch_spot_balances)
            moved = floor_to_step(min(proceeds, spot.get(market.margin_asset, ZERO)), market.margin_step)
            if moved > 0 and not await self._transfer(market.margin_asset, moved, Wallet.SPOT, Wallet.FUTURES, SALE_PROCEEDS):
                return False
        # The proceeds are moved: the hold is lifted, unless coins are still owed as a sale (a partial fill).
        held = self._held_sale
        self._held_sale = replace(held, proceeds=ZERO) if held is not None and held.sell > 0 else None
        if self.hedge.margin_mode is MarginMode.ISOLATED and sale.margin > 0:
            free = (await self._read(lambda: self.port.fetch_futures_balance(market.margin_asset))).free
            add = floor_to_step(min(sale.margin, free), market.margin_step)
            if add > 0:
                return await self._margin(add, sale.reason, "sale of spot and the freed margin", self.policy.side)
        return True

    def _drop_held_sale(self, why: str) -> None:
        """Forget an owed margin sale: the leg it was to fund is coming off, and the coins are the user's to keep."""
        sale = self._held_sale
        if sale is None:
            return
        self._held_sale = None
        self._emit("margin_sale_dropped", Severity.WARNING, sell=sale.sell, proceeds=sale.proceeds, reason=sale.reason, why=why)
        self.alerts.resolve(
            "margin_sale_failed", f"the sale of {sale.sell} {self.market.base if self.market else ''} for margin is dropped: {why}",
        )

    async def _retry_held_sale(self) -> None:
        """Try the held sale again; a success carries its proceeds onto the leg and lifts the hold."""
        sale = self._held_sale
        assert sale is not None
        if await self._sell_for_margin(sale):
            self._emit("margin_sale_completed", sell=sale.sell, reason=sale.reason)

    async def _refill(self, plan: policy.Plan | None) -> None:
        """Follow the refill's withdrawals, and withdraw the deposit the buffer asks for when allowed (see engine.refill)."""
        assert self.refill is not None and self.market is not None and self.hedge.buffer is not None
        refill, asset, config = self.refill, self.market.margin_asset, self.hedge.buffer
        try:
            await refill.follow(self.clock.now(), self._withdrawal_ended)
            decision = await refill.decide(
                config, plan.deposit_needed if plan is not None else None, asset, self.market.margin_step, self.clock.now(),
            )
        except ExchangeError as exc:
            decision = RefillDecision(None, f"account {refill.account} could not be read to refill the buffer: {exc}")
        if decision.refused is not None:
            self.alerts.raise_alert("withdrawal_refused", Severity.CRITICAL, decision.refused)
            return
        if plan is not None:
            self.alerts.resolve("withdrawal_refused")
        if decision.amount is None or plan is None:
            return
        assert config.withdraw_address is not None
        address, network, amount = config.withdraw_address, config.withdraw_network, decision.amount
        detail = {
            "asset": asset, "amount": str(amount), "from_account": refill.account, "address": address,
            "network": network, "refill_seconds": config.refill_seconds,
            "reason": f"refill the buffer: {plan.deposit_needed} {asset} needed to hedge in full",
        }
        await self.intents.run(
            "withdrawal", detail, lambda cid: refill.venue.withdraw(WithdrawalRequest(asset, amount, address, network, cid)),
        )

    def _withdrawal_ended(self, sent: Any) -> None:
        """Tell that a withdrawal ended: completed (journaled, for history), or failed after acceptance (an alert)."""
        if sent.status == "completed":
            self._emit("withdrawal_completed", client_id=sent.client_id, amount=sent.amount,
                       from_account=self.refill.account if self.refill else "")
            return
        self.alerts.raise_alert(
            "withdrawal_failed", Severity.CRITICAL,
            f"withdrawal {sent.client_id} of {sent.amount} from account {self.refill.account if self.refill else '?'} "
            f"failed after the exchange accepted it ({sent.error}); no other is sent for an hour: check the account",
            client_id=sent.client_id,
        )

    def _is_spot_sale(self, intent: Intent) -> bool:
        """Tell whether `intent` is a sale of this hedge's coin on the spot pair."""
        return (
            intent.kind == "order" and self.market is not None and intent.detail.get("symbol") == self.market.spot_symbol
            and intent.detail.get("side") == OrderSide.SELL.value
        )

    def _spot_sale_unsettled(self) -> bool:
        """Tell whether a spot sale of this hedge's coin is of open outcome."""
        return any(self._is_spot_sale(i) for i in self.journal.open_intents(self.account, self.hedge.name))

    def _owe_late_sale(self, intent: Intent, status: IntentStatus, outcome: dict[str, Any]) -> None:
        """Hold the margin sale owed by a reduction made for it that settled late: it is sold next, never planned again.

        Sized from what the reduction filled, as when it is answered at once; recorded (journaled) before the
        intent is settled, with the reduction's client id, so that a crash in between never owes it twice.
        """
        funds = intent.detail.get("funds_sale")
        held = self._held_sale
        if not funds or status is not IntentStatus.DONE or self.market is None:
            return
        if held is not None and intent.client_id in held.counted:
            return
        planned = Decimal(str(funds["sell"]))
        sell = sale_after_reduction(
            planned, Decimal(str(outcome.get("filled", 0))), Decimal(str(intent.detail["amount"])),
            Decimal(str(funds["ratio"])), self.market.amount_step,
        )
        if sell <= 0:
            return
        margin = Decimal(str(funds["margin"])) * sell / planned if planned > 0 else ZERO
        if held is None:
            self._held_sale = HeldSale(sell, margin, intent.detail.get("reason", ""), counted=(intent.client_id,))
        else:
            self._held_sale = replace(
                held, sell=held.sell + sell, margin=held.margin + margin, counted=(*held.counted, intent.client_id),
            )
        self._emit(
            "margin_sale_owed", Severity.WARNING, client_id=intent.client_id, sell=sell, margin=margin,
            reduced=Decimal(str(outcome.get("filled", 0))),
            explanation="the short was reduced for a margin sale whose reduction settled late: the sale is made now",
        )

    def _count_late_sale(self, intent: Intent, status: IntentStatus, outcome: dict[str, Any]) -> None:
        """Count a held margin sale's order that settled late as sold: its coins are not sold again, its proceeds move."""
        sale = self._held_sale
        if sale is None or status is not IntentStatus.DONE or self.market is None or intent.client_id in sale.counted:
            return
        counted = (*sale.counted, intent.client_id)
        if intent.kind == "transfer" and intent.detail.get("reason") == SALE_PROCEEDS:
            # The proceeds' transfer went through after all: they are moved, not owed.
            moved = Decimal(str(intent.detail.get("amount", "0")))
            self._held_sale = replace(sale, proceeds=max(ZERO, sale.proceeds - moved), counted=counted)
            return
        if not self._is_spot_sale(intent):
            return
        filled = Decimal(str(outcome.get("filled", 0)))
        if filled <= 0:
            return
        proceeds = filled * Decimal(str(outcome.get("average_price", 0))) - Decimal(str(outcome.get("fee", 0)))
        self._held_sale = replace(sale, sell=max(ZERO, sale.sell - filled), proceeds=sale.proceeds + proceeds, counted=counted)

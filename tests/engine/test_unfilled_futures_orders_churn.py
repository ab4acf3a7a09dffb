"""A futures market order that ends with nothing filled (EXPIRED: no liquidity; the ccxt venue says REJECTED,
filled 0) is journaled as done ("order_filled" of 0) and never feeds the rejection breaker, so the keeper sends order after
order, several a tick, and never halts or says why."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hedgebot.domain.model import OrderSide, Wallet
from hedgebot.exchange.port import OrderRequest, OrderResult, OrderStatus
from hedgebot.store.journal import IntentStatus
from tests.engine.test_keeper import _Wrapped
from tests.helpers import D, make_rig


class BookEmpty(_Wrapped):
    """Every futures sell expires unfilled."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.sent = 0

    async def place_order(self, request: OrderRequest) -> Any:
        if ":" in request.symbol and request.side is OrderSide.SELL:
            self.sent += 1
            return OrderResult(
                request.client_id, f"x{self.sent}", request.symbol, request.side, request.position_side, request.amount,
                Decimal(0), Decimal(0), Decimal(0), OrderStatus.REJECTED, self.inner.clock.now(),
            )
        return await self.inner.place_order(request)


async def test_unfilled_orders_count_as_rejections_not_fills() -> None:
    rig = await make_rig(spot={"BTC": "1"}, port_wrapper=BookEmpty)
    for _ in range(5):
        await rig.set_price("50000", advance=10)
        await rig.keeper.tick()
    port = rig.keeper.port
    statuses = [i.status for i in rig.journal.intents()]
    zero_fills = [e for e in rig.journal.events(kind="order_filled") if D(str(e.detail.get("filled"))) == 0]
    assert not zero_fills, f"{len(zero_fills)} 'order_filled' events of 0 in history; {port.sent} orders in 5 ticks"
    assert IntentStatus.DONE not in statuses, f"{statuses.count(IntentStatus.DONE)} unfilled orders journaled done"

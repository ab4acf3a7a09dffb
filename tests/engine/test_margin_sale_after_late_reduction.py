"""A margin sale whose reduction of the short settles late is still made, once, sized from the reduction's fill (review R11)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hedgebot.domain.model import OrderSide
from hedgebot.exchange.port import OrderRequest, RequestTimeout
from tests.engine.test_keeper import _Wrapped
from tests.helpers import D, hedge_config, make_rig


class FirstBuyBackAnsweredLate(_Wrapped):
    """The first buy-back of the short executes, its answer is lost, and lookups miss it for 40 s (the settle delay is 60 s)."""

    settle_seconds = 60.0

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.buy_backs: list[Decimal] = []
        self.spot_sales: list[Decimal] = []
        self.hidden_until: dict[str, float] = {}

    async def place_order(self, request: OrderRequest) -> Any:
        result = await self.inner.place_order(request)
        futures = ":" in request.symbol
        if futures and request.side is OrderSide.BUY:
            self.buy_backs.append(result.filled)
            if len(self.buy_backs) == 1:
                self.hidden_until[request.client_id] = self.inner.clock.now() + 40.0
                raise RequestTimeout("scripted: the answer to the buy-back was lost")
        elif not futures and request.side is OrderSide.SELL:
            self.spot_sales.append(result.filled)
        return result

    async def fetch_order(self, symbol: str, client_id: str) -> Any:
        if self.inner.clock.now() < self.hidden_until.get(client_id, 0.0):
            return None
        return await self.inner.fetch_order(symbol, client_id)


async def test_a_buy_back_for_a_margin_sale_settled_late_gets_its_sale_and_the_short_is_not_cut_again() -> None:
    hedge = hedge_config(margin_guard={"sources": ["futures_wallet", "sell_spot"]})
    rig = await make_rig(spot={"BTC": "2"}, futures={"USDT": "34000"}, hedge=hedge, port_wrapper=FirstBuyBackAnsweredLate)
    await rig.keeper.tick()
    port = rig.keeper.port
    for _ in range(15):  # a rally: the guard must fund the short's margin by selling coins
        await rig.set_price("60000", high="60000", advance=10)
        await rig.keeper.tick()
    assert len(port.buy_backs) == 1, f"the short was cut again for the same margin: buy-backs {port.buy_backs}"
    [bought_back] = port.buy_backs
    assert port.spot_sales == [bought_back], f"bought back {bought_back} for a margin sale, sold {port.spot_sales}"
    assert await rig.short() == D("2") - bought_back and rig.venue.spot["BTC"] == D("2") - bought_back
    [owed] = rig.journal.events(kind="margin_sale_owed")
    assert D(str(owed.detail["sell"])) == bought_back
    assert rig.keeper._held_sale is None  # the sale was made and its proceeds moved: nothing is owed any more

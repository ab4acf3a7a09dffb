"""A held margin sale (the safety action that funds the short's margin) is not retried while ANY intent of the
hedge is unknown, even one that cannot be the sale (a futures buy-back whose history cannot be read). Issue 16: "Margin
top-ups and reductions of an over-hedge still go out: safety never waits."."""

from __future__ import annotations

from typing import Any

import pytest

from hedgebot.domain.model import OrderSide
from hedgebot.exchange.port import InvalidOrder, OrderRequest, RequestTimeout
from tests.engine.test_keeper import _Wrapped
from tests.helpers import D, hedge_config, make_rig


class Scripted(_Wrapped):
    """Spot sales are refused while `refuse_sales`; the next futures buy-back times out and its outcome stays unknown
    (lookups and the order history cannot be read) while `dark`."""

    refuse_sales = True
    dark = False

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.lose_next_buy = False
        self.sales: list[Any] = []

    async def place_order(self, request: OrderRequest) -> Any:
        spot_sale = ":" not in request.symbol and request.side is OrderSide.SELL
        if spot_sale and self.refuse_sales:
            raise InvalidOrder("scripted: spot trading is suspended")
        result = await self.inner.place_order(request)
        if spot_sale:
            self.sales.append(result.filled)
        if ":" in request.symbol and request.side is OrderSide.BUY and self.lose_next_buy:
            self.lose_next_buy = False
            raise RequestTimeout("scripted: the answer to the buy-back was lost")
        return result

    async def fetch_order(self, symbol: str, client_id: str) -> Any:
        if self.dark:
            raise RequestTimeout("scripted: lookup timeout")
        return await self.inner.fetch_order(symbol, client_id)

    async def fetch_order_history(self, symbol: str, since: float, until: float) -> Any:
        if self.dark:
            raise RequestTimeout("scripted: order history timeout")
        return await self.inner.fetch_order_history(symbol, since, until)


@pytest.mark.parametrize("unknown", [False, True], ids=["control-buy-back-answered", "buy-back-unknown"])
async def test_a_held_margin_sale_is_retried_while_an_unrelated_futures_order_is_unknown(unknown: bool) -> None:
    hedge = hedge_config(margin_guard={"sources": ["futures_wallet", "sell_spot"]})
    rig = await make_rig(spot={"BTC": "2"}, futures={"USDT": "34000"}, hedge=hedge, port_wrapper=Scripted)
    port = rig.keeper.port
    await rig.keeper.tick()
    for price in ("55000", "60000"):  # the guard's sale is refused: the sale is held, with its critical alert
        await rig.set_price(price, high=price, advance=3600)
        await rig.keeper.tick()
    assert rig.keeper._held_sale is not None, "the margin sale is held"
    # The user moves coins out of spot: an over-hedge, reduced by a buy-back whose outcome then stays unknown.
    rig.venue.spot["BTC"] = await rig.short() - D("0.2")
    port.lose_next_buy, port.dark = unknown, unknown
    await rig.set_price("60000", advance=10)
    await rig.keeper.tick()
    assert bool(rig.journal.open_intents("acct", rig.keeper.hedge.name)) is unknown
    port.refuse_sales = False  # spot trading is back: the held sale can go now
    for _ in range(6):
        await rig.set_price("60000", high="60000", advance=10)
        await rig.keeper.tick()
    assert port.sales, f"the held margin sale waited behind an unknown futures buy-back; distance {rig.keeper.status.distance}"

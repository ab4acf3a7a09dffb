"""a spot sale that ends EXPIRED with nothing filled (a market order that found no liquidity; the ccxt venue
returns OrderStatus.REJECTED, filled 0) is taken by the keeper as a completed sale: the failed-sale hold, which must stop
further reductions for margin, is never set, so every tick cuts the short again and sells nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hedgebot.domain.model import OrderSide
from hedgebot.exchange.port import OrderRequest, OrderResult, OrderStatus
from tests.engine.test_keeper import _Wrapped
from tests.helpers import D, hedge_config, make_rig


class SpotBookEmpty(_Wrapped):
    """Every spot market sale expires unfilled, as Binance answers one that finds no liquidity."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.sales = 0

    async def place_order(self, request: OrderRequest) -> Any:
        if ":" not in request.symbol and request.side is OrderSide.SELL:
            self.sales += 1
            return OrderResult(
                request.client_id, f"x{self.sales}", request.symbol, request.side, None, request.amount,
                Decimal(0), Decimal(0), Decimal(0), OrderStatus.REJECTED, self.inner.clock.now(),
            )
        return await self.inner.place_order(request)


async def test_a_spot_sale_that_expired_unfilled_holds_further_reductions_with_a_critical_alert() -> None:
    hedge = hedge_config(margin_guard={"sources": ["futures_wallet", "sell_spot"]})
    rig = await make_rig(spot={"BTC": "2"}, futures={"USDT": "34000"}, hedge=hedge, port_wrapper=SpotBookEmpty)
    await rig.keeper.tick()
    shorts = []
    for price in ("55000", "60000", "61000", "62000", "63000"):
        await rig.set_price(price, high=price, advance=3600)
        await rig.keeper.tick()
        shorts.append(await rig.short())
    port = rig.keeper.port
    assert port.sales >= 1, "the guard tried to sell spot for margin"
    spot = rig.venue.spot["BTC"]
    critical = [e for e in rig.journal.events(kind="alert") if e.detail["code"] == "margin_sale_failed"]
    assert critical, f"no margin_sale_failed alert; {port.sales} unfilled sales; shorts {shorts} for {spot} BTC held"
    # The held sale is retried every tick (it may fill once liquidity returns), but the short is never cut again.
    after_failure = shorts[shorts.index(min(shorts))]
    assert all(short == after_failure for short in shorts[shorts.index(after_failure):]), f"the short was cut again: {shorts}"
    assert min(shorts) > D("1.5"), f"the short was cut again after an unfilled sale: {port.sales} sales, shorts {shorts}"

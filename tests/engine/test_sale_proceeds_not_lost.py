"""When the spot read after a margin sale fails, the sale's proceeds are forgotten (the hold is lifted before
they are moved), so the guard sells the coins again for the same margin while the first proceeds sit idle in spot."""

from __future__ import annotations

from typing import Any

from hedgebot.domain.model import OrderSide
from hedgebot.exchange.port import OrderRequest, VenueUnavailable
from tests.engine.test_keeper import _Wrapped
from tests.helpers import D, hedge_config, make_rig

FAILING_READS = 6


class SpotReadFailsAfterASale(_Wrapped):
    """The first spot sale executes; then the spot wallet cannot be read for a while (every retry fails)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.sales: list[Any] = []
        self.failing_reads = 0

    async def place_order(self, request: OrderRequest) -> Any:
        result = await self.inner.place_order(request)
        if ":" not in request.symbol and request.side is OrderSide.SELL:
            self.sales.append(result.filled)
            if len(self.sales) == 1:
                self.failing_reads = FAILING_READS  # all of the keeper's read retries
        return result

    async def fetch_spot_balances(self) -> Any:
        if self.failing_reads > 0:
            self.failing_reads -= 1
            raise VenueUnavailable("scripted: 503 from the spot API")
        return await self.inner.fetch_spot_balances()


async def test_a_margin_sale_whose_proceeds_could_not_be_moved_at_once_is_not_sold_again() -> None:
    hedge = hedge_config(margin_guard={"sources": ["futures_wallet", "sell_spot"]})
    rig = await make_rig(spot={"BTC": "2"}, futures={"USDT": "34000"}, hedge=hedge, port_wrapper=SpotReadFailsAfterASale)
    await rig.keeper.tick()
    for _ in range(12):
        await rig.set_price("60000", high="60000", advance=10)
        try:
            await rig.keeper.tick()
        except Exception:  # noqa: BLE001 - the daemon's loop catches it the same way and ticks on
            pass
    port = rig.keeper.port
    idle = rig.venue.spot.get("USDT", D(0))
    assert len(port.sales) == 1, f"coins were sold {len(port.sales)} times for one margin need ({port.sales}); {idle} USDT idle in spot"

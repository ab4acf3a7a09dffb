"""A margin top-up transfer whose answer was lost (outcome unknown, the history lags) must not be sent again
while it is unknown: top-ups may go out while an outcome is unknown, but not the same one twice."""

from __future__ import annotations

from typing import Any

from hedgebot.exchange.port import FundsQuery, RequestTimeout
from tests.engine.test_keeper import _Wrapped
from tests.helpers import D, hedge_config, make_rig


class TransferAnsweredLate(_Wrapped):
    """The first spot->futures transfer times out and is carried out `lag` s later (Binance: a 5xx/-1007 means the
    execution status is unknown, it may be carried out after the answer); until then the history cannot show it."""

    settle_seconds = 60.0
    lag = 40.0

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.transfers: list[Any] = []
        self.hidden_until = 0.0
        self.later: tuple[Any, ...] | None = None

    async def _catch_up(self) -> None:
        if self.later is not None and self.inner.clock.now() >= self.hidden_until:
            args, self.later = self.later, None
            await self.inner.transfer(*args)

    async def transfer(self, asset: str, amount: Any, source: Any, destination: Any) -> Any:
        await self._catch_up()
        self.transfers.append(amount)
        if len(self.transfers) == 1:
            self.hidden_until = self.inner.clock.now() + self.lag
            self.later = (asset, amount, source, destination)
            raise RequestTimeout("scripted: the transfer timed out; the exchange carries it out later")
        return await self.inner.transfer(asset, amount, source, destination)

    async def find_funds_movement(self, query: FundsQuery) -> Any:
        await self._catch_up()
        return await self.inner.find_funds_movement(query)

    async def fetch_spot_balances(self) -> Any:
        await self._catch_up()
        return await self.inner.fetch_spot_balances()

    async def fetch_futures_balance(self, asset: str) -> Any:
        await self._catch_up()
        return await self.inner.fetch_futures_balance(asset)


async def test_a_top_up_transfer_of_unknown_outcome_is_not_sent_again_while_it_is_unknown() -> None:
    hedge = hedge_config(margin_guard={"sources": ["futures_wallet", "spot_stablecoin"]})
    rig = await make_rig(spot={"BTC": "2", "USDT": "200000"}, futures={"USDT": "34000"}, hedge=hedge, port_wrapper=TransferAnsweredLate)
    await rig.keeper.tick()
    for _ in range(6):
        await rig.set_price("60000", high="60000", advance=10)  # the guard tops up from the spot stablecoin
        await rig.keeper.tick()
    port = rig.keeper.port
    assert port.transfers, "the scenario made the guard move money from spot"
    left = rig.venue.spot.get("USDT", D(0))
    assert len(port.transfers) == 1, f"the top-up transfer went out {len(port.transfers)} times: {port.transfers}; spot USDT 200000 -> {left}"

"""A crash between journaling a held margin sale's late fill and updating the sale hold sells the coins twice."""

from __future__ import annotations

from typing import Any

import pytest

from hedgebot.engine.keeper import Keeper
from tests.engine.test_keeper import SpotSaleAnsweredLate
from tests.helpers import D, hedge_config, make_rig


class Crash(BaseException):
    """The process dies here (SIGKILL): nothing after this line of the keeper runs."""


async def test_a_crash_right_after_a_late_sale_is_settled_does_not_sell_the_coins_again(monkeypatch: Any) -> None:
    hedge = hedge_config(margin_guard={"sources": ["futures_wallet", "sell_spot"]})
    rig = await make_rig(spot={"BTC": "2"}, futures={"USDT": "34000"}, hedge=hedge, port_wrapper=SpotSaleAnsweredLate)
    await rig.keeper.tick()
    original = Keeper._count_late_sale
    crashed = {"done": False}

    def count_late_sale(self: Keeper, intent: Any, status: Any, outcome: Any) -> None:
        if self._held_sale is not None and status.value == "done" and not crashed["done"]:
            crashed["done"] = True
            raise Crash  # the outcome is in the journal, the hold in control still says "sell"
        original(self, intent, status, outcome)

    monkeypatch.setattr(Keeper, "_count_late_sale", count_late_sale)
    keeper = rig.keeper
    for _ in range(15):
        await rig.set_price("60000", high="60000", advance=10)
        try:
            await keeper.tick()
        except Crash:
            # Restart: a new keeper on the same journal (and its control tables) and the same exchange.
            keeper = Keeper("acct", hedge, keeper.port, rig.clock, rig.journal, rig.events)
            await keeper.prepare()
    assert crashed["done"], "the scenario reached the late settlement of the margin sale"
    port = keeper.port
    assert len(port.sales) == 1, f"the margin sale went out {len(port.sales)} times: {port.sales}"

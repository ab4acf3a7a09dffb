"""A liquidation seen by polling while one of our orders has an unknown outcome is still reported (review R8)."""

from __future__ import annotations

import pytest

from hedgebot.domain.model import Wallet
from hedgebot.exchange.funding import ConstantFunding
from tests.engine.test_idempotency import Scripted
from tests.helpers import D, hedge_config, make_rig


@pytest.mark.parametrize("futures", ["40000", "200000"], ids=["reopen-unfunded", "reopen-funded"])
async def test_a_short_liquidated_while_an_order_is_unknown_raises_the_critical_liquidated_alert(futures: str) -> None:
    rig = await make_rig(
        spot={"BTC": "1"}, futures={"USDT": futures}, hedge=hedge_config(leverage=5, margin_guard={"sources": ["futures_wallet"]}),
        funding=ConstantFunding(D(0)), port_wrapper=Scripted,
    )
    await rig.keeper.tick()
    port = rig.keeper.port
    rig.venue.deposit(Wallet.SPOT, "BTC", D("0.2"))  # more to hedge: the order for it executes, its answer is lost
    port.place_after, port.lookups_fail = 1, True
    await rig.set_price("50000")
    await rig.keeper.tick()
    assert rig.journal.open_intents("acct", rig.keeper.hedge.name)
    await rig.set_price("75000", high="75000")  # +50 % in one candle: the venue liquidates the short
    for price in ("75100", "75200"):
        await rig.set_price(price)
        await rig.keeper.tick()
    [raised] = [e for e in rig.journal.events(kind="alert") if e.detail["code"] == "liquidated" and e.detail.get("state") == "raised"]
    assert raised.severity == "critical" and "unknown" in raised.detail["cause"]
    assert D(str(raised.detail["margin_lost"])) > 0
    assert [e.detail["cause"] for e in rig.journal.events(kind="short_changed_outside")] == ["liquidation"]

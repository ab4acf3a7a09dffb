"""The emulator's liquidation engine and auto-deleveraging, as Binance's user sees them.

On each mark change, a leg whose margin balance falls below its maintenance
margin on the mark is liquidated: closed by an order of Binance's own (client id
`autoclose-…`) that shows in order history and on the user stream, with the
margin behind it lost (REALIZED_PNL and INSURANCE_CLEAR income records).
Auto-deleveraging closes a profitable leg the same way (`adl_autoclose-…`).
"""

from __future__ import annotations

from typing import Any

import pytest

from hedgebot.domain import margin as mm
from hedgebot.domain.model import Leg, OrderSide, PositionSide
from hedgebot.exchange.dialects.binanceusdm import user_stream_events
from hedgebot.exchange.port import OrderRequest
from tests.emulator_rig import BTC, EmulatorRig, emulator_rig
from tests.helpers import D, SYMBOL

pytestmark = pytest.mark.slow


async def short(rig: EmulatorRig, amount: str, *, isolated: bool) -> None:
    await rig.venue.load_market(SYMBOL)
    if isolated:
        await rig.venue.futures.fapiPrivatePostMarginType({"symbol": BTC, "marginType": "ISOLATED"})
    await rig.venue.place_order(OrderRequest("hbL1", SYMBOL, OrderSide.SELL, D(amount), PositionSide.SHORT))


def incomes(rig: EmulatorRig, kind: str) -> list[D]:
    return [D(r["income"]) for r in rig.emulator.book.income if r["incomeType"] == kind]


def forced_updates(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["e"] == "ORDER_TRADE_UPDATE" and not e["o"]["c"].startswith("hb")]


async def test_the_liquidation_price_served_is_the_one_the_domain_computes_from_the_same_leg() -> None:
    async with emulator_rig() as rig:
        await short(rig, "1", isolated=True)
        market = await rig.venue.load_market(SYMBOL)
        pos = rig.emulator.position(BTC, "SHORT")
        [row] = await rig.venue.futures.fapiPrivateV3GetPositionRisk({"symbol": BTC})
        leg = Leg(PositionSide.SHORT, D("1"), D(pos.entry), D(pos.isolated_wallet))
        expected = mm.liquidation_price_of(leg.margin, [leg], market.brackets)
        assert expected is not None and abs(D(row["liquidationPrice"]) - expected) < D("0.01")
        assert D("52000") < D(row["liquidationPrice"]) < D("52500")


async def test_an_isolated_short_below_maintenance_is_liquidated_with_its_margin_lost_and_an_autoclose_order() -> None:
    async with emulator_rig() as rig:
        await short(rig, "1", isolated=True)
        events: list[dict[str, Any]] = []
        rig.emulator.listeners.append(events.append)
        margin = D(rig.emulator.position(BTC, "SHORT").isolated_wallet)
        cross_before = D(rig.emulator.book.futures["USDT"])
        [row] = await rig.venue.futures.fapiPrivateV3GetPositionRisk({"symbol": BTC})
        liquidation = D(row["liquidationPrice"])
        rig.emulator.set_mark(BTC, liquidation - 1)
        assert rig.short() == D("1") and not rig.emulator.forced, "above maintenance: nothing happens"
        rig.emulator.set_mark(BTC, liquidation + 1)
        assert rig.short() == D("0") and D(rig.emulator.position(BTC, "SHORT").isolated_wallet) == 0
        assert D(rig.emulator.book.futures["USDT"]) == cross_before, "an isolated liquidation leaves the cross wallet alone"
        assert sum(incomes(rig, "REALIZED_PNL")) + sum(incomes(rig, "INSURANCE_CLEAR")) == -margin, "the whole margin is lost"
        [key] = rig.emulator.forced
        cid = key.split("|")[2]
        assert cid.startswith("autoclose-")
        found = await rig.venue.fetch_order(SYMBOL, cid)  # in order history like any order
        assert found is not None and found.filled == D("1") and found.side is OrderSide.BUY
        assert found.position_side is PositionSide.SHORT
        [update] = forced_updates(events)
        [event] = user_stream_events(update, {"BTCUSDT": SYMBOL}.get)  # type: ignore[arg-type]
        assert (event.kind, event.side, event.amount) == ("liquidation", "short", D("1"))
        assert event.price == liquidation + 1
        assert await rig.venue.futures.fapiPrivateV3GetPositionRisk({"symbol": BTC}) == [], "the leg is gone"


async def test_a_mark_beyond_the_bankruptcy_price_never_takes_more_than_the_legs_margin() -> None:
    async with emulator_rig() as rig:
        await short(rig, "1", isolated=True)
        pos = rig.emulator.position(BTC, "SHORT")
        margin, entry = D(pos.isolated_wallet), D(pos.entry)
        cross_before = D(rig.emulator.book.futures["USDT"])
        rig.emulator.set_mark(BTC, D("60000"))  # one jump far past the bankruptcy price
        assert rig.short() == 0
        assert incomes(rig, "REALIZED_PNL") == [-margin] and incomes(rig, "INSURANCE_CLEAR") == []
        order = rig.emulator.futures_orders()[rig.emulator.forced[0].split("|")[2]]
        assert D(order["avgPrice"]) == entry + margin, "filled at the bankruptcy price, the insurance fund takes the rest"
        assert D(rig.emulator.book.futures["USDT"]) == cross_before


async def test_a_cross_short_is_liquidated_against_the_cross_wallet_which_is_lost() -> None:
    async with emulator_rig(futures="3000") as rig:
        await short(rig, "1", isolated=False)
        [row] = await rig.venue.futures.fapiPrivateV3GetPositionRisk({"symbol": BTC})
        liquidation = D(row["liquidationPrice"])
        wallet = D(rig.emulator.book.futures["USDT"])
        assert liquidation > D("52000"), "the whole cross wallet backs the short"
        rig.emulator.set_mark(BTC, liquidation - 1)
        assert rig.short() == D("1")
        rig.emulator.set_mark(BTC, liquidation + 1)
        assert rig.short() == 0 and D(rig.emulator.book.futures["USDT"]) == 0
        assert sum(incomes(rig, "REALIZED_PNL")) + sum(incomes(rig, "INSURANCE_CLEAR")) == -wallet
        assert [k.split("|")[2][:10] for k in rig.emulator.forced] == ["autoclose-"]


async def test_funding_that_pushes_a_leg_below_maintenance_liquidates_it() -> None:
    async with emulator_rig() as rig:
        await short(rig, "1", isolated=True)
        [row] = await rig.venue.futures.fapiPrivateV3GetPositionRisk({"symbol": BTC})
        rig.emulator.set_mark(BTC, D(row["liquidationPrice"]) - 5)
        assert rig.short() == D("1")
        rig.emulator.settle_funding(BTC, D("-0.001"))  # the short pays about 52 USDT
        assert rig.short() == 0 and rig.emulator.forced


async def test_auto_deleveraging_closes_part_of_a_profitable_leg_with_an_adl_autoclose_order() -> None:
    async with emulator_rig() as rig:
        await short(rig, "1", isolated=True)
        events: list[dict[str, Any]] = []
        rig.emulator.listeners.append(events.append)
        with pytest.raises(ValueError, match="not in profit"):
            rig.emulator.auto_deleverage(BTC, "SHORT", D("0.4"))
        rig.emulator.set_mark(BTC, D("45000"))
        margin = D(rig.emulator.position(BTC, "SHORT").isolated_wallet)
        cross_before = D(rig.emulator.book.futures["USDT"])
        order = rig.emulator.auto_deleverage(BTC, "SHORT", D("0.4"))
        assert order["clientOrderId"].startswith("adl_autoclose-") and rig.short() == D("0.6")
        profit = D("0.4") * (D("50000") - D("45000"))
        assert incomes(rig, "REALIZED_PNL") == [profit]
        assert D(rig.emulator.position(BTC, "SHORT").isolated_wallet) == margin * D("0.6")
        assert D(rig.emulator.book.futures["USDT"]) == cross_before + profit + margin * D("0.4")
        [update] = forced_updates(events)
        [event] = user_stream_events(update, {"BTCUSDT": SYMBOL}.get)  # type: ignore[arg-type]
        assert (event.kind, event.amount, event.price) == ("adl", D("0.4"), D("45000"))


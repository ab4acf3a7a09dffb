"""Market orders that run out of liquidity: part filled, the rest EXPIRED, as Binance answers them.

Binance fills a MARKET order against the book and expires what it cannot fill
(status EXPIRED, executedQty below origQty). The keeper must count exactly the
part that filled: in the journal, in the short, and never send that part twice.
"""

from __future__ import annotations

import pytest

from hedgebot.domain.model import OrderSide, PositionSide
from hedgebot.exchange.port import OrderRequest, OrderStatus
from hedgebot.testing.binance_faults import Fault
from tests.emulator_rig import BTC, emulator_rig
from tests.helpers import D, SYMBOL, hedge_config

pytestmark = pytest.mark.slow


async def test_a_market_order_out_of_liquidity_fills_part_and_expires_the_rest() -> None:
    async with emulator_rig() as rig:
        events: list[dict] = []
        rig.emulator.listeners.append(events.append)
        rig.emulator.inject(Fault("partial_fill", "/fapi/v1/order", "POST", fill="0.4"))
        result = await rig.venue.place_order(OrderRequest("hbP1", SYMBOL, OrderSide.SELL, D("0.5"), PositionSide.SHORT))
        assert (result.status, result.amount, result.filled) == (OrderStatus.PARTIAL, D("0.5"), D("0.2"))
        assert rig.short() == D("0.2"), "only the filled part is a position"
        order = rig.emulator.futures_orders()["hbP1"]
        assert (order["status"], order["origQty"], order["executedQty"]) == ("EXPIRED", "0.5", "0.2")
        updates = [e["o"] for e in events if e["e"] == "ORDER_TRADE_UPDATE"]
        assert [(u["x"], u["X"], u["l"], u["z"]) for u in updates] == [
            ("TRADE", "PARTIALLY_FILLED", "0.2", "0.2"), ("EXPIRED", "EXPIRED", "0", "0.2"),
        ]


async def test_a_market_order_that_finds_no_liquidity_expires_with_nothing_filled() -> None:
    async with emulator_rig() as rig:
        rig.emulator.inject(Fault("partial_fill", "/fapi/v1/order", "POST", fill="0"))
        result = await rig.venue.place_order(OrderRequest("hbP2", SYMBOL, OrderSide.SELL, D("0.5"), PositionSide.SHORT))
        assert (result.status, result.filled) == (OrderStatus.REJECTED, D("0"))
        assert rig.short() == D("0") and D(rig.emulator.book.futures["USDT"]) == D("100000"), "no fee, no position"


async def test_a_partly_filled_short_is_journaled_as_filled_and_only_the_rest_is_sent_again() -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}) as rig:
        keeper = rig.keeper(hedge_config())
        await keeper.prepare()
        rig.emulator.lookup_lag_seconds = 5.0  # the expired order is not even visible to a lookup yet
        rig.emulator.inject(Fault("partial_fill", "/fapi/v1/order", "POST", fill="0.3"))
        await keeper.tick()
        orders = rig.emulator.futures_orders()
        intents = rig.journal.intents()
        assert len(orders) == 2 and [i.client_id for i in intents] == list(orders), "one new id for the rest"
        first, second = intents
        assert first.status.value == "done" and D(first.outcome["filled"]) == D("0.3")
        assert first.outcome["status"] == "partial"
        assert second.status.value == "done" and D(second.detail["amount"]) == D("0.7")
        assert rig.short() == D("1"), "the short is on target: the filled part was not sent twice"
        assert len(rig.emulator.executions) == 2
        await keeper.tick()
        assert rig.journal.events(kind="short_changed_outside") == [], "our own partial fill is no surprise"
        assert keeper.trading_state.value == "active" and rig.short() == D("1")


async def test_a_spot_sale_out_of_liquidity_sells_part_and_expires_the_rest() -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}) as rig:
        rig.emulator.inject(Fault("partial_fill", "/api/v3/order", "POST", fill="0.5"))
        result = await rig.venue.place_order(OrderRequest("hbS1", "BTC/USDT", OrderSide.SELL, D("0.4"), None))
        assert (result.status, result.filled) == (OrderStatus.PARTIAL, D("0.2"))
        assert D(rig.emulator.book.spot["BTC"]) == D("0.8")
        assert rig.emulator.book.orders["spot|BTCUSDT|hbS1"]["status"] == "EXPIRED"


async def test_a_margin_sale_filled_in_part_counts_exactly_the_coins_sold_and_the_hedge_stays_matched() -> None:
    async with emulator_rig(spot={"BTC": "2", "USDT": "0"}, futures="34000") as rig:
        keeper = rig.keeper(hedge_config(margin_guard={"sources": ["futures_wallet", "sell_spot"]}))
        await keeper.prepare()
        await keeper.tick()
        assert rig.short() == D("2")
        rig.emulator.inject(Fault("partial_fill", "/api/v3/order", "POST", fill="0.5"))
        for price in ("55000", "60000", "62000", "62000", "62000", "62000"):
            rig.emulator.set_mark(BTC, D(price))
            await keeper.tick()
            rig.clock.advance(2.0)
        assert not rig.emulator.faults, "a margin sale met the out-of-liquidity answer"
        sales = {k.split("|")[2]: o for k, o in rig.emulator.book.orders.items() if k.startswith("spot|")}
        assert any(o["status"] == "EXPIRED" for o in sales.values())
        journaled = {i.client_id: i for i in rig.journal.intents() if i.detail.get("symbol") == "BTC/USDT"}
        assert set(journaled) == set(sales), "every sale is one intent under its own id"
        for cid, order in sales.items():
            assert D(journaled[cid].outcome["filled"]) == D(order["executedQty"]), "the journal counts what filled, no more"
        sold = sum((D(o["executedQty"]) for o in sales.values()), D(0))
        assert D(rig.emulator.book.spot["BTC"]) == D("2") - sold
        assert rig.short() == D(rig.emulator.book.spot["BTC"]), "the short still matches the coins left"
        assert keeper.trading_state.value == "active" and rig.journal.events(kind="short_changed_outside") == []

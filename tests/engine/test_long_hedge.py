"""A long hedge for a planned purchase on the paper venue: the keeper holds a LONG leg equal to the coins
still to buy, reduces it as coins arrive, tops up its margin after a fall, names its liquidation, and unwinds
it in its close form; the SHORT leg is never touched."""

from __future__ import annotations

from decimal import Decimal

from hedgebot.domain.margin import liquidation_price_of
from hedgebot.domain.model import Leg, MarginMode, OrderSide, PositionSide, Wallet
from hedgebot.domain.instrument import HedgeSide
from tests.helpers import D, SYMBOL, btc_market, hedge_config, make_rig


def buying(amount: str, **overrides: object):
    return hedge_config(side=HedgeSide.LONG, amount=D(amount), **overrides)


async def legs(rig) -> tuple[Decimal, Decimal]:
    found = await rig.venue.fetch_legs(SYMBOL)
    return found.long.size, found.short.size


def orders_on(rig, position_side: PositionSide) -> list:
    return [o for o in rig.venue.orders.values() if o.position_side is position_side]


async def test_a_planned_purchase_is_hedged_with_a_long_of_the_coins_still_to_buy() -> None:
    rig = await make_rig(buying("5"), spot={"BTC": "0"})
    await rig.keeper.tick()
    assert await legs(rig) == (D("5"), D("0"))
    [order] = orders_on(rig, PositionSide.LONG)
    assert order.side is OrderSide.BUY
    assert rig.keeper.status.state == "hedged" and rig.events.counts["hedge_opened"] == 1


async def test_coins_bought_in_parts_reduce_the_long_by_the_same_amount() -> None:
    rig = await make_rig(buying("5"), spot={"BTC": "0"})
    await rig.keeper.tick()
    for bought, left in (("1", "4"), ("1.5", "2.5"), ("2.5", "0")):
        rig.venue.deposit(Wallet.SPOT, "BTC", D(bought))
        await rig.set_price("52000")
        await rig.keeper.tick()
        assert await legs(rig) == (D(left), D("0")), bought
    reductions = [o for o in orders_on(rig, PositionSide.LONG) if o.side is OrderSide.SELL]
    assert len(reductions) == 3 and not orders_on(rig, PositionSide.SHORT)


async def test_a_drift_inside_the_band_trades_nothing() -> None:
    rig = await make_rig(buying("5", band=D("0.05")), spot={"BTC": "0"})
    await rig.keeper.tick()
    placed = len(rig.venue.orders)
    rig.venue.deposit(Wallet.SPOT, "BTC", D("0.2"))  # 4 % of the 4.8 left: inside a 5 % band
    await rig.set_price("50000")
    await rig.keeper.tick()
    assert len(rig.venue.orders) == placed and await legs(rig) == (D("5"), D("0"))


async def test_the_long_liquidation_price_is_below_the_mark_and_on_the_status() -> None:
    rig = await make_rig(buying("2"), spot={"BTC": "0"})
    await rig.keeper.tick()
    found = (await rig.venue.fetch_legs(SYMBOL)).long
    expected = liquidation_price_of(found.margin, [found], btc_market().brackets)
    plan = rig.keeper.last_plan
    assert plan is not None and plan.liquidation_price == expected and expected < D("50000")


async def test_a_fall_tops_up_the_long_margin_before_it_can_be_liquidated() -> None:
    rig = await make_rig(buying("2", leverage=3), spot={"BTC": "0"}, futures={"USDT": "100000"})
    await rig.keeper.tick()
    margin_before = (await rig.venue.fetch_legs(SYMBOL)).long.margin
    await rig.set_price("40000")  # a 20 % fall: a 3x long is near its liquidation
    await rig.keeper.tick()
    long_leg = (await rig.venue.fetch_legs(SYMBOL)).long
    assert long_leg.size == D("2") and long_leg.margin > margin_before
    liquidation = liquidation_price_of(long_leg.margin, [long_leg], btc_market().brackets)
    assert liquidation is not None and (D("40000") - liquidation) / D("40000") >= D("0.35")
    topups = [i for i in rig.journal.intents() if i.kind == "margin"]
    assert topups and all(i.detail["position_side"] == "long" for i in topups)


async def test_an_unwind_closes_the_long_in_its_close_form_and_keeps_the_coins() -> None:
    rig = await make_rig(buying("3", max_order=D("1")), spot={"BTC": "0"})
    await rig.keeper.tick()
    rig.keeper.control.submit("acct", rig.keeper.hedge.name, "unwind", "tester", "closing")
    for _ in range(5):
        await rig.keeper.tick()
    assert await legs(rig) == (D("0"), D("0"))
    closes = [o for o in orders_on(rig, PositionSide.LONG) if o.side is OrderSide.SELL]
    assert [o.amount for o in closes] == [D("1"), D("1"), D("1")]
    assert rig.keeper.status.trading_state == "closed"
    done = rig.journal.events(kind="unwind_completed")[0].detail
    assert D(done["short_bought_back"]) == D("3")  # the unwind's figure counts the hedge leg closed


async def test_a_long_hedge_with_until_closes_its_long_at_that_time_and_keeps_the_coins_bought() -> None:
    from datetime import UTC, datetime

    until = datetime.fromtimestamp(1_600_000_000 + 100, UTC).isoformat().replace("+00:00", "Z")
    rig = await make_rig(buying("5", until=until), spot={"BTC": "2"})
    await rig.keeper.tick()
    assert await legs(rig) == (D("3"), D("0"))
    await rig.set_price("51000", advance=99)
    await rig.keeper.tick()
    assert await legs(rig) == (D("3"), D("0")), "not a second early"
    await rig.set_price("51000", advance=1)
    await rig.keeper.tick()
    assert await legs(rig) == (D("0"), D("0")) and rig.venue.spot["BTC"] == D("2")
    assert rig.keeper.status.trading_state == "closed"

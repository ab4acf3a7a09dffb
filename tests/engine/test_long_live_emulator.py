"""A live long hedge for a planned purchase on Binance USDⓈ-M: the keeper, the real ccxt venue and the emulator's /fapi/.

The LONG leg (hedge mode, positionSide=LONG) equals the coins still to buy; it is reduced as coins arrive in spot,
closed at `until`, topped up after a fall, and unwound in its close form (SELL on positionSide LONG, no reduceOnly).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from hedgebot.config import HedgeConfig
from hedgebot.domain.instrument import HedgeSide
from hedgebot.testing.binance_faults import Fault
from tests.emulator_rig import BTC, START, EmulatorRig, emulator_rig
from tests.helpers import D, hedge_config

pytestmark = pytest.mark.slow


def buying(amount: str, **overrides: object) -> HedgeConfig:
    return hedge_config(side=HedgeSide.LONG, amount=D(amount), margin_mode="isolated", leverage=3, **overrides)


def long_leg(rig: EmulatorRig) -> Decimal:
    return D(rig.emulator.position(BTC, "LONG").amount)


def short_leg(rig: EmulatorRig) -> Decimal:
    return D(rig.emulator.position(BTC, "SHORT").amount)


async def test_a_live_long_holds_the_coins_still_to_buy_and_shrinks_as_they_arrive() -> None:
    async with emulator_rig(spot={"BTC": "0", "USDT": "0"}) as rig:
        keeper = rig.keeper(buying("3"))
        await keeper.prepare()
        await keeper.tick()
        assert (long_leg(rig), short_leg(rig)) == (D(3), D(0))
        for bought, left in (("1", "2"), ("1.5", "0.5"), ("0.5", "0")):
            rig.emulator.deposit("spot", "BTC", D(bought))
            rig.clock.advance(10)
            await keeper.tick()
            assert (long_leg(rig), short_leg(rig)) == (D(left), D(0)), bought
        orders = list(rig.emulator.futures_orders().values())
        assert [(o["side"], o["positionSide"]) for o in orders] == [("BUY", "LONG")] + [("SELL", "LONG")] * 3
        assert not any(o["reduceOnly"] for o in orders)  # hedge mode names the leg instead
        assert sorted(rig.emulator.futures_orders()) == sorted(i.client_id for i in rig.journal.intents() if i.kind == "order")


async def test_a_live_long_is_closed_at_until_and_the_coins_bought_are_kept() -> None:
    until = datetime.fromtimestamp(START + 100, UTC).isoformat().replace("+00:00", "Z")
    async with emulator_rig(spot={"BTC": "2", "USDT": "0"}) as rig:
        keeper = rig.keeper(buying("5", until=until))
        await keeper.prepare()
        await keeper.tick()
        assert long_leg(rig) == D(3)
        rig.clock.advance(99)
        await keeper.tick()
        assert long_leg(rig) == D(3), "not a second early"
        # The end is judged on the exchange's clock, measured against ours to the millisecond over a request whose
        # virtual time may step: a second past `until` it has come whatever that measurement gave.
        rig.clock.advance(2)
        await keeper.tick()
        assert long_leg(rig) == D(0) and D(rig.emulator.book.spot["BTC"]) == D(2)
        assert keeper.status.trading_state == "closed"


async def test_the_guard_tops_up_a_live_long_after_a_fall() -> None:
    async with emulator_rig(spot={"BTC": "0", "USDT": "0"}, futures="100000") as rig:
        keeper = rig.keeper(buying("2"))
        await keeper.prepare()
        await keeper.tick()
        before = D(rig.emulator.position(BTC, "LONG").isolated_wallet)
        for price in ("46000", "42000", "39000"):  # a fall in steps the jump guard accepts
            rig.emulator.set_mark(BTC, D(price))
            rig.clock.advance(60)
            await keeper.tick()
            assert rig.emulator.forced == [], price
        assert long_leg(rig) == D(2) and D(rig.emulator.position(BTC, "LONG").isolated_wallet) > before
        history = rig.emulator.book.margin_history
        assert history and {h["positionSide"] for h in history} == {"LONG"} and {h["type"] for h in history} == {1}
        liquidation = rig.emulator.liquidation_price(BTC, "LONG")
        assert liquidation < D(39000) * (1 - keeper.policy.guard.trigger)  # the runway below the mark was restored


async def test_a_live_long_unwinds_in_its_close_form_and_a_lost_answer_sends_nothing_twice() -> None:
    async with emulator_rig(spot={"BTC": "0", "USDT": "0"}) as rig:
        keeper = rig.keeper(buying("3", max_order=D(1)))
        await keeper.prepare()
        rig.emulator.inject(Fault("timeout_after", "/fapi/v1/order", "POST", delay=1.5))
        await keeper.tick()
        await keeper.tick()
        assert long_leg(rig) == D(3) and len(rig.emulator.executions) == 3  # three slices of 1, none twice
        assert rig.emulator.requests.count(("POST", "/fapi/v1/order")) == 3 and ("GET", "/fapi/v1/order") in rig.emulator.requests
        keeper.control.submit("live", keeper.hedge.name, "unwind", "tester", "closing")
        for _ in range(6):
            rig.clock.advance(10)
            await keeper.tick()
        assert long_leg(rig) == D(0) and short_leg(rig) == D(0)
        closes = [o for o in rig.emulator.futures_orders().values() if o["side"] == "SELL"]
        assert [(o["positionSide"], o["reduceOnly"], o["executedQty"]) for o in closes] == [("LONG", False, "1")] * 3
        assert keeper.status.trading_state == "closed"

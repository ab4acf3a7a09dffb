"""The keeper sleeps through prices that cannot change its plan and wakes for those that can."""

from __future__ import annotations

import asyncio

from hedgebot.domain.model import Wallet
from tests.helpers import D, SYMBOL, hedge_config, make_rig


async def _running_rig(**guard: object):
    rig = await make_rig(spot={"BTC": "1"}, hedge=hedge_config(tick_seconds=3600, wake_on_move=D("0.5"), margin_guard={"enabled": True, **guard}))
    task = asyncio.ensure_future(rig.keeper.run())
    await rig.clock.settle()
    return rig, task


async def test_a_price_inside_the_plans_range_does_not_wake_the_keeper() -> None:
    rig, task = await _running_rig()
    plan = rig.keeper.last_plan
    assert plan is not None and await rig.short() == D("1")
    ticks_before = rig.keeper.status.updated_at
    await rig.clock.advance(60)
    rig.venue.update_price(SYMBOL, rig.clock.now(), plan.valid_high * D("0.999"))
    rig.keeper.notify_price(plan.valid_high * D("0.999"))
    assert not rig.keeper.wake.is_set()
    await rig.clock.settle()
    assert rig.keeper.status.updated_at == ticks_before
    rig.keeper.stop()
    await task


async def test_a_price_past_the_guard_trigger_wakes_the_keeper_and_it_tops_up_at_once() -> None:
    rig, task = await _running_rig()
    plan = rig.keeper.last_plan
    assert plan is not None and plan.valid_high is not None
    await rig.clock.advance(60)
    price = (plan.valid_high * D("1.01")).quantize(D("0.01"))
    rig.venue.update_price(SYMBOL, rig.clock.now(), price)
    rig.keeper.notify_price(price)
    assert rig.keeper.wake.is_set()
    await rig.clock.settle()
    assert any(m.kind == "margin" and m.amount > 0 for m in rig.venue.movements)
    rig.keeper.stop()
    await task


async def test_a_balance_change_wakes_the_keeper_before_its_tick() -> None:
    rig, task = await _running_rig()
    rig.venue.deposit(Wallet.SPOT, "BTC", D("0.5"))
    rig.keeper.notify_balance()
    await rig.clock.advance(1)
    assert await rig.short() == D("1.5")
    rig.keeper.stop()
    await task

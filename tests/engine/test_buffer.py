"""The buffer: a short whose coins are held on another account keeps its distance by buying back, never by liquidation.

Holdings account `cold` holds 10 BTC; the short trades on another venue whose only margin is its own
futures wallet, and a deposit there takes 30 minutes. The buffer keeps the short at least 15 % + 2 %
(an adverse move plus the divergence allowed between the two venues' prices) from liquidation.
"""

from __future__ import annotations

import re

import pytest

from hedgebot.clock import SimClock
from hedgebot.domain.model import Wallet
from hedgebot.engine.holdings import AccountHoldings
from hedgebot.engine.keeper import Keeper
from hedgebot.exchange.funding import ConstantFunding
from hedgebot.exchange.paper import PaperMarket, PaperVenue
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import Journal
from tests.helpers import D, SYMBOL, btc_market, hedge_config

FLOOR = D("0.17")
BUFFER = {"adverse_move": "0.15", "divergence": "0.02", "refill_seconds": 1800}


async def buffered_hedge(futures: str) -> tuple[Keeper, PaperVenue, SimClock]:
    clock = SimClock(start=1_600_000_000.0)
    cold = PaperVenue(clock, [], spot={"BTC": D(10)}, futures={})
    venue = PaperVenue(clock, [PaperMarket(btc_market(), ConstantFunding(D(0)))], spot={}, futures={"USDT": D(futures)})
    venue.update_price(SYMBOL, clock.now(), D(30000))
    journal = Journal(":memory:", clock)
    hedge = hedge_config(max_order=D(20), exposure={"spot": False, "accounts": ["cold"]}, buffer=BUFFER,
                         margin_guard={"sources": ["futures_wallet"]})
    keeper = Keeper("main", hedge, venue, clock, journal, EventLog(journal, NullLogger()),
                    holdings=[AccountHoldings("cold", cold, 300)])
    await keeper.prepare()
    return keeper, venue, clock


async def move(keeper: Keeper, venue: PaperVenue, clock: SimClock, price: str) -> None:
    await clock.advance(600)
    venue.update_price(SYMBOL, clock.now(), D(price), high=D(price))
    for _ in range(4):
        await keeper.tick()


async def test_a_15_percent_gap_and_a_rally_after_it_liquidate_nothing_the_short_is_bought_back_in_lockstep_and_said() -> None:
    keeper, venue, clock = await buffered_hedge("120000")
    await move(keeper, venue, clock, "30000")
    assert keeper.status.short == D(10) and keeper.status.distance > FLOOR  # hedged in full, with its buffer
    for price in ("34500", "38000", "40000"):  # a 15 % gap, then the rally goes on and nothing refills the wallet
        await move(keeper, venue, clock, price)
        assert keeper.status.distance >= FLOOR, (price, keeper.status.distance)
    assert [e for e in venue.events if e.kind == "liquidation"] == []
    assert keeper.status.short < D(10)  # bought back, not liquidated
    lockstep = keeper.alerts.active["buffer_lockstep"]
    assert lockstep.severity.value == "critical" and "30 min" in lockstep.message
    asked = re.search(r"deposit (\d+\.\d\d) USDT to this account", lockstep.message)
    assert asked is not None, lockstep.message  # the alert states the amount
    assert "under_hedged" in keeper.alerts.active  # the under-hedge is reported, never silent
    buybacks = [i for i in keeper.journal.intents() if i.kind == "order" and i.detail["reason"].startswith("lockstep")]
    assert buybacks and all(i.detail["side"] == "buy" for i in buybacks)
    assert keeper.last_plan is not None and keeper.last_plan.deposit_needed == D(asked.group(1))  # on the plan too
    venue.deposit(Wallet.FUTURES, "USDT", D(asked.group(1)))  # the deposit it asked for arrives, no more
    await move(keeper, venue, clock, "40000")
    await move(keeper, venue, clock, "40000")
    assert keeper.status.short == D(10) and "buffer_lockstep" not in keeper.alerts.active
    assert keeper.status.distance >= FLOOR


async def test_with_a_buffer_the_short_grows_only_as_far_as_its_margin_keeps_the_guards_target() -> None:
    keeper, venue, clock = await buffered_hedge("60000")
    await move(keeper, venue, clock, "30000")
    assert D(0) < keeper.status.short < D(10)
    assert "under_hedged" in keeper.alerts.active and "the buffer" in keeper.alerts.active["under_hedged_no_margin"].message
    await move(keeper, venue, clock, "34500")  # the 15 % gap: what was kept aside tops the short up
    assert keeper.status.distance >= FLOOR and [e for e in venue.events if e.kind == "liquidation"] == []


def test_a_buffer_needs_the_margin_guard_and_a_floor_below_one() -> None:
    with pytest.raises(ValueError, match="enable margin_guard"):
        hedge_config(buffer=BUFFER, margin_guard={"enabled": False})
    with pytest.raises(ValueError, match="adverse_move \\+ divergence is 1.0"):
        hedge_config(buffer={**BUFFER, "adverse_move": "0.9", "divergence": "0.1"})
    guard = hedge_config(buffer=BUFFER).policy().guard
    assert (guard.floor, guard.trigger, guard.target) == (FLOOR, D("0.20"), D("0.35"))
    wide = hedge_config(buffer={**BUFFER, "adverse_move": "0.30"}).policy().guard
    assert (wide.trigger, wide.target) == (D("0.32"), D("0.47"))  # tops up before the floor, as far beyond it again


def test_no_lockstep_buy_back_goes_out_on_an_unconfirmed_price_jump() -> None:
    from dataclasses import replace

    from hedgebot.domain.model import PlaceOrder
    from hedgebot.domain.policy import plan
    from tests.helpers import short_leg, snapshot

    policy = hedge_config(buffer=BUFFER, margin_guard={"sources": ["futures_wallet"]}).policy()
    near = snapshot(spot_asset=D(2), short=short_leg("2", entry="50000"), mark_price=D(60000), futures_free=D(0), spot_quote=D(0))
    confirmed = plan(replace(near, previous_price=D(60000)), policy, 1000.0)
    assert [a for a in confirmed.actions if isinstance(a, PlaceOrder) and a.reduce]  # bought back on a confirmed price
    unconfirmed = plan(replace(near, previous_price=D(50000)), policy, 1000.0)  # a 20 % jump not yet seen twice
    assert not [a for a in unconfirmed.actions if isinstance(a, PlaceOrder)]
    assert "buffer_lockstep" in {a.code for a in unconfirmed.alerts}


async def test_the_lockstep_alert_stays_up_while_the_short_is_held_under_target_and_clears_only_when_it_is_whole() -> None:
    keeper, venue, clock = await buffered_hedge("120000")
    for price in ("30000", "34500", "38000"):  # bought back at 38,000
        await move(keeper, venue, clock, price)
    held = keeper.status.short
    assert held < D(10) and "buffer_lockstep" in keeper.alerts.active
    for price in ("37500", "37000", "37800"):  # the price eases and hovers: nothing deposited, the short still held
        await move(keeper, venue, clock, price)
        assert "buffer_lockstep" in keeper.alerts.active, price
    venue.deposit(Wallet.FUTURES, "USDT", D(300000))
    await move(keeper, venue, clock, "37800")
    await move(keeper, venue, clock, "37800")
    assert keeper.status.short == D(10) and "buffer_lockstep" not in keeper.alerts.active


def test_a_buffer_is_refused_where_its_buy_back_would_count_on_money_the_guard_may_not_move() -> None:
    with pytest.raises(ValueError, match="needs futures_wallet among margin_guard.sources"):
        hedge_config(buffer=BUFFER, margin_guard={"sources": ["spot_stablecoin"]})
    with pytest.raises(ValueError, match="release moves margin to spot, out of the guard's reach"):
        hedge_config(buffer=BUFFER, margin_guard={"sources": ["futures_wallet"], "release": "0.6"})
    with pytest.raises(ValueError, match="must be above the buffer's target 0.47"):
        hedge_config(buffer={**BUFFER, "adverse_move": "0.30"}, margin_guard={"sources": ["futures_wallet", "spot_stablecoin"], "release": "0.40"})
    hedge_config(buffer=BUFFER, margin_guard={"sources": ["futures_wallet", "spot_stablecoin"], "release": "0.6"})  # reachable: fine

"""Replayed time, one mechanism for backtests and the daemon's replay mode: only the pace differs."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from hedgebot.clock import SimClock
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.feeds import Candle
from hedgebot.exchange.funding import ConstantFunding
from hedgebot.exchange.paper import PaperMarket, PaperVenue
from hedgebot.replay_clock import ReplayClock, apply_candle, pacing_clock

HOUR = 3600.0


async def test_a_backtests_replayed_time_runs_a_timer_due_before_a_candle_at_its_own_instant() -> None:
    replay = ReplayClock.on_loop(SimClock(start=0.0))
    seen: list[float] = []

    async def tick() -> None:
        await replay.sleep(1800.0)
        seen.append(replay.now())

    task = asyncio.ensure_future(tick())
    await replay.loop.settle()
    await replay.reach(HOUR)
    assert seen == [1800.0]  # the tick ran between the candles, at its own replayed time
    assert replay.now() == HOUR
    await task


async def test_a_backtests_replayed_time_is_its_loops_and_a_quiet_candle_moves_it_without_a_timer() -> None:
    loop = SimClock(start=1_000.0)
    replay = ReplayClock.on_loop(loop)
    replay.move_to(1_000.0 + HOUR)
    assert replay.now() == loop.now() == 1_000.0 + HOUR
    await loop.advance(60.0)
    assert replay.now() == 1_000.0 + HOUR + 60.0  # between candles, replayed time runs on with the loop
    assert pacing_clock(replay) is loop


async def test_the_daemons_replayed_time_holds_at_the_latest_candle_while_its_pace_moves_on() -> None:
    pace = SimClock(start=5.0)
    replay = ReplayClock(pace)
    assert replay.now() == 5.0  # the pacing clock's until the first candle
    await replay.reach(1_600_000_000.0)
    await replay.sleep(1.0)  # one step of the pace
    assert pace.now() == 6.0
    assert replay.now() == 1_600_000_000.0
    replay.move_to(1_500_000_000.0)  # a looping replay starts over: replayed time never goes back
    assert replay.now() == 1_600_000_000.0
    assert pacing_clock(replay) is pace


async def test_a_candle_applied_at_its_replayed_instant_marks_the_venue_with_its_close_at_that_time() -> None:
    market = default_market("BTC/USDT:USDT")
    assert market is not None
    replay = ReplayClock.on_loop(SimClock(start=0.0))
    venue = PaperVenue(replay, [PaperMarket(market, ConstantFunding(Decimal("0")))], spot={}, futures={"USDT": Decimal("1000")})
    candle = Candle(0.0, Decimal("100"), Decimal("130"), Decimal("90"), Decimal("120"))
    await replay.reach(candle.time + HOUR)
    apply_candle(venue, market.symbol, candle, replay.now())
    price, stamped = venue.marks[market.symbol]
    assert (price, stamped) == (Decimal("120"), HOUR)

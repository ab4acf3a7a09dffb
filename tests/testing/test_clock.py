"""The stepping clock that drives daemons on the emulator in virtual time."""

from __future__ import annotations

import asyncio

import pytest

from hedgebot.testing.clock import SteppingClock


class SlowVenue:
    """A venue whose one call takes real time, as a request on a busy machine does."""

    def __init__(self, clock: SteppingClock) -> None:
        self.clock = clock
        self.started_at: float | None = None
        self.ended_at: float | None = None

    async def fetch(self) -> str:
        self.started_at = self.clock.now()
        for _ in range(50):  # many loop turns in which other tasks run and sleep
            await asyncio.sleep(0)
        self.ended_at = self.clock.now()
        return "answer"


async def test_time_stands_still_while_a_held_venue_call_is_under_way() -> None:
    clock = SteppingClock(1000.0)
    venue = SlowVenue(clock)
    held = clock.holding(venue)

    async def other_task() -> None:  # a status writer sleeping on the same clock
        for _ in range(20):
            await clock.sleep(5.0)

    sleeper = asyncio.ensure_future(other_task())
    await asyncio.sleep(0)
    assert await held.fetch() == "answer"
    assert venue.started_at == venue.ended_at, "the request took no virtual time however many times others slept"
    await sleeper
    assert clock.now() >= 1000.0 + 20 * 5.0, "once the call ended, the sleeper's time passed"


async def test_an_unheld_call_lets_time_run_on_which_is_what_the_hold_is_for() -> None:
    clock = SteppingClock(1000.0)
    venue = SlowVenue(clock)

    async def other_task() -> None:
        for _ in range(20):
            await clock.sleep(5.0)

    sleeper = asyncio.ensure_future(other_task())
    await asyncio.sleep(0)
    await venue.fetch()
    await sleeper
    assert venue.ended_at is not None and venue.started_at is not None and venue.ended_at > venue.started_at


async def test_a_periodic_action_runs_once_per_crossed_period_of_virtual_time() -> None:
    clock = SteppingClock(1000.0)
    published: list[float] = []
    clock.every(1.0, lambda: published.append(clock.now()))
    clock.advance(0.4)
    clock.advance(0.4)
    assert published == []
    clock.advance(0.4)  # crosses 1001
    clock.advance(10.0)  # crosses ten periods: published once, at the new time
    assert published == pytest.approx([1001.2, 1011.2])


async def test_a_held_call_that_itself_waits_on_the_clock_moves_time_on_and_returns() -> None:
    clock = SteppingClock(1000.0)

    class PacedVenue:
        async def fetch(self) -> float:
            await clock.sleep(5.0)  # a rate limit's pause inside the call, on the same clock
            return clock.now()

    async def other_task() -> None:
        await clock.sleep(1.0)

    held = clock.holding(PacedVenue())
    call = asyncio.ensure_future(held.fetch())
    sleeper = asyncio.ensure_future(other_task())
    answered = await asyncio.wait_for(call, timeout=10)  # real seconds: only a guard against a hang
    assert answered == 1005.0, "the call's own wait took its virtual time, and no other task's"
    await sleeper
    assert clock.now() == 1006.0, "the other task waited for the call, then slept"

"""Simulated time in the event loop: jumps to the next timer, wakes in timer order, never spins."""

from __future__ import annotations

import asyncio

import pytest

from hedgebot.clock import SimClock, SimulationDeadlock, run_simulated


async def test_plain_asyncio_sleep_runs_in_simulated_time() -> None:
    clock = SimClock(start=1000.0)
    await clock.run(asyncio.sleep(3600))
    assert clock.now() == pytest.approx(4600.0)


async def test_sleepers_wake_in_the_order_of_their_timers_whatever_order_they_slept_in() -> None:
    clock = SimClock(start=0.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, round(clock.now(), 6)))

    tasks = [asyncio.ensure_future(sleeper(n, s)) for n, s in (("c", 30), ("a", 10), ("b", 20))]
    await clock.advance(25)
    assert woke == [("a", 10.0), ("b", 20.0)]
    await clock.advance(10)
    assert woke[-1] == ("c", 30.0)
    await asyncio.gather(*tasks)


async def test_a_year_of_hourly_sleeps_takes_one_loop_turn_each_not_a_spin() -> None:
    clock = SimClock(start=0.0)
    turns = 0

    async def hourly() -> None:
        nonlocal turns
        for _ in range(24 * 365):
            await asyncio.sleep(3600)
            turns += 1

    await clock.run(hourly())
    assert turns == 24 * 365 and clock.now() == pytest.approx(365 * 86400.0)


async def test_settle_lets_every_ready_task_run_before_time_moves() -> None:
    clock = SimClock(start=0.0)
    steps: list[int] = []

    async def chain() -> None:
        for i in range(500):  # far more hand-offs than any fixed spin count
            await asyncio.sleep(0)
            steps.append(i)

    task = asyncio.ensure_future(chain())
    await clock.settle()
    assert len(steps) == 500 and clock.now() == 0.0
    await task


async def test_wait_for_returns_false_at_the_timeout_and_true_when_the_event_is_set() -> None:
    clock = SimClock(start=0.0)
    event = asyncio.Event()
    assert await clock.run(clock.wait_for(event, 5)) is False
    assert clock.now() == pytest.approx(5.0)
    asyncio.get_running_loop().call_later(2, event.set)
    assert await clock.run(clock.wait_for(event, 5)) is True
    assert clock.now() == pytest.approx(7.0)


async def test_run_reports_a_task_that_waits_on_something_the_clock_cannot_bring() -> None:
    clock = SimClock(start=0.0)
    with pytest.raises(SimulationDeadlock, match="deadlock"):
        await clock.run(asyncio.Event().wait())


async def test_set_never_moves_time_backwards() -> None:
    clock = SimClock(start=100.0)
    await clock.set(50.0)
    assert clock.now() == 100.0


def test_run_simulated_runs_a_coroutine_on_a_fresh_loop_in_simulated_time() -> None:
    async def main() -> float:
        clock = SimClock(start=1_600_000_000.0)
        await asyncio.wait_for(asyncio.sleep(86400 * 30), timeout=86400 * 31)
        return clock.now()

    assert run_simulated(main()) == pytest.approx(1_600_000_000.0 + 86400 * 30)


async def test_a_leap_past_a_timer_fires_it_late_at_the_leap_and_pending_timers_say_when_each_is_due() -> None:
    clock = SimClock(start=0.0)
    woke: list[float] = []

    async def sleeper() -> None:
        await clock.sleep(60)
        woke.append(clock.now())

    task = asyncio.ensure_future(sleeper())
    await clock.settle()
    virtual = clock.virtual
    assert virtual.pending_timers() == [clock.loop_time(60.0)]
    with pytest.raises(RuntimeError):
        virtual.skip_to(clock.loop_time(300.0))  # skipping over a timer is refused
    virtual.leap_to(clock.loop_time(300.0))  # leaping is not: the timer fires once, late, at the leap
    await clock.settle()
    await task
    assert woke == [pytest.approx(300.0)] and virtual.pending_timers() == []  # the loop's origin may be any float

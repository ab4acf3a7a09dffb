"""Real and simulated time. Nothing else in hedgebot reads the wall clock or sleeps.

The simulated clock lets tests and backtests run hours of market time in
milliseconds: tasks sleep on it, and the driver advances it explicitly.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    """The one source of time for the engine, venues and feeds."""

    def now(self) -> float:
        """Return the current time in seconds since the epoch."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the caller for `seconds`."""
        ...

    async def wait_for(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait for `event` at most `timeout` seconds; return whether it was set."""
        ...


class RealClock:
    """Wall-clock time."""

    def now(self) -> float:
        """Return the wall-clock time."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        await asyncio.sleep(max(seconds, 0.0))

    async def wait_for(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait for the event or the timeout, in real time."""
        try:
            await asyncio.wait_for(event.wait(), timeout=max(timeout, 0.0))
            return True
        except TimeoutError:
            return False


class SimClock:
    """Simulated time that moves only when `advance` or `set` is called."""

    def __init__(self, start: float = 1_600_000_000.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        """Return the simulated time."""
        return self._now

    def _timer(self, seconds: float) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self._now + max(seconds, 0.0), next(self._seq), future))
        return future

    async def sleep(self, seconds: float) -> None:
        """Suspend until simulated time has moved on by `seconds`."""
        await self._timer(seconds)

    async def wait_for(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait for the event or until simulated time passes `timeout`."""
        if event.is_set():
            return True
        timer = self._timer(timeout)
        waiter = asyncio.ensure_future(event.wait())
        pending: set[asyncio.Future[Any]] = {timer, waiter}
        try:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not timer.done():
                timer.cancel()
            if not waiter.done():
                waiter.cancel()
        return event.is_set()

    async def settle(self) -> None:
        """Let every task that can run, run, before time moves again."""
        for _ in range(64):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, waking sleepers in order."""
        await self.set(self._now + seconds)

    async def set(self, when: float) -> None:
        """Move time forward to `when`, waking sleepers in order."""
        await self.settle()
        while self._timers and self._timers[0][0] <= when:
            due, _, future = heapq.heappop(self._timers)
            self._now = max(self._now, due)
            if not future.done():
                future.set_result(None)
                await self.settle()
        self._now = max(self._now, when)
        await self.settle()

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Drive `awaitable` to completion, jumping time to the next timer whenever all is blocked."""
        task = asyncio.ensure_future(awaitable)
        while True:
            await self.settle()
            if task.done():
                return task.result()
            if not self._timers:
                task.cancel()
                raise RuntimeError("simulation deadlock: the task waits on something other than the clock")
            await self.set(self._timers[0][0])

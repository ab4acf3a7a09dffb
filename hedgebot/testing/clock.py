"""A clock for driving real network I/O in virtual time."""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
import inspect
from collections.abc import Callable
from typing import Any


class SteppingClock:
    """Virtual time that jumps forward by whatever anyone sleeps, while real I/O runs normally.

    `SimClock` needs every task to wait on it; a keeper talking HTTP to an
    emulator waits on sockets too. Here a sleep moves time on at once and
    yields to the event loop, so backoffs cost nothing and outcomes never
    depend on the wall clock.
    """

    def __init__(self, start: float) -> None:
        self._now = start
        self._periodic: list[tuple[float, Callable[[], None]]] = []
        self._holders: Counter[asyncio.Task[Any] | None] = Counter()  # the tasks whose venue calls are under way
        self._idle: asyncio.Event | None = None

    def holding(self, port: Any) -> Any:
        """Return `port` with time held still while any of its calls is under way.

        Several tasks sleep on this clock; without the hold, one task's sleep
        moves time on while another waits on a socket, so how much virtual
        time a request takes depends on how busy the machine is. Held, time
        only moves while nobody waits on the venue.
        """
        return _HeldPort(port, self)

    async def _held(self, call: Callable[[], Any]) -> Any:
        task = asyncio.current_task()
        self._holders[task] += 1
        try:
            return await call()
        finally:
            self._holders[task] -= 1
            if not self._holders[task]:
                del self._holders[task]
            self._changed().set()

    def _changed(self) -> asyncio.Event:
        if self._idle is None:
            self._idle = asyncio.Event()
        return self._idle

    async def _until_idle(self) -> None:
        # A call under way holds time still for everyone else; its own waits (a rate limit's pause) move time on.
        me = asyncio.current_task()
        while any(task is not me for task in self._holders):
            event = self._changed()
            event.clear()
            await event.wait()

    def every(self, period: float, action: Callable[[], None]) -> None:
        """Run `action` whenever virtual time crosses a multiple of `period`, as an exchange's periodic push would.

        A test that publishes a price on a real-time loop lets it go stale in
        virtual time on a busy machine; tied to the clock it is published at
        the same virtual moments however fast the machine is.
        """
        self._periodic.append((period, action))

    def now(self) -> float:
        """Return the virtual time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward, running each periodic action whose period was crossed (once, however many were)."""
        before = self._now
        self._now += max(seconds, 0.0)
        for period, action in self._periodic:
            if self._now // period > before // period:
                action()

    async def sleep(self, seconds: float) -> None:
        """Move time forward by `seconds` (once no held call is under way) and let other tasks run."""
        await self._until_idle()
        self.advance(seconds)
        await asyncio.sleep(0)

    async def wait_for(self, event: asyncio.Event, timeout: float) -> bool:
        """Return at once: set events are reported, otherwise the timeout is taken as passed."""
        if not event.is_set():
            await self._until_idle()
        if not event.is_set():
            self.advance(timeout)
        await asyncio.sleep(0)
        return event.is_set()


class _HeldPort:
    """A venue whose coroutine calls hold a `SteppingClock` still while they run."""

    def __init__(self, port: Any, clock: SteppingClock) -> None:
        self._port = port
        self._clock = clock

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._port, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        @functools.wraps(attribute)
        async def held(*args: Any, **kwargs: Any) -> Any:
            return await self._clock._held(lambda: attribute(*args, **kwargs))

        return held

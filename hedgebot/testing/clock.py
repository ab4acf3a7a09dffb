"""A clock for driving real network I/O in virtual time."""

from __future__ import annotations

import asyncio


class SteppingClock:
    """Virtual time that jumps forward by whatever anyone sleeps, while real I/O runs normally.

    `SimClock` needs every task to wait on it; a keeper talking HTTP to an
    emulator waits on sockets too. Here a sleep moves time on at once and
    yields to the event loop, so backoffs cost nothing and outcomes never
    depend on the wall clock.
    """

    def __init__(self, start: float) -> None:
        self._now = start

    def now(self) -> float:
        """Return the virtual time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self._now += max(seconds, 0.0)

    async def sleep(self, seconds: float) -> None:
        """Move time forward by `seconds` and let other tasks run."""
        self.advance(seconds)
        await asyncio.sleep(0)

    async def wait_for(self, event: asyncio.Event, timeout: float) -> bool:
        """Return at once: set events are reported, otherwise the timeout is taken as passed."""
        if not event.is_set():
            self.advance(timeout)
        await asyncio.sleep(0)
        return event.is_set()

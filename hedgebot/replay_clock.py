"""The daemon's clock in replay mode: time is the replayed candles' time; waiting is paced by another clock.

A paper venue on a replay feed lives in the replay's time: funding settles at
the replayed settlement times, and the journal, status and alerts carry the
candles' times. The feed driver moves the time to each candle as it applies
it; sleeping and waiting are left to the pacing clock (real time in `run`, a
simulated clock in tests), so a candle goes by every `step_seconds` as before.
"""

from __future__ import annotations

import asyncio

from hedgebot.clock import Clock


class ReplayClock:
    """Replayed time on top of a pacing clock."""

    def __init__(self, pace: Clock) -> None:
        self.pace = pace
        self._now: float | None = None

    def now(self) -> float:
        """Return the time of the latest replayed candle (the pacing clock's until the first one)."""
        return self.pace.now() if self._now is None else self._now

    def move_to(self, when: float) -> None:
        """Move replayed time to `when`; it never goes back (a looping replay stays at its latest time)."""
        self._now = when if self._now is None else max(self._now, when)

    async def sleep(self, seconds: float) -> None:
        """Sleep on the pacing clock."""
        await self.pace.sleep(seconds)

    async def wait_for(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait on the pacing clock."""
        return await self.pace.wait_for(event, timeout)


def pacing_clock(clock: Clock) -> Clock:
    """Return the clock a person waits on: the pacing clock of a replay, else `clock` itself."""
    return clock.pace if isinstance(clock, ReplayClock) else clock

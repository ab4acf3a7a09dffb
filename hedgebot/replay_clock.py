"""Replayed time: where the time of a replay comes from, for `hedgebot backtest` and `hedgebot run` on a candle file alike.

Owns the replay's clock (`ReplayClock`) and the one way a candle is applied at
its instant (`apply_candle`). May not touch the keeper, the journal or what a
venue does with a candle (that is `PaperVenue.update_price`), nor decide when
candles come: the driver (hedgebot/backtest.py `_replay`, the daemon's feed
loop) does.

A replay lives in the candles' time: the paper venue's marks and funding, the
journal, status and alerts carry it. Both drivers hold a `ReplayClock`, move it
to each candle's instant, then give the candle to the venue with
`apply_candle`. They differ only in the pace, the clock that waiting runs on:

- a backtest replays on the simulated event loop (`ReplayClock.on_loop`,
  hedgebot/clock.py `SimClock`): the loop's time *is* the replayed time, so
  moving the clock to a candle runs every timer due before it at its own
  instant (`reach`), and a keeper's tick between two candles carries its own
  replayed time. A run of quiet candles is leapt over on the same loop
  (hedgebot/backtest.py `_leap`), which is pacing, not another source of time;
- `hedgebot run` paces the candles on its clock (`ReplayClock(pace)`: real time,
  a simulated clock in tests), one every `step_seconds`; replayed time jumps to
  each candle's time and holds there until the next, and sleeping and waiting
  stay on the pace.

The instant each names a candle by is the driver's, unchanged: a backtest
applies a candle at its close, the daemon at its time stamp in the file (its
open).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from hedgebot.clock import Clock, SimClock

if TYPE_CHECKING:
    from hedgebot.exchange.feeds import Candle
    from hedgebot.exchange.paper import PaperVenue


class ReplayClock:
    """Replayed time on top of a pacing clock."""

    def __init__(self, pace: Clock) -> None:
        self.pace = pace
        self._now: float | None = None
        self._loop: SimClock | None = None  # set: replayed time is this simulated loop's own time

    @classmethod
    def on_loop(cls, loop: SimClock) -> ReplayClock:
        """Return replayed time that is the simulated loop's own time (a backtest's): moving it runs the loop's timers."""
        clock = cls(loop)
        clock._loop = loop
        return clock

    @property
    def loop(self) -> SimClock:
        """Return the simulated loop whose time this replay is (only for `on_loop` clocks)."""
        if self._loop is None:
            raise RuntimeError("this replay is paced by another clock, not run on a simulated loop")
        return self._loop

    def now(self) -> float:
        """Return the replayed time: the loop's (`on_loop`), else the latest candle's (the pacing clock's until the first)."""
        return self.pace.now() if self._now is None else self._now

    def move_to(self, when: float) -> None:
        """Move replayed time to `when`; it never goes back (a looping replay stays at its latest time).

        On a simulated loop no timer may fall due before `when`: `reach` runs those.
        """
        loop = self._loop
        if loop is not None:
            loop.virtual.skip_to(loop.loop_time(when))
        else:
            self._now = when if self._now is None else max(self._now, when)

    async def reach(self, when: float) -> None:
        """Move replayed time to `when`; on a simulated loop, first let every timer due by then run at its own time."""
        loop = self._loop
        if loop is not None:
            due = loop.virtual.next_timer()
            if due is not None and due <= loop.loop_time(when):
                await loop.set(when)
                return
        self.move_to(when)

    async def sleep(self, seconds: float) -> None:
        """Sleep on the pacing clock."""
        await self.pace.sleep(seconds)

    async def wait_for(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait on the pacing clock."""
        return await self.pace.wait_for(event, timeout)


def apply_candle(venue: PaperVenue, symbol: str, candle: Candle, at: float) -> None:
    """Give the venue `candle` as of replayed instant `at`: funding settled inside it, its extremes tested, then its close."""
    venue.update_price(symbol, at, candle.close, open_=candle.open, high=candle.high, low=candle.low)


def pacing_clock(clock: Clock) -> Clock:
    """Return the clock a person waits on: the pacing clock of a replay, else `clock` itself."""
    return clock.pace if isinstance(clock, ReplayClock) else clock

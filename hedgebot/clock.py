"""Real and simulated time. Nothing else in hedgebot reads the wall clock.

Simulated time lives in the event loop itself (`VirtualTime`): the loop's
`time()` is simulated, and whenever every task is waiting, the loop jumps
straight to its next timer instead of sleeping. Plain `asyncio.sleep`,
`asyncio.wait_for` and every library timeout then run in simulated time, so a
year of market time costs only the work done in it, and the order in which
tasks wake is the order of their timers: deterministic.

Replayed time (a backtest's, the daemon's replay mode's) is built on these in
`hedgebot.replay_clock`.

`SimClock` is the handle tests and backtests hold: it installs virtual time on
the running loop the first time it is used there, and drives it (`advance`,
`set`, `run`, `settle`). `run_simulated` runs a coroutine on a fresh loop in
simulated time, as `asyncio.run` does in real time.
"""

from __future__ import annotations

import asyncio
import heapq
import selectors
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
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


async def _wait_event(event: asyncio.Event, timeout: float) -> bool:
    if event.is_set():
        return True
    try:
        await asyncio.wait_for(event.wait(), timeout=max(timeout, 0.0))
        return True
    except TimeoutError:
        return event.is_set()


def monotonic_of(clock: Clock) -> Callable[[], float]:
    """Return the clock's monotonic reading (simulated clocks: their own time, which never runs back)."""
    return getattr(clock, "monotonic", clock.now)


class RealClock:
    """Wall-clock time."""

    def now(self) -> float:
        """Return the wall-clock time."""
        return time.time()

    def monotonic(self) -> float:
        """Return a clock that never jumps (for pacing and back-off: the wall clock may be stepped by NTP)."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        await asyncio.sleep(max(seconds, 0.0))

    async def wait_for(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait for the event or the timeout, in real time."""
        return await _wait_event(event, timeout)


class SimulationDeadlock(RuntimeError):
    """Every task waits, no timer is pending and no I/O is in flight: nothing can ever happen."""


# While a connected socket or pipe is registered, an answer may be on its way
# over real I/O: give it this much real time before simulated time jumps.
_IO_GRACE_SECONDS = 0.02


class _VirtualSelector:
    """Wraps the loop's selector: a blocking select becomes a jump in simulated time."""

    def __init__(self, inner: selectors.BaseSelector, virtual: VirtualTime) -> None:
        self._inner = inner
        self._virtual = virtual

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout == 0:
            return self._inner.select(0)
        # Every task waits. Real I/O that is already there comes first.
        events = self._inner.select(0)
        if events:
            return events
        virtual = self._virtual
        if virtual.release_idle_waiters():
            return []
        if self._real_io_registered():
            events = self._inner.select(_IO_GRACE_SECONDS if timeout is not None else None)
            if events or timeout is None:
                return events
        elif timeout is None:
            if virtual.fail_deadlock_watchers():
                return []
            return self._inner.select(None)
        virtual.jump_to_next_timer(timeout)
        return []

    def _real_io_registered(self) -> bool:
        """Return whether a connected socket or pipe (not the loop's own wake-up pipe, not a listener) is watched."""
        own = self._virtual.own_fd
        for key in self._inner.get_map().values():
            if key.fd == own:
                continue
            fileobj = key.fileobj
            if isinstance(fileobj, socket.socket):
                try:
                    if fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                        continue
                except OSError:
                    pass
            return True
        return False


class VirtualTime:
    """Simulated time installed on one asyncio selector loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, start: float) -> None:
        selector = getattr(loop, "_selector", None)
        if selector is None:
            raise RuntimeError(f"simulated time needs a selector event loop, not {type(loop).__name__}")
        self.loop = loop
        self.now = start
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._deadlock_watchers: list[asyncio.Future[None]] = []
        ssock = getattr(loop, "_ssock", None)
        self.own_fd = ssock.fileno() if ssock is not None else -1
        loop._selector = _VirtualSelector(selector, self)  # type: ignore[attr-defined]
        loop.time = self.time  # type: ignore[method-assign]
        # Timers within a microsecond of the jump are due together. Loop times stay
        # far below 2**30 s, where a float resolves much finer than that.
        loop._clock_resolution = 1e-6  # type: ignore[attr-defined]
        loop._hedgebot_virtual_time = self  # type: ignore[attr-defined]

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> VirtualTime:
        """Return the loop's virtual time, installing it (starting from the loop's own time) when absent."""
        found: VirtualTime | None = getattr(loop, "_hedgebot_virtual_time", None)
        return found if found is not None else cls(loop, loop.time())

    def time(self) -> float:
        """Return the simulated time (the loop's `time()`)."""
        return self.now

    def next_timer(self) -> float | None:
        """Return when the earliest pending timer is due, or None when there is none."""
        scheduled: list[Any] = self.loop._scheduled  # type: ignore[attr-defined]
        while scheduled and scheduled[0]._cancelled:
            handle = heapq.heappop(scheduled)
            handle._scheduled = False
            self.loop._timer_cancelled_count -= 1  # type: ignore[attr-defined]
        return scheduled[0]._when if scheduled else None

    def pending_timers(self) -> list[float]:
        """Return when each pending timer is due, earliest first."""
        self.next_timer()
        scheduled: list[Any] = self.loop._scheduled  # type: ignore[attr-defined]
        return sorted(handle._when for handle in scheduled if not handle._cancelled)

    def leap_to(self, when: float) -> None:
        """Move time to `when` without running the loop, even past timers: those fire late, at `when`, once the loop turns.

        For a driver that knows the timers it leaps over would have found nothing
        to do but the last (a backtest's quiet safety ticks), so one late firing
        stands for them all.
        """
        self.now = max(self.now, when)

    def skip_to(self, when: float) -> None:
        """Move time to `when` without running the loop; only allowed when no timer falls due before it."""
        due = self.next_timer()
        if due is not None and due < when:
            raise RuntimeError(f"a timer is due at {due} before {when}: await SimClock.set instead")
        self.now = max(self.now, when)

    def jump_to_next_timer(self, timeout: float | None) -> None:
        due = self.next_timer()
        if due is not None:
            self.now = max(self.now, due)
        elif timeout is not None:
            self.now += timeout

    def idle(self) -> asyncio.Future[None]:
        """Return a future that completes when every task waits, before time moves on."""
        future: asyncio.Future[None] = self.loop.create_future()
        self._idle_waiters.append(future)
        return future

    def release_idle_waiters(self) -> bool:
        waiters, self._idle_waiters = self._idle_waiters, []
        released = False
        for future in waiters:
            if not future.done():
                future.set_result(None)
                released = True
        return released

    def watch_deadlock(self) -> asyncio.Future[None]:
        """Return a future that fails with `SimulationDeadlock` when nothing can ever happen again."""
        future: asyncio.Future[None] = self.loop.create_future()
        self._deadlock_watchers.append(future)
        return future

    def fail_deadlock_watchers(self) -> bool:
        watchers, self._deadlock_watchers = self._deadlock_watchers, []
        failed = False
        for future in watchers:
            if not future.done():
                future.set_exception(SimulationDeadlock("simulation deadlock: the task waits on something other than the clock"))
                failed = True
        return failed


class SimClock:
    """Simulated time, measured from `start`, on the running loop's virtual time.

    The loop moves time by itself whenever every task waits; `advance` and
    `set` let a driver (a test, a backtest) move it to a chosen instant.
    """

    def __init__(self, start: float = 1_600_000_000.0) -> None:
        self._start = start
        self._virtual: VirtualTime | None = None
        self._origin = 0.0
        try:
            self._bind(asyncio.get_running_loop())
        except RuntimeError:
            pass  # no loop yet: bind on first use

    def _bind(self, loop: asyncio.AbstractEventLoop) -> VirtualTime:
        virtual = self._virtual
        if virtual is None or virtual.loop is not loop:
            start = self.now()
            virtual = VirtualTime.of(loop)
            self._virtual = virtual
            self._start = start
            self._origin = virtual.now
        return virtual

    @property
    def virtual(self) -> VirtualTime:
        """Return the running loop's virtual time (installing it when needed)."""
        return self._bind(asyncio.get_running_loop())

    def now(self) -> float:
        """Return the simulated time."""
        virtual = self._virtual
        return self._start if virtual is None else self._start + (virtual.now - self._origin)

    def loop_time(self, when: Any) -> Any:
        """Return the loop time (`loop.time()`) of simulated instant `when` (or of each in an array of them)."""
        return self._origin + (when - self._start)

    async def sleep(self, seconds: float) -> None:
        """Suspend until simulated time has moved on by `seconds`."""
        self.virtual
        await asyncio.sleep(max(seconds, 0.0))

    async def wait_for(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait for the event or until simulated time passes `timeout`."""
        self.virtual
        return await _wait_event(event, timeout)

    async def settle(self) -> None:
        """Let every task that can run, run, before time moves again."""
        await self.virtual.idle()

    async def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, waking sleepers in order."""
        await self.set(self.now() + seconds)

    async def set(self, when: float) -> None:
        """Move time forward to `when`, waking sleepers in order; let everything due by then run."""
        virtual = self.virtual
        await virtual.idle()
        target = self.loop_time(when)
        if target > virtual.now:
            # A timer at exactly `when`: the loop reaches it after every earlier one.
            await asyncio.sleep(target - virtual.now)
            virtual.now = max(virtual.now, target)
            await virtual.idle()

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Drive `awaitable` to completion in simulated time; raise `SimulationDeadlock` if it can never finish."""
        virtual = self.virtual
        task = asyncio.ensure_future(awaitable)
        while not task.done():
            watcher = virtual.watch_deadlock()
            await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                task.cancel()
                watcher.result()  # raises SimulationDeadlock
            watcher.cancel()
        return task.result()


def run_simulated(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` on a fresh event loop in simulated time, as `asyncio.run` does in real time.

    `main` makes its own `SimClock(start=...)` to say which instant the run starts at.
    """

    def factory() -> asyncio.AbstractEventLoop:
        loop = asyncio.SelectorEventLoop()
        VirtualTime(loop, 0.0)
        return loop

    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def runs_simulated_time() -> bool:
    """Tell whether the running loop runs simulated time (there, work stays on the loop, so a replay stays deterministic)."""
    return getattr(asyncio.get_running_loop(), "_hedgebot_virtual_time", None) is not None

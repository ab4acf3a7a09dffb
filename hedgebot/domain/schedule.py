"""When a hedge's ratio changes by itself, and when the hedge ends: windows of time and a closing date.

A window holds its own ratio from its start (included) to its end (excluded);
outside every window the hedge's own ratio holds. Windows come from the config,
either as two instants or around a calendar event (`before` it, `after` it);
one window written around an event name stands for every event of that name.
Where windows overlap, the one that began last holds, as the more specific.

Times are epoch seconds on the clock the hedge runs on (the daemon's, or the
replay's), so a backtest changes ratios at exactly the scheduled replay times.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class CalendarEvent:
    """A dated event a schedule may refer to by name (an FOMC meeting, a CPI release, a token unlock)."""

    name: str
    at: float


@dataclass(frozen=True)
class Window:
    """A stretch of time in which `ratio` holds instead of the hedge's own."""

    name: str
    start: float
    end: float
    ratio: Decimal

    def holds_at(self, at: float) -> bool:
        """Tell whether `at` lies in the window (its end excluded)."""
        return self.start <= at < self.end


@dataclass(frozen=True)
class Schedule:
    """A hedge's windows, sorted by start, and the instant it ends (None: it does not end by itself)."""

    windows: tuple[Window, ...] = ()
    ends_at: float | None = None
    ends_because: str = ""

    @classmethod
    def of(cls, windows: Iterable[Window], ends_at: float | None = None, ends_because: str = "") -> Schedule:
        """Return a schedule of `windows` in the order they begin."""
        return cls(tuple(sorted(windows, key=lambda w: (w.start, w.end, w.name))), ends_at, ends_because)

    def window_at(self, at: float) -> Window | None:
        """Return the window in force at `at`: of those holding it, the one that began last."""
        holding = [w for w in self.windows if w.holds_at(at)]
        return holding[-1] if holding else None

    def ratio_at(self, base: Decimal, at: float) -> Decimal:
        """Return the ratio that holds at `at`: the window's, else the hedge's own `base`."""
        window = self.window_at(at)
        return base if window is None else window.ratio

    def next_window(self, at: float) -> Window | None:
        """Return the first window that begins after `at`."""
        return next((w for w in self.windows if w.start > at), None)

    def next_change(self, at: float) -> float | None:
        """Return the first instant after `at` at which a window begins or ends, or the hedge ends."""
        instants = [t for w in self.windows for t in (w.start, w.end) if t > at]
        if self.ends_at is not None and self.ends_at > at:
            instants.append(self.ends_at)
        return min(instants, default=None)

    def ended(self, at: float) -> bool:
        """Tell whether the hedge's end has come."""
        return self.ends_at is not None and at >= self.ends_at


def around_events(
    name: str, event: str, events: Sequence[CalendarEvent], before: float, after: float, ratio: Decimal
) -> list[Window]:
    """Return one window per event named `event`: from `before` seconds ahead of it to `after` seconds past it."""
    return [
        Window(f"{name} ({e.name})" if name != e.name else name, e.at - before, e.at + after, ratio)
        for e in events
        if e.name == event
    ]

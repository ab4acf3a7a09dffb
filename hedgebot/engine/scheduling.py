"""A hedge's schedule as its keeper follows it: the ratio in force now, the next change, and the hedge's end.

It owns the hedge's windows and end as read from its config and the calendar;
it may not trade, journal or read the venue: the keeper asks it which policy
holds, how long it may sleep before a window begins or ends, and whether the
end has come (the keeper then asks for the normal unwind).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from hedgebot.config import HedgeConfig
from hedgebot.domain.model import HedgePolicy
from hedgebot.domain.schedule import CalendarEvent, Schedule, Window


class ScheduleFollower:
    """The schedule of one hedge, and the window it was last seen in."""

    def __init__(self, hedge: HedgeConfig, calendar: Sequence[CalendarEvent] = ()) -> None:
        self.calendar = tuple(calendar)
        self.own = hedge.policy()
        self.schedule: Schedule = hedge.schedule_of(self.calendar)
        self.window: Window | None = None  # the window in force at the last look
        self.looked = False

    def reconfigure(self, hedge: HedgeConfig, calendar: Sequence[CalendarEvent] | None = None) -> None:
        """Take a reloaded hedge (and calendar); the window is judged again at the next look."""
        events = self.calendar if calendar is None else tuple(calendar)
        schedule = hedge.schedule_of(events)  # raises before anything changes
        self.calendar, self.own, self.schedule = events, hedge.policy(), schedule

    def policy_at(self, now: float) -> HedgePolicy:
        """Return the hedge's policy with the ratio in force at `now`."""
        ratio = self.schedule.ratio_at(self.own.ratio, now)
        return self.own if ratio == self.own.ratio else replace(self.own, ratio=ratio, standing_ratio=self.own.ratio)

    def look(self, now: float) -> tuple[Window | None, Window | None] | None:
        """Return (window left, window entered) when the window in force changed since the last look, else None."""
        window = self.schedule.window_at(now)
        if self.looked and window == self.window:
            return None
        before, self.window, first = self.window, window, not self.looked
        self.looked = True
        if first and window is None:
            return None  # starting outside every window is no change
        return before, window

    def wait(self, now: float, tick_seconds: float) -> float:
        """Return how long the keeper may sleep: its tick, or less when a window begins or ends or the hedge ends sooner."""
        change = self.schedule.next_change(now)
        return tick_seconds if change is None else max(0.0, min(tick_seconds, change - now))

    def end_due(self, now: float) -> bool:
        """Tell whether the hedge's end (`until`) has come."""
        return self.schedule.ended(now)

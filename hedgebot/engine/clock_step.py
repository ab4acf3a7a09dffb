"""A step of the wall clock, seen by comparing it with the monotonic clock.

NTP corrects small errors by slewing; a step of seconds means the wall clock
was set (by hand, by a VM resumed, by a bad time source). hedgebot times its
waits on the monotonic clock, but signed requests carry the wall time and the
exchange refuses them outside its window, and journal times jump: a person must
know.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class ClockStepWatch:
    """Report when the wall clock moved, between two checks, more than `threshold` seconds away from the monotonic one."""

    def __init__(
        self, threshold: float, wall: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self._wall = wall
        self._monotonic = monotonic
        self._offset = wall() - monotonic()

    def check(self) -> float | None:
        """Return the step (seconds, negative when the wall clock went back) since the last check, or None when within the threshold."""
        offset = self._wall() - self._monotonic()
        step = offset - self._offset
        self._offset = offset  # each step is reported once; a slow slew never adds up to one
        return step if abs(step) > self.threshold else None

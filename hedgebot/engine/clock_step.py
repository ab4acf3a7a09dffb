"""A step of the wall clock, seen by comparing it with a clock nobody can set.

NTP corrects small errors by slewing; a step of seconds means the wall clock
was set (by hand, by a VM resumed, by a bad time source). hedgebot times its
waits on the monotonic clock, but signed requests carry the wall time and the
exchange refuses them outside its window, and journal times jump: a person must
know.

The reference is the kernel's uptime read from /proc/uptime where there is one:
a tool that fakes time inside the process (libfaketime) moves every clock the
process asks the C library for, the monotonic one included, but not the text
of a /proc file. Elsewhere it is the monotonic clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

UPTIME = Path("/proc/uptime")


def kernel_uptime() -> float:
    """Return the seconds since boot as the kernel counts them (raise OSError where /proc/uptime is missing)."""
    return float(UPTIME.read_text().split()[0])


def step_reference() -> Callable[[], float]:
    """Return the clock a wall-clock step is measured against: the kernel's uptime if readable, else the monotonic clock."""
    try:
        kernel_uptime()
    except (OSError, ValueError, IndexError):
        return time.monotonic
    return kernel_uptime


class ClockStepWatch:
    """Report when the wall clock moved, between two checks, more than `threshold` seconds away from the reference clock."""

    def __init__(
        self, threshold: float, wall: Callable[[], float] = time.time, monotonic: Callable[[], float] | None = None
    ) -> None:
        self.threshold = threshold
        self._wall = wall
        self._monotonic = monotonic or step_reference()
        self._offset = wall() - self._monotonic()

    def check(self) -> float | None:
        """Return the step (seconds, negative when the wall clock went back) since the last check, or None when within the threshold."""
        offset = self._wall() - self._monotonic()
        step = offset - self._offset
        self._offset = offset  # each step is reported once; a slow slew never adds up to one
        return step if abs(step) > self.threshold else None

"""File descriptors: the ops port never takes the ones the exchange needs, and running out is said once a minute.

Under systemd's default limit of 1,024 open files, 1,100 idle connections to
the ops port used to take every descriptor: the daemon could not reconnect to
the exchange, and asyncio logged every refused accept. The ops server admits a
connection only while it holds fewer than `max_connections` and a reserve of
descriptors stays free below the process's limit; anything else is closed at once.
"""

from __future__ import annotations

import asyncio
import errno
import os
import resource
import time
from collections.abc import Callable
from typing import Any

_OUT_OF_FILES = {errno.EMFILE, errno.ENFILE}


def open_fds() -> int | None:
    """Return how many file descriptors this process holds (None where /proc or /dev/fd cannot tell)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder)) - 1  # the listing's own descriptor
        except OSError:
            continue
    return None


def fd_limit() -> int:
    """Return the process's soft limit on open files."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def room_for_one_more(reserve: int, count: Callable[[], int | None] = open_fds, limit: Callable[[], int] = fd_limit) -> bool:
    """Tell whether one more descriptor still leaves `reserve` free below the limit."""
    held = count()
    ceiling = limit()
    if held is None or ceiling == resource.RLIM_INFINITY:
        return True
    return held + 1 + reserve <= ceiling


def is_out_of_files(error: BaseException | None) -> bool:
    """Tell whether an error is `Too many open files` (this process's limit or the system's)."""
    return isinstance(error, OSError) and error.errno in _OUT_OF_FILES


class OutOfFilesLog:
    """A loop exception handler that logs `Too many open files` once per `every` seconds, with how many it held back."""

    def __init__(self, log: Any, every: float = 60.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.every = every
        self.monotonic = monotonic
        self.held_back = 0
        self._last: float | None = None

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """Handle one error the loop reports: `Too many open files` at most once per period, anything else as asyncio would."""
        if not is_out_of_files(context.get("exception")):
            loop.default_exception_handler(context)
            return
        self.note(str(context.get("message", "")), context.get("exception"))

    def note(self, where: str, error: BaseException | None) -> None:
        """Count one `Too many open files`; log it when none was logged in the last period."""
        now = self.monotonic()
        if self._last is not None and now - self._last < self.every:
            self.held_back += 1
            return
        self.log.error(
            "too_many_open_files", where=where, error=str(error), held_back=self.held_back, open_files=open_fds(),
            limit=fd_limit(), note=f"logged at most once every {self.every:.0f}s; raise LimitNOFILE or find who holds them",
        )
        self._last = now
        self.held_back = 0

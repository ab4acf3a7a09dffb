"""Free space on the journal's filesystem: enough to keep journaling, or trading stops growing risk.

A journal that fills its disk cannot record the next order, and a hedge that
learns that only when the write fails learns it mid-action. So the daemon reads
the free space before every tick: below a warning threshold it says so, below a
smaller one only margin top-ups and reductions of the short go out, so what is
left is kept for the records that lower risk.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

MB = 1024 * 1024


class SpaceLevel(StrEnum):
    OK = "ok"
    LOW = "low"  # below the warning threshold: a warning, trading goes on
    CRITICAL = "critical"  # below the stop threshold: only top-ups and reductions


def free_bytes(path: Path | str) -> int:
    """Return the bytes an unprivileged process may still write on the filesystem holding `path` (or its directory)."""
    target = Path(path)
    while not target.exists() and target != target.parent:
        target = target.parent
    stats = os.statvfs(target)
    return stats.f_bavail * stats.f_frsize


@dataclass(frozen=True)
class SpaceReading:
    """The free space found, and what it means."""

    free_bytes: int | None
    level: SpaceLevel
    message: str


class DiskGuard:
    """Read the free space on the journal's filesystem and judge it against the configured thresholds.

    One guard serves every hedge journaling to the same file, so with `max_age` above zero an OK reading
    is reused for that many seconds (of `monotonic`) instead of asking the filesystem once per hedge per
    tick. Only an OK reading is reused: at or below the warning threshold every read asks again, and
    `forget` (called when a journal write fails) makes the next read ask again too.
    """

    def __init__(
        self, path: Path | str, warning_bytes: int, stop_bytes: int, reader: Callable[[Path | str], int] = free_bytes,
        max_age: float = 0.0, monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = str(path)
        self.warning_bytes = warning_bytes
        self.stop_bytes = stop_bytes
        self.reader = reader
        self.max_age = max_age
        self.monotonic = monotonic
        self._kept: tuple[float, SpaceReading] | None = None

    def forget(self) -> None:
        """Drop the reading kept for reuse, so the next read asks the filesystem."""
        self._kept = None

    def read(self) -> SpaceReading:
        """Return the free space, asked now or kept from under `max_age` seconds ago while it was OK."""
        if self._kept is not None and self.monotonic() - self._kept[0] < self.max_age:
            return self._kept[1]
        self._kept = None
        asked_at = self.monotonic()
        reading = self._ask()
        if self.max_age > 0 and reading.level is SpaceLevel.OK and reading.free_bytes is not None:
            self._kept = (asked_at, reading)
        return reading

    def _ask(self) -> SpaceReading:
        """Return the free space now; a filesystem that cannot be asked counts as OK (the journal's own writes will tell)."""
        try:
            free = self.reader(self.path)
        except OSError as exc:
            return SpaceReading(None, SpaceLevel.OK, f"cannot read the free space for {self.path}: {exc}")
        where = f"{free / MB:.0f} MB free on the filesystem of the journal {self.path}"
        if free < self.stop_bytes:
            return SpaceReading(free, SpaceLevel.CRITICAL, (
                f"{where}, below the stop threshold of {self.stop_bytes / MB:.0f} MB: only margin top-ups and "
                "reductions of the short go out until space is freed"
            ))
        if free < self.warning_bytes:
            return SpaceReading(free, SpaceLevel.LOW, (
                f"{where}, below the warning threshold of {self.warning_bytes / MB:.0f} MB: free some space "
                f"(below {self.stop_bytes / MB:.0f} MB the hedge only reduces risk)"
            ))
        return SpaceReading(free, SpaceLevel.OK, where)

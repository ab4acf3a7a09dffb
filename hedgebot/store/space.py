"""Free space on the journal's filesystem: enough to keep journaling, or trading stops growing risk.

A journal that fills its disk cannot record the next order, and a hedge that
learns that only when the write fails learns it mid-action. So the daemon reads
the free space before every tick: below a warning threshold it says so, below a
smaller one only margin top-ups and reductions of the short go out, so what is
left is kept for the records that lower risk.
"""

from __future__ import annotations

import os
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
    """Read the free space on the journal's filesystem and judge it against the configured thresholds."""

    def __init__(
        self, path: Path | str, warning_bytes: int, stop_bytes: int, reader: Callable[[Path | str], int] = free_bytes
    ) -> None:
        self.path = str(path)
        self.warning_bytes = warning_bytes
        self.stop_bytes = stop_bytes
        self.reader = reader

    def read(self) -> SpaceReading:
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

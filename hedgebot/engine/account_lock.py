"""The account lock file: one daemon (or one CLI command) on an account on this machine at a time.

Owns `<state_dir>/<account>.lock` (flock, so a dead holder frees it) and the pid written in it. It may not touch
the account's venue, the journal or the identity lock of `engine.ownership` (which spans state directories).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import TextIO

from hedgebot.engine.ownership import AccountLocked


class AccountLock:
    """An exclusive lock on one account for the daemon's life (flock: a dead holder frees it)."""

    def __init__(self, state_dir: Path, account: str) -> None:
        self.path = state_dir / f"{account}.lock"
        self._handle: TextIO | None = None

    def acquire(self) -> None:
        """Take the lock, or raise AccountLocked naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise AccountLocked(
                f"account {self.path.stem!r} is already run by a daemon (pid {holder}); "
                "two daemons on one account would trade against each other"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Let the lock go."""
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def held_elsewhere(self) -> bool:
        """Tell whether a live process holds the lock now (without taking it)."""
        if not self.path.exists():
            return False
        with self.path.open("a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

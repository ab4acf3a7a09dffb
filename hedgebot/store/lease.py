"""One daemon's lease on one account: take, renew, lose, and fence itself on its own monotonic clock.

The database judges expiry; this side judges only how long ago it last renewed,
on the monotonic clock, so a daemon frozen (SIGSTOP, a long GC, a suspended VM)
past `lease_seconds - margin` stops sending before it has even talked to the
database again: by then a standby may hold the account.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


def _suspend_clocks(monotonic: Callable[[], float]) -> tuple[Callable[[], float], ...]:
    """Return the clocks that also count a suspend, when `monotonic` is the real monotonic clock (none for simulated ones)."""
    from hedgebot.clock import RealClock

    if monotonic is not time.monotonic and not isinstance(getattr(monotonic, "__self__", None), RealClock):
        return ()
    clocks: list[Callable[[], float]] = [time.time]
    if hasattr(time, "CLOCK_BOOTTIME"):
        clocks.append(lambda: time.clock_gettime(time.CLOCK_BOOTTIME))
    return tuple(clocks)


class LeaseChange(StrEnum):
    TAKEN = "taken"  # newly held, under a new epoch: reconcile before trading
    RENEWED = "renewed"
    LOST = "lost"  # was held, now another holds it (or it could not be renewed in time)
    WAITING = "waiting"  # not held, and another still holds it


class LeaseStore(Protocol):
    """Where leases live (the PostgreSQL journal)."""

    def take_lease(self, account: str, holder: str, seconds: float, epoch: int | None) -> int | None: ...

    def release_lease(self, account: str, holder: str, epoch: int) -> None: ...

    def drop_fence(self, account: str) -> None: ...


@dataclass(frozen=True)
class LeaseTiming:
    """How long a lease lasts, how often it is renewed, and the safety margin of self-fencing."""

    seconds: float = 15.0
    margin: float = 3.0

    @property
    def renew_every(self) -> float:
        return self.seconds / 3

    @property
    def watch_every(self) -> float:
        """Return how often a daemon that does not hold the lease looks whether it has expired.

        A twelfth of the lease: the takeover follows the expiry within that, not within a renewal period
        (a lookup is one indexed read of one row).
        """
        return self.seconds / 12


class Lease:
    """This daemon's lease on one account."""

    def __init__(
        self, store: LeaseStore, account: str, holder: str, timing: LeaseTiming,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.account = account
        self.holder = holder
        self.timing = timing
        self.monotonic = monotonic
        # On the real clock the age is also judged on CLOCK_BOOTTIME and the wall clock: CLOCK_MONOTONIC stops
        # while the machine is suspended (clock_gettime(2)), and a paused VM may stop both kernel clocks until
        # its wall clock is put right. The largest age wins: any clock that says the lease is past fences.
        self._clocks: tuple[Callable[[], float], ...] = (monotonic, *_suspend_clocks(monotonic))
        self.epoch: int | None = None
        self._renewed_at: tuple[float, ...] | None = None  # each clock's reading when the last successful renewal was *sent*

    def refresh(self) -> LeaseChange:
        """Take or renew the lease once; return what changed. A journal error propagates (the lease then ages)."""
        sent_at = self._now()
        held = self.epoch is not None
        epoch = self.store.take_lease(self.account, self.holder, self.timing.seconds, self.epoch)
        if epoch is None:
            self.epoch, self._renewed_at = None, None
            return LeaseChange.LOST if held else LeaseChange.WAITING
        renewed = held and epoch == self.epoch
        self.epoch, self._renewed_at = epoch, sent_at
        return LeaseChange.RENEWED if renewed else LeaseChange.TAKEN

    def remaining(self) -> float:
        """Return the seconds this daemon may still send under its lease, by its own monotonic clock (0: none)."""
        if self.epoch is None or self._renewed_at is None:
            return 0.0
        return max(0.0, self.timing.seconds - self.timing.margin - self._elapsed())

    def may_send(self) -> bool:
        """Tell whether this daemon may send anything to the account now."""
        return self.remaining() > 0

    def age(self) -> float | None:
        """Return seconds since the last successful renewal (None when not held)."""
        return None if self._renewed_at is None else self._elapsed()

    def _now(self) -> tuple[float, ...]:
        return tuple(clock() for clock in self._clocks)

    def _elapsed(self) -> float:
        assert self._renewed_at is not None
        return max(now - then for now, then in zip(self._now(), self._renewed_at))

    def lapse(self) -> None:
        """Give up a lease this daemon fenced itself off (not renewed in time): it is waited out and taken anew, under a new epoch."""
        self.store.drop_fence(self.account)
        self.epoch, self._renewed_at = None, None

    def release(self) -> None:
        """Give the lease up at a clean stop, so a standby takes over at once."""
        if self.epoch is not None:
            self.store.release_lease(self.account, self.holder, self.epoch)
        self.epoch, self._renewed_at = None, None

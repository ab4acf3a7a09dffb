"""A lease's age on the real clock counts a suspended machine (CLOCK_MONOTONIC does not, clock_gettime(2))."""

from __future__ import annotations

import time

import pytest

from hedgebot.clock import RealClock, monotonic_of
from hedgebot.store.lease import Lease, LeaseTiming


class OneLeaseStore:
    """A store that always grants epoch 1: this test is about the daemon's own clocks, not the database."""

    def take_lease(self, account: str, holder: str, seconds: float, epoch: int | None) -> int | None:
        return 1

    def release_lease(self, account: str, holder: str, epoch: int) -> None: ...

    def drop_fence(self, account: str) -> None: ...


def test_a_leader_whose_machine_was_suspended_past_its_lease_may_send_nothing_on_waking(monkeypatch: pytest.MonkeyPatch) -> None:
    clocks = {"wall": 1_790_000_000.0, "mono": 5_000.0, "boot": 5_000.0}
    monkeypatch.setattr(time, "time", lambda: clocks["wall"])
    monkeypatch.setattr(time, "monotonic", lambda: clocks["mono"])
    monkeypatch.setattr(time, "clock_gettime", lambda which: clocks["boot"] if which == time.CLOCK_BOOTTIME else clocks["mono"])
    lease = Lease(OneLeaseStore(), "binance-main", "leader", LeaseTiming(15.0, 3.0), monotonic_of(RealClock()))
    lease.refresh()
    for name in clocks:
        clocks[name] += 2.0
    assert lease.may_send() and lease.remaining() == pytest.approx(10.0)
    clocks["wall"] += 120.0  # suspended two minutes: the wall and boot clocks count it, CLOCK_MONOTONIC does not
    clocks["boot"] += 120.0
    assert not lease.may_send() and lease.age() == pytest.approx(122.0)

"""Time: a step of the wall clock is seen and alerted; SIGTERM stops the daemon within its shutdown time."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hedgebot.clock import SimClock
from hedgebot.engine.clock_step import ClockStepWatch
from hedgebot.engine.daemon import Daemon
from tests.ops.support import paper_settings


class FakeTime:
    """A wall clock and a monotonic clock the test moves apart."""

    def __init__(self) -> None:
        self.mono = 1000.0
        self.step = 0.0

    def wall(self) -> float:
        return 1_700_000_000.0 + self.mono + self.step

    def monotonic(self) -> float:
        return self.mono


def test_a_wall_clock_step_either_way_is_seen_once_and_a_slow_slew_never_is() -> None:
    fake = FakeTime()
    watch = ClockStepWatch(5.0, wall=fake.wall, monotonic=fake.monotonic)
    for _ in range(100):  # a slew of 0.1 s a check: 10 s in all, never a step
        fake.mono += 2
        fake.step += 0.1
        assert watch.check() is None
    fake.step -= 300
    fake.mono += 2
    assert watch.check() == -300.0
    assert watch.check() is None, "reported once"
    fake.step += 60
    assert watch.check() == 60.0


async def test_a_backward_wall_clock_step_raises_a_critical_clock_step_alert(tmp_path) -> None:
    clock = SimClock()
    daemon = Daemon(paper_settings(tmp_path), clock)
    fake = FakeTime()
    daemon.clock_watch = ClockStepWatch(5.0, wall=fake.wall, monotonic=fake.monotonic)
    await daemon.start()
    try:
        await clock.advance(3)
        assert not daemon.journal.events(kind="clock_step")
        fake.step = -300.0
        await clock.advance(3)
        [step] = daemon.journal.events(kind="clock_step")
        assert step.severity == "critical" and step.detail["step_seconds"] == -300.0
        assert "stepped back by 300s" in step.detail["message"]
    finally:
        await clock.run(daemon.stop())


async def test_stop_ends_within_the_shutdown_time_while_an_exchange_call_hangs(tmp_path) -> None:
    clock = SimClock()
    settings = paper_settings(tmp_path, {"daemon": {"state_dir": str(tmp_path / "state"), "status_interval_seconds": 1, "shutdown_seconds": 10}})
    daemon = Daemon(settings, clock)
    await daemon.start()
    await clock.advance(3)
    venue = daemon.accounts[0].venue
    calls = []

    async def hang(*args: object, **kwargs: object) -> None:
        calls.append(args)
        await asyncio.get_running_loop().create_future()  # an exchange that never answers

    venue.fetch_legs = hang  # type: ignore[method-assign]
    daemon.keepers[0].wake.set()
    await clock.advance(1)
    assert calls, "the keeper is stuck in the call"
    started = clock.now()
    # The bound on this wait only keeps a broken stop from hanging the suite; it is simulated time.
    await asyncio.wait_for(daemon.stop(), timeout=60)
    assert clock.now() - started <= 10 + 1
    assert daemon.journal is None, "the stop went all the way through"


async def test_readiness_counts_the_age_of_the_data_on_the_monotonic_clock_when_the_wall_clock_steps_back() -> None:
    from hedgebot.config import HttpConfig
    from hedgebot.ops.health import Operations
    from tests.helpers import make_rig

    rig = await make_rig(spot={"BTC": "1"})
    await rig.clock.run(rig.keeper.tick())
    keeper = rig.keeper
    taken = keeper.last_snapshot.taken_at
    read_at = keeper.last_read_monotonic
    assert read_at is not None
    # 100 s later on the monotonic clock the keeper is still stuck in a call; the wall clock was set back 300 s.
    stuck = keeper.hedge.staleness_seconds + keeper.hedge.tick_seconds + 100
    ops = Operations(HttpConfig(), lambda: taken + stuck - 300, monotonic=lambda: read_at + stuck)
    ops.attach([keeper])
    ready, reasons = ops.ready()
    assert not ready and "last read" in reasons[0]


LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
STEP_PROBE = """
import sys
from pathlib import Path
from hedgebot.engine.clock_step import ClockStepWatch

rc = Path(sys.argv[1])
watch = ClockStepWatch(5.0)
first = watch.check()
rc.write_text("-300s\\n")  # libfaketime re-reads it at the next call: the clock steps back 300 s
second = watch.check()
third = watch.check()
print(first, second, third)
"""


@pytest.mark.skipif(not LIBFAKETIME.exists(), reason="libfaketime is not installed (Debian package faketime; .ci/run installs it)")
def test_a_clock_step_made_by_libfaketime_is_seen_though_it_fakes_the_monotonic_clock_too(tmp_path: Path) -> None:
    rc = tmp_path / "faketime.rc"
    rc.write_text("+0\n")
    env = {
        **os.environ, "LD_PRELOAD": str(LIBFAKETIME), "FAKETIME_TIMESTAMP_FILE": str(rc), "FAKETIME_NO_CACHE": "1",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    done = subprocess.run([sys.executable, "-c", STEP_PROBE, str(rc)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    first, second, third = done.stdout.split()
    assert first == "None" and third == "None"
    assert float(second) == pytest.approx(-300, abs=1), "the step back is reported once, with its size"

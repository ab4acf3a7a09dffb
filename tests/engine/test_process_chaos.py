"""The short process-chaos run: real daemon processes on the exchange emulator, a seeded failure schedule each.

SIGSTOP and SIGKILL of the leader, PostgreSQL connections cut and a PostgreSQL restart, and the emulator's faults;
bench/chaos_processes.py runs 50 schedules and prints the figures.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulator_rig import EmulatorProcess
from tests.engine.process_chaos import EXTRA_KEYS, run_process_schedule
from tests.postgres_server import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.realtime]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorProcess]:
    process = EmulatorProcess(tmp_path, extra_keys=EXTRA_KEYS)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.mark.parametrize("seed", [1, 2])
def test_daemon_processes_frozen_killed_or_cut_off_never_double_an_order_nor_send_under_a_stale_epoch(
    seed: int, pg_url: str, postgres_server: PostgresServer, emulator: EmulatorProcess, tmp_path: Path,
) -> None:
    figures = run_process_schedule(seed, pg_url, postgres_server, emulator, tmp_path, events=3)
    print(f"\nseed {seed}: {figures}")
    assert figures.unrecovered == []
    assert len(figures.failures) == 3 and len(figures.recoveries) == 4  # the start, then one per failure
    assert figures.orders > 0 and figures.epochs >= 1
    assert figures.duplicates == 0 and figures.unjournaled == 0
    assert figures.stale_requests == 0 and figures.two_writers == 0

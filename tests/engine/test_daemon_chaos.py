"""The short chaos run: a few seeded failure schedules over three daemons on one account (bench/chaos_failover.py runs 50)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.failover_chaos import run_schedule
from tests.postgres_server import PostgresServer

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_failures_of_the_leader_never_double_an_order_nor_let_a_stale_epoch_trade(
    seed: int, pg_url: str, postgres_server: PostgresServer, tmp_path: Path,
) -> None:
    figures = await run_schedule(seed, pg_url, postgres_server, tmp_path)
    print(f"\nseed {seed}: {figures}")
    assert len(figures.failures) == 4 and len(figures.recoveries) == 5  # the start, then one per failure
    assert figures.orders > 0 and figures.epochs > 1
    assert figures.duplicates == 0
    assert figures.stale_epoch_orders == 0
    # two_writers (two daemons whose own clocks let them send at once) is printed, not asserted: it is judged
    # on the simulated clock, which stands still while a PostgreSQL restart blocks the loop although the
    # database's clock runs on; the journal's fence, judged on the database's clock, is what the asserts above check.

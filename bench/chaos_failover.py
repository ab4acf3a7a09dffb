"""The chaos test's long run: many seeded failure schedules over three daemons taking turns on one account.

Run: .venv/bin/python bench/chaos_failover.py [--schedules 50] [--events 4]

Starts a throw-away PostgreSQL (as the tests do), then runs each schedule of
tests/engine/failover_chaos.py: the leader's journal cut, a crash, every connection
terminated, a database restart, in a seeded order, with spot changes between. Prints per
schedule and in total: orders, duplicate executions, orders under a stale epoch, moments with
two daemons able to send, and the real time from each failure to the hedge back in band
(p50, p99; lease_seconds = 3, expiry on the database's clock). Exits 1 when an invariant broke:
a duplicate execution or an order under a stale epoch. The moments with two daemons able to
send are printed, not judged: they are counted on the simulated clock, which stands still while
a PostgreSQL restart blocks the loop although the database's clock runs on; the journal's fence,
judged on the database's clock, is what keeps a second writer from trading (as in the test).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from tests.engine.failover_chaos import LEASE, run_schedule  # noqa: E402
from tests.postgres_server import start_server  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import emit, machine, print_machine  # noqa: E402
from _bench import parser as bench_parser  # noqa: E402


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--schedules", type=int, default=50)
    parser.add_argument("--events", type=int, default=4)
    args = parser.parse_args()
    if args.quick:
        args.schedules, args.events = 1, 2
    print_machine()
    server = start_server()
    totals = {"orders": 0, "duplicates": 0, "stale_epoch_orders": 0, "two_writers": 0, "failures": {}}
    recoveries: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as root:
            for seed in range(1, args.schedules + 1):
                name = f"chaos{seed}"
                with psycopg.connect(server.url(), autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {name}")
                figures = asyncio.run(run_schedule(seed, server.url(name), server, Path(root), events=args.events))
                for key in ("orders", "duplicates", "stale_epoch_orders", "two_writers"):
                    totals[key] += getattr(figures, key)
                for failure in figures.failures:
                    totals["failures"][failure] = totals["failures"].get(failure, 0) + 1
                recoveries += figures.recoveries[1:]  # the first is the start, not a recovery
                print(f"seed {seed}: {figures.failures} orders {figures.orders} duplicates {figures.duplicates} "
                      f"stale {figures.stale_epoch_orders} two-writers {figures.two_writers} "
                      f"back in band {[round(r, 2) for r in figures.recoveries[1:]]} s", flush=True)
    finally:
        server.remove()
    ordered = sorted(recoveries)
    result = {
        "machine": machine(), "schedules": args.schedules, "lease_seconds": LEASE, **totals,
        "back_in_band_p50_s": round(statistics.median(ordered), 2),
        "back_in_band_p99_s": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "back_in_band_max_s": round(ordered[-1], 2),
    }
    emit(result)
    broken = totals["duplicates"] or totals["stale_epoch_orders"]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())

"""The process-chaos run: real daemon processes on the exchange emulator, many seeded failure schedules.

Run: .venv/bin/python bench/chaos_processes.py [--schedules 50] [--events 4]

Starts a throw-away PostgreSQL (as the tests do) and, per schedule, a fresh emulator and journal; then runs
tests/engine/process_chaos.py: three `hedgebot run --live` processes on one account, the leader frozen with
SIGSTOP past its lease or killed with SIGKILL, every PostgreSQL connection terminated, a PostgreSQL restart,
the emulator's faults on the next orders, in a seeded order with spot changes between. Prints per schedule
and in total: orders, duplicate executions, executions with no journaled intent, requests signed under an
epoch older than the newest committed (writes among them: two writers), and the real time from each failure
to the hedge back in band (p50, p99, max; after a leader's death beside the issue's bound, lease_seconds +
2 ticks). Exits 1 when an invariant broke.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from tests.emulator_rig import EmulatorProcess  # noqa: E402
from tests.engine.process_chaos import EXTRA_KEYS, LEASE, TICK, run_process_schedule  # noqa: E402
from tests.postgres_server import start_server  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import emit, machine, print_machine  # noqa: E402
from _bench import parser as bench_parser  # noqa: E402

DEATHS = ("sigstop", "sigkill")


def _quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_s": None, "p99_s": None, "max_s": None}
    ordered = sorted(values)
    return {
        "p50_s": round(statistics.median(ordered), 2),
        "p99_s": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "max_s": round(ordered[-1], 2),
    }


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--schedules", type=int, default=50)
    parser.add_argument("--events", type=int, default=4)
    parser.add_argument("--first-seed", type=int, default=1, help="the first schedule's seed (to split a long run)")
    args = parser.parse_args()
    if args.quick:
        args.schedules, args.events = 1, 2
    print_machine()
    server = start_server()
    keys = ("orders", "duplicates", "unjournaled", "stale_requests", "two_writers")
    unrecovered: list[str] = []
    totals: dict[str, object] = {key: 0 for key in keys}
    failures: dict[str, int] = {}
    deaths: list[float] = []
    deaths_with_faults: list[float] = []
    others: list[float] = []
    bound = LEASE + 2 * TICK
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for seed in range(args.first_seed, args.first_seed + args.schedules):
                root = Path(tmp) / f"s{seed}"
                root.mkdir()
                name = f"pchaos{seed}"
                with psycopg.connect(server.url(), autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {name}")
                emulator = EmulatorProcess(root, extra_keys=EXTRA_KEYS)
                emulator.start()
                try:
                    figures = run_process_schedule(seed, server.url(name), server, emulator, root, events=args.events)
                finally:
                    emulator.stop()
                for key in keys:
                    totals[key] = int(totals[key]) + getattr(figures, key)  # type: ignore[call-overload]
                unrecovered += [f"seed {seed}: {line[:300]}" for line in figures.unrecovered]
                for failure in figures.failures:
                    failures[failure] = failures.get(failure, 0) + 1
                for failure, seconds in figures.recoveries[1:]:
                    if failure in DEATHS:
                        deaths.append(seconds)
                    elif failure.split("+")[0] in DEATHS:  # a death whose new leader also met an earlier set's faults
                        deaths_with_faults.append(seconds)
                    else:
                        others.append(seconds)
                print(f"seed {seed}: {figures.failures} orders {figures.orders} duplicates {figures.duplicates} "
                      f"unjournaled {figures.unjournaled} stale {figures.stale_requests} two-writers {figures.two_writers} "
                      f"back in band {[(f, round(s, 2)) for f, s in figures.recoveries[1:]]}"
                      + (f" NOT BACK: {len(figures.unrecovered)}" if figures.unrecovered else ""), flush=True)
                for failure, taken, back in figures.takeovers:
                    if failure in DEATHS and back > bound:
                        print(f"  over the bound after {failure}: lease taken at {taken:.2f} s, back in band at {back:.2f} s", flush=True)
    finally:
        server.remove()
    result = {
        "machine": machine(), "schedules": args.schedules, "events_per_schedule": args.events,
        "lease_seconds": LEASE, "tick_seconds": TICK, **totals, "failures": failures,
        "after_leader_death": {**_quantiles(deaths), "count": len(deaths), "bound_s": bound,
                               "over_bound": sum(1 for s in deaths if s > bound)},
        "after_leader_death_meeting_earlier_faults": {**_quantiles(deaths_with_faults), "count": len(deaths_with_faults)},
        "after_other_failures": {**_quantiles(others), "count": len(others)},
        "not_back_in_band": len(unrecovered),
    }
    for line in unrecovered:
        print(line)
    emit(result)
    broken = bool(unrecovered) or any(int(totals[key]) for key in ("duplicates", "unjournaled", "stale_requests", "two_writers"))  # type: ignore[call-overload]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())

"""A longer fault soak than the test suite runs: several seeds, days of market time.

Run: .venv/bin/python bench/soak_faults.py [--seeds 3] [--hours 48] [--exchange paper|emulator] [--quick]

With --exchange emulator the real ccxt venue trades the strict Binance emulator over HTTP, whose
wire adds orders answered 503/-1007 and carried out later and lookups that lag (issue 16, item 9).
"""

from __future__ import annotations

import asyncio
import sys
import time

from _bench import emit, print_machine
from _bench import parser as bench_parser
from hedgebot.testing.faultsim import HARSH, run_fault_simulation


async def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--hours", type=float, default=48.0)
    parser.add_argument("--exchange", choices=["paper", "emulator"], default="paper")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.hours = 1, 1.0
    if args.seeds < 1 or args.hours <= 0:
        parser.error(f"--seeds must be >= 1 and --hours > 0 (got {args.seeds}, {args.hours})")
    print_machine()
    failed = False
    runs: dict[str, dict[str, object]] = {}
    print(f"{'seed':>6} {'ticks':>7} {'faults':>7} {'t/o after':>9} {'dup rej':>7} {'late':>5} {'lag':>4} {'partial':>7} {'orders':>7} {'dupes':>5} {'overshoot':>9} {'mismatch':>8} {'unknown':>7} {'worst drift':>11} {'recover':>7} {'in band':>7} {'wall s':>7}")
    for seed in range(1, args.seeds + 1):
        started = time.perf_counter()
        r = await run_fault_simulation(seed, hours=args.hours, rates=HARSH, exchange=args.exchange)
        wall = time.perf_counter() - started
        print(
            f"{seed:>6} {r.ticks:>7} {r.faults_injected:>7} {r.faults_by_kind.get('timeout_after', 0):>9} "
            f"{r.faults_by_kind.get('duplicate_after', 0):>7} {r.late_executions:>5} {r.faults_by_kind.get('wire_lookup_lag', 0):>4} "
            f"{r.partial_fills:>7} {r.venue_orders:>7} {r.duplicate_executions:>5} "
            f"{r.growth_overshoots:>9} {r.journal_mismatches:>8} {r.open_intents_left:>7} {float(r.worst_drift_ratio):>10.2%} "
            f"{str(r.ticks_to_recover) + ' tick':>7} {str(r.final_in_band):>7} {wall:>7.1f}"
        )
        runs[str(seed)] = {
            "ticks": r.ticks, "faults": r.faults_injected, "duplicate_executions": r.duplicate_executions,
            "growth_overshoots": r.growth_overshoots, "journal_mismatches": r.journal_mismatches,
            "open_intents_left": r.open_intents_left, "worst_drift_ratio": float(r.worst_drift_ratio),
            "ticks_to_recover": r.ticks_to_recover, "final_in_band": r.final_in_band, "wall_seconds": round(wall, 2),
        }
        failed |= bool(
            r.duplicate_executions or r.growth_overshoots or r.journal_mismatches or r.open_intents_left
            or r.ticks_to_recover is None or not r.final_in_band
        )
    print("late: orders answered 503/-1007 and carried out later; lag: lookup-lag changes; unknown: outcomes left unknown")
    print("time to recover counts 10 s keeper ticks after faults stop")
    emit({"exchange": args.exchange, "hours": args.hours, "seeds": runs, "goal_met": not failed})
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

"""Memory and CPU of an idle daemon with 100 paper hedges over a simulated day.

Run: .venv/bin/python bench/footprint.py [--hedges N] [--hours H] [--quick]

The real daemon (journal on disk, status file, operations endpoint off) runs
100 paper accounts, one hedge each, with a synthetic price every 10 s per
account, the default 10 s tick and a status file every 10 s, for one day of
simulated time. Nothing forces a trade after the hedges are opened: the
daemon is idle, as it is most of its life.

CPU is the process's CPU seconds spent per simulated second: the share of
one core the daemon would use running in real time (the simulation only
skips the waiting). Resident memory (RSS, from /proc) is sampled every
simulated hour; "flat" compares the last hours with the first ones.
Ends with a JSON object.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _bench import emit, goal, machine, print_machine
from _bench import parser as bench_parser
from hedgebot.clock import SimClock, run_simulated
from hedgebot.config import Settings
from hedgebot.engine.daemon import Daemon
from hedgebot.ops.logging import configure_logging

GOAL_MB = 150.0
GOAL_CPU = 0.02


def rss_mb() -> float:
    """Return this process's resident set size in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def settings(state: Path, hedges: int) -> Settings:
    accounts: list[dict[str, Any]] = []
    for i in range(hedges):
        accounts.append({
            "name": f"paper{i}",
            "mode": "paper",
            "paper": {
                "spot": {"BTC": "2", "USDT": "20000"},
                "futures": {"USDT": "100000"},
                "markets": [{
                    "symbol": "BTC/USDT:USDT",
                    "feed": {"kind": "synthetic", "start_price": "50000", "step_seconds": 10, "volatility": 0.5, "seed": i},
                    "funding": {"rate": "0.0001", "interval_hours": 8},
                }],
            },
            "hedges": [{
                "name": "btc", "asset": "BTC", "symbol": "BTC/USDT:USDT", "ratio": "1", "band": "0.02",
                "max_order": "5", "leverage": 3, "tick_seconds": 10,
            }],
        })
    return Settings(
        daemon={"state_dir": str(state), "status_interval_seconds": 10, "log_level": "warning", "log_format": "json"},
        journal={"path": str(state / "journal.sqlite")},
        http={"enabled": False},
        accounts=accounts,
    )


async def run(hedges: int, hours: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        clock = SimClock(start=1_700_000_000.0)
        config = settings(Path(tmp), hedges)
        # As `hedgebot run` does: JSON lines, here at warning level (an idle day has nothing to warn about).
        configure_logging(config.daemon.log_format, config.daemon.log_level)
        daemon = Daemon(config, clock)
        await daemon.start()
        await clock.advance(60)  # the hedges open; after this the daemon only watches
        opened = sum(1 for k in daemon.keepers if k.status.short)
        samples: list[float] = []
        cpu_start = time.process_time()
        wall_start = time.perf_counter()
        for _ in range(hours):
            await clock.advance(3600)
            samples.append(rss_mb())
        cpu = time.process_time() - cpu_start
        wall = time.perf_counter() - wall_start
        await daemon.stop()
    first = sum(samples[:3]) / min(3, len(samples))
    last = sum(samples[-3:]) / min(3, len(samples))
    return {
        "hedges": hedges,
        "hedges_opened": opened,
        "simulated_hours": hours,
        "rss_mb_max": round(max(samples), 1),
        "rss_mb_first_hours": round(first, 1),
        "rss_mb_last_hours": round(last, 1),
        "rss_growth_mb": round(last - first, 1),
        "cpu_seconds": round(cpu, 2),
        "cpu_share_of_one_core": round(cpu / (hours * 3600), 5),
        "wall_seconds": round(wall, 1),
        "rss_mb_per_hour": [round(s, 1) for s in samples],
    }


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--hedges", type=int, default=100)
    parser.add_argument("--hours", type=int, default=24)
    args = parser.parse_args()
    hedges, hours = (3, 2) if args.quick else (args.hedges, args.hours)
    # Issue 25's limits for 1,000 hedges; the older, tighter ones for 100.
    goal_mb, goal_cpu = (1024.0, 0.05) if hedges >= 1000 else (GOAL_MB, GOAL_CPU)
    print_machine()
    result = run_simulated(run(hedges, hours))
    result["machine"] = machine()
    print(f"{result['hedges']} paper hedges ({result['hedges_opened']} opened), {result['simulated_hours']} simulated hours "
          f"in {result['wall_seconds']} s of wall time")
    print(f"resident memory: max {result['rss_mb_max']} MB, first hours {result['rss_mb_first_hours']} MB, "
          f"last hours {result['rss_mb_last_hours']} MB (goal < {goal_mb:.0f} MB, flat)")
    print(f"CPU: {result['cpu_seconds']} s for {hours * 3600} simulated s = {result['cpu_share_of_one_core']:.3%} of one core "
          f"(goal < {goal_cpu:.0%})")
    goals = [
        goal(f"RSS at {hedges} paper hedges", result["rss_mb_max"], goal_mb, unit="MB"),
        goal(f"CPU share of one core at {hedges} idle hedges", result["cpu_share_of_one_core"], goal_cpu),
    ]
    result["goal_met"] = all(g["met"] for g in goals)
    emit(result, goals)
    return 0


if __name__ == "__main__":
    sys.exit(main())

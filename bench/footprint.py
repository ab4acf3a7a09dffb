"""Memory, CPU and spot-change-to-fill time of one daemon with 1,000 paper hedges (issue 25, goal 3).

Run: .venv/bin/python bench/footprint.py [--accounts A] [--per-account H] [--hours N] [--realtime-minutes M] [--quick]

The real daemon (journal on disk, status file, operations endpoint off) runs A paper accounts of H hedges
each (default 50 x 20 = 1,000 hedges; each hedge its own coin and perpetual, a synthetic price every 10 s,
the default 10 s tick, a status file every 10 s). Each hedge's spot wallet changes by a scripted deposit and
withdrawal in turn (`[[accounts.paper.script]]`), staggered so that the daemon sees one spot change every
`--spot-every` seconds (default 3 s) and each one moves its hedge's short.

Three runs, one after the other in this process:
- a quiet simulated hour (`--quiet-hours`, default 1) of the same daemon with no spot change after its hedges
  open: CPU is the process's CPU seconds per simulated second, the figure issue 25 sets its goal on ("below
  5 % of a core when quiet");
- a simulated day (`--hours`, default 24) on simulated time: CPU is the process's CPU seconds per simulated
  second (the share of one core the daemon would use in real time: the simulation only skips the waiting),
  spot changes included (printed, not judged: the goal is on the quiet hour); resident memory (RSS, from /proc) is sampled every
  simulated hour, and its growth is the least-squares slope over the hours after the first, in MB an hour;
- a real-time run (`--realtime-minutes`, default 10) of the same daemon on the real clock, paper accounts
  written to disk as they are live: from each scripted spot change (the deposit) to the fill of its hedge's
  order (the paper venue's answer, on disk), in real milliseconds; p50, p99 and max.
Ends with a JSON object; each goal is printed with its ratio to its limit.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from _bench import emit, goal, machine, print_machine
from _bench import parser as bench_parser
from hedgebot.clock import RealClock, SimClock, run_simulated
from hedgebot.config import Settings
from hedgebot.domain.model import Wallet
from hedgebot.engine.daemon import Daemon
from hedgebot.exchange.paper import PaperVenue
from hedgebot.ops.logging import configure_logging

GOAL_MB = 1024.0
GOAL_CPU = 0.05
GOAL_GROWTH_MB_PER_HOUR = 1.0  # "no growth from hour to hour": less than 1 MB an hour (24 MB a day) counts as flat
GOAL_FILL_P99_MS = 100.0
QUIET = 10_000_000.0  # seconds between spot changes in the quiet run: none falls within it
PRICE = Decimal("100")


def rss_mb() -> float:
    """Return this process's resident set size in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def settings(state: Path, accounts: int, per_account: int, spot_every: float, first_after: float = 60.0) -> Settings:
    """Return the daemon's config: `accounts` paper accounts of `per_account` hedges, one spot change every `spot_every` s."""
    hedges = accounts * per_account
    cycle = hedges * spot_every  # each hedge's spot changes once a cycle; all of them together every `spot_every`
    out: list[dict[str, Any]] = []
    for a in range(accounts):
        coins = [f"C{a:03d}X{h:02d}" for h in range(per_account)]
        out.append({
            "name": f"paper{a}",
            "mode": "paper",
            "paper": {
                "spot": {**{c: "100" for c in coins}, "USDT": "20000"},
                "futures": {"USDT": str(per_account * 10_000)},
                "markets": [{
                    "symbol": f"{c}/USDT:USDT",
                    "feed": {"kind": "synthetic", "start_price": str(PRICE), "step_seconds": 10, "volatility": 0.5,
                             "seed": a * per_account + h},
                    "funding": {"rate": "0.0001", "interval_hours": 8},
                    "amount_step": "0.01", "min_amount": "0.01", "min_notional": "5", "price_step": "0.001",
                    "brackets": [{"notional_floor": "0", "notional_cap": "1000000", "maint_margin_rate": "0.01",
                                  "maint_amount": "0"}],
                } for h, c in enumerate(coins)],
                "script": [{
                    "asset": c, "every_seconds": cycle / 2, "amounts": ["5", "-5"],
                    "start_after_seconds": first_after + (a * per_account + h) * spot_every,
                } for h, c in enumerate(coins)],
            },
            "hedges": [{
                "name": f"h{h:02d}", "asset": c, "symbol": f"{c}/USDT:USDT", "ratio": "1", "band": "0.02",
                "max_order": "50", "min_order": "0.01", "leverage": 3, "tick_seconds": 10,
            } for h, c in enumerate(coins)],
        })
    return Settings(
        daemon={"state_dir": str(state), "status_interval_seconds": 10, "log_level": "warning", "log_format": "json"},
        journal={"path": str(state / "journal.sqlite")},
        http={"enabled": False},
        accounts=out,
    )


def rss_slope(samples: list[float]) -> float:
    """Return the least-squares slope of `samples` (one an hour) in MB an hour; 0 with fewer than two."""
    if len(samples) < 2:
        return 0.0
    xs = range(len(samples))
    mx, my = statistics.fmean(xs), statistics.fmean(samples)
    return sum((x - mx) * (y - my) for x, y in zip(xs, samples)) / sum((x - mx) ** 2 for x in xs)


class FillWatch:
    """Real milliseconds from each paper spot change to the fill of the order it causes on that coin."""

    def __init__(self) -> None:
        self.changed: dict[tuple[int, str], float] = {}
        self.ms: list[float] = []
        deposit, place_order = PaperVenue.deposit, PaperVenue.place_order
        watch = self

        def watched_deposit(venue: PaperVenue, wallet: Wallet, asset: str, amount: Decimal) -> Decimal:
            watch.changed.setdefault((id(venue), asset), time.perf_counter())
            return deposit(venue, wallet, asset, amount)

        async def watched_place_order(venue: PaperVenue, request: Any) -> Any:
            result = await place_order(venue, request)
            started = watch.changed.pop((id(venue), request.symbol.partition("/")[0]), None)
            if started is not None:
                watch.ms.append((time.perf_counter() - started) * 1000)
            return result

        self._saved = (deposit, place_order)
        PaperVenue.deposit = watched_deposit  # type: ignore[method-assign,assignment]
        PaperVenue.place_order = watched_place_order  # type: ignore[method-assign]

    def close(self) -> None:
        PaperVenue.deposit, PaperVenue.place_order = self._saved  # type: ignore[method-assign]


async def simulated_day(accounts: int, per_account: int, hours: int, spot_every: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        clock = SimClock(start=1_700_000_000.0)
        config = settings(Path(tmp), accounts, per_account, spot_every)
        # As `hedgebot run` does: JSON lines, here at warning level (an idle day has nothing to warn about).
        configure_logging(config.daemon.log_format, config.daemon.log_level)
        daemon = Daemon(config, clock)
        started = time.perf_counter()
        await daemon.start()
        await clock.advance(60)  # the hedges open; after this the daemon watches, and follows the spot changes
        opened = sum(1 for k in daemon.keepers if k.status.short)
        start_wall = time.perf_counter() - started
        samples: list[float] = []
        cpu_start = time.process_time()
        wall_start = time.perf_counter()
        orders_before = sum(len(r.venue.orders) for r in daemon.accounts)
        for hour in range(hours):
            await clock.advance(3600)
            samples.append(rss_mb())
            print(f"  simulated hour {hour + 1}: RSS {samples[-1]:.1f} MB, "
                  f"{time.process_time() - cpu_start:.1f} CPU s so far", flush=True)
        cpu = time.process_time() - cpu_start
        wall = time.perf_counter() - wall_start
        orders = sum(r.venue._order_seq for r in daemon.accounts) - orders_before
        await daemon.stop()
    after_first = samples[1:] if len(samples) > 2 else samples
    return {
        "hedges": accounts * per_account, "accounts": accounts, "hedges_per_account": per_account,
        "hedges_opened": opened, "start_wall_seconds": round(start_wall, 1),
        "simulated_hours": hours, "spot_change_every_seconds": spot_every, "orders_after_opening": orders,
        "rss_mb_max": round(max(samples), 1),
        "rss_mb_per_hour": [round(s, 1) for s in samples],
        "rss_growth_mb_per_hour": round(rss_slope(after_first), 3),
        "cpu_seconds": round(cpu, 2),
        "cpu_share_of_one_core": round(cpu / (hours * 3600), 5),
        "wall_seconds": round(wall, 1),
    }


async def real_time_run(accounts: int, per_account: int, minutes: float, spot_every: float, first_after: float) -> dict[str, Any]:
    watch = FillWatch()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = settings(Path(tmp), accounts, per_account, spot_every, first_after)
            configure_logging(config.daemon.log_format, config.daemon.log_level)
            daemon = Daemon(config, RealClock())
            started = time.perf_counter()
            await daemon.start()
            while any(not k.status.short for k in daemon.keepers) and time.perf_counter() - started < 600:
                await asyncio.sleep(0.5)
            opened_after = time.perf_counter() - started
            watch.ms.clear()  # a change met while the hedges opened is not a reaction
            watch.changed.clear()
            cpu_start = time.process_time()
            await asyncio.sleep(minutes * 60)
            cpu = time.process_time() - cpu_start
            rss = rss_mb()
            await daemon.stop()
    finally:
        watch.close()
    ordered = sorted(watch.ms) or [float("nan")]
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "minutes": minutes, "hedges_opened_after_seconds": round(opened_after, 1), "fills": len(watch.ms),
        "fill_ms_p50": round(statistics.median(ordered), 2), "fill_ms_p99": round(p99, 2),
        "fill_ms_max": round(ordered[-1], 2), "cpu_share_of_one_core": round(cpu / (minutes * 60), 4),
        "rss_mb": round(rss, 1),
    }


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--per-account", type=int, default=20)
    parser.add_argument("--quiet-hours", type=int, default=1, help="quiet simulated hours (0: skip the quiet run)")
    parser.add_argument("--hours", type=int, default=24, help="simulated hours (0: skip the simulated day)")
    parser.add_argument("--realtime-minutes", type=float, default=10.0, help="real minutes (0: skip the real-time run)")
    parser.add_argument("--spot-every", type=float, default=3.0, help="seconds between two spot changes in the daemon")
    parser.add_argument("--first-change-after", type=float, default=60.0, help="seconds from start to the first spot change")
    args = parser.parse_args()
    sim_spot_every = args.spot_every
    if args.quick:
        # Seconds, not minutes; each hedge's spot changes about once an hour in the simulated run (the order-rate
        # breaker allows 120 orders an hour), every 8 s in the short real-time one.
        args.accounts, args.per_account, args.hours, args.realtime_minutes = 2, 2, 1, 0.3
        sim_spot_every, args.spot_every, args.first_change_after = 900.0, 2.0, 2.0
    hedges = args.accounts * args.per_account
    print_machine()
    goals = []
    result: dict[str, Any] = {"machine": machine()}
    if args.quiet_hours > 0:
        # No spot change after the hedges open: the first one falls beyond the run's end.
        quiet = result["quiet"] = run_simulated(simulated_day(args.accounts, args.per_account, args.quiet_hours, QUIET))
        print(f"quiet: {hedges} hedges, {args.quiet_hours} simulated hours, {quiet['orders_after_opening']} orders after "
              f"opening; CPU {quiet['cpu_seconds']} s = {quiet['cpu_share_of_one_core']:.3%} of one core; "
              f"RSS max {quiet['rss_mb_max']} MB")
        goals.append(goal(f"CPU share of one core at {hedges} hedges, quiet", quiet["cpu_share_of_one_core"], GOAL_CPU))
    if args.hours > 0:
        day = result["simulated_day"] = run_simulated(simulated_day(args.accounts, args.per_account, args.hours, sim_spot_every))
        goals += report_day(day, hedges, args.accounts, args.hours, sim_spot_every)
    if args.realtime_minutes > 0:
        live = result["real_time"] = asyncio.run(real_time_run(
            args.accounts, args.per_account, args.realtime_minutes, args.spot_every, args.first_change_after))
        print(f"real time, {args.realtime_minutes} min (hedges opened in {live['hedges_opened_after_seconds']} s): "
              f"{live['fills']} spot changes filled, p50 {live['fill_ms_p50']} ms, p99 {live['fill_ms_p99']} ms, "
              f"max {live['fill_ms_max']} ms; CPU {live['cpu_share_of_one_core']:.2%} of one core, RSS {live['rss_mb']} MB")
        goals.append(goal(f"p99 spot change to fill at {hedges} hedges, real time", live["fill_ms_p99"], GOAL_FILL_P99_MS,
                          unit="ms"))
    result["goal_met"] = all(g["met"] for g in goals)
    emit(result, goals)
    return 0


def report_day(day: dict[str, Any], hedges: int, accounts: int, hours: int, spot_every: float) -> list[dict[str, Any]]:
    """Print the simulated day's figures; return its goals."""
    print(f"{hedges} paper hedges in {accounts} accounts ({day['hedges_opened']} opened in "
          f"{day['start_wall_seconds']} s), {hours} simulated hours in {day['wall_seconds']} s of wall time, "
          f"{day['orders_after_opening']} orders after opening")
    print(f"resident memory: max {day['rss_mb_max']} MB; growth {day['rss_growth_mb_per_hour']} MB an hour "
          f"(per hour: {day['rss_mb_per_hour']})")
    print(f"CPU with the spot changes: {day['cpu_seconds']} s for {hours * 3600} simulated s = "
          f"{day['cpu_share_of_one_core']:.3%} of one core (printed; the goal is on the quiet run)")
    return [
        goal(f"RSS at {hedges} paper hedges", day["rss_mb_max"], GOAL_MB, unit="MB"),
        goal(f"RSS growth hour to hour at {hedges} hedges", max(day["rss_growth_mb_per_hour"], 0.0),
             GOAL_GROWTH_MB_PER_HOUR, unit="MB/h"),
    ]


if __name__ == "__main__":
    sys.exit(main())

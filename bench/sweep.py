"""The sweep's speed-up: the same backtests run one after another, then in parallel on every core.

Run: .venv/bin/python bench/sweep.py [--combinations 8] [--quick]

Replays config/paper.toml's hedge over the shipped hourly history (../shared/data, 2020-2021) for
`--combinations` settings (leverage x futures wallet), first with one worker in this process, then
with the process pool `hedgebot backtest --sweep` uses by default (every core). Prints both wall
times, the speed-up, and the goal: at least 0.8 x the number of cores (the pool's ideal is the core
count; spawning workers and reading the inputs once per worker cost the rest). Checks the two runs
give the same rows.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hedgebot.commands.backtest.replay import InputFiles  # noqa: E402
from hedgebot.commands.backtest.sweep import Axis, combinations, run_sweep  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import emit, goal, machine, print_machine  # noqa: E402
from _bench import parser as bench_parser  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--combinations", type=int, default=8, choices=[2, 4, 8, 16])
    args = parser.parse_args()
    prices = DATA / "BTCUSDT-1h-spot-2020-2021.csv"
    if not prices.exists():
        print(f"skipped: {prices} is absent (../shared beside the checkout holds the history)")
        emit({"machine": machine(), "skipped": f"{prices} absent"})
        return 0
    print_machine()
    count = 2 if args.quick else args.combinations
    leverages = ("2", "3", "5", "10")[: max(1, count // 2)]
    axes = [Axis("leverage", leverages), Axis("futures", ("20000", "100000"))]
    combos = combinations(axes)[:count]
    files = InputFiles(
        config=ROOT / "config" / "paper.toml", hedge="btc-core", account=None, prices=prices,
        funding=DATA / "BTCUSDT-fundingRate-2020-2021.csv",
        start=1_577_836_800.0, end=(1_580_515_200.0 if args.quick else None),  # from 2020-01-01; a month when quick
    )
    cores = os.cpu_count() or 1
    began = time.perf_counter()
    alone = run_sweep(files, combos, workers=1)
    one_by_one = time.perf_counter() - began
    began = time.perf_counter()
    pooled = run_sweep(files, combos, workers=cores)
    parallel = time.perf_counter() - began
    same = alone == pooled
    speedup = one_by_one / parallel
    print(f"{len(combos)} backtests: one after another {one_by_one:.1f} s, in parallel on {cores} cores {parallel:.1f} s, "
          f"speed-up {speedup:.2f}x; same rows: {same}")
    goals = [] if args.quick else [goal("sweep speed-up over one after another", round(speedup, 2), round(0.8 * cores, 2), upper=False, unit="x")]
    emit({
        "machine": machine(), "combinations": len(combos), "cores": cores, "one_after_another_s": round(one_by_one, 2),
        "parallel_s": round(parallel, 2), "speedup": round(speedup, 2), "same_rows": same,
    }, goals)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

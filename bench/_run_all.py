"""Run every bench at its full size (or `--quick`), then print each goal with its ratio to its limit and one JSON.

Run: make bench   (or .venv/bin/python bench/_run_all.py [--quick] [--only NAME ...])

Each bench's output streams through as it runs; its closing JSON line is collected. At the end a table
lists every goal (figure, value, limit, ratio: below 1 is met) with the machine and load average, and the
combined JSON is printed and written to var/bench.json. Exits non-zero if a bench crashed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _bench import machine

BENCH = Path(__file__).resolve().parent
ORDER = ["soak_faults", "backtest_bull_run", "backtest_fund_by_selling", "throughput", "reaction", "footprint", "quality", "pg_lease"]


def scripts() -> list[Path]:
    """Return every bench script, the usual order first, any newer one after."""
    found = {p.stem: p for p in BENCH.glob("*.py") if not p.name.startswith("_")}
    return [found[n] for n in ORDER if n in found] + [p for n, p in sorted(found.items()) if n not in ORDER]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds a bench may run before it is stopped")
    args = parser.parse_args()
    out: dict[str, Any] = {"machine_at_start": machine(), "benches": {}}
    crashed: list[str] = []
    for script in scripts():
        if args.only and script.stem not in args.only:
            continue
        print(f"\n=== {script.stem}", flush=True)
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(script)] + (["--quick"] if args.quick else []),
                                cwd=BENCH.parent, stdout=subprocess.PIPE, text=True)
        last = ""
        assert proc.stdout is not None
        watchdog = threading.Timer(args.timeout, proc.kill)  # a bench that hangs must not hang `make bench`
        watchdog.start()
        try:
            for line in proc.stdout:
                print(line, end="", flush=True)
                if line.strip():
                    last = line.strip()
            code = proc.wait()
        finally:
            watchdog.cancel()
        entry: dict[str, Any] = {"exit": code, "wall_seconds": round(time.perf_counter() - started, 1)}
        try:
            entry["result"] = json.loads(last)
        except json.JSONDecodeError:
            entry["result"] = None
        if code != 0 or entry["result"] is None:
            crashed.append(script.stem)
        out["benches"][script.stem] = entry
    out["machine_at_end"] = machine()
    print(f"\n{'bench':<26} {'figure':<58} {'value':>14} {'limit':>12} {'ratio':>7}")
    for name, entry in out["benches"].items():
        for g in (entry["result"] or {}).get("goals", []):
            sign = "<" if g["kind"] == "max" else ">="
            print(f"{name:<26} {g['figure']:<58} {g['value']:>14} {sign + ' ' + str(g['limit']):>12} {g['ratio']:>7.3f}"
                  f"{'' if g['met'] else '  NOT MET'}")
    m0, m1 = out["machine_at_start"], out["machine_at_end"]
    print(f"machine: {m0['cores']} cores, Python {m0['python']}; load average {m0['load_average']} at start, {m1['load_average']} at end")
    if crashed:
        print(f"crashed or printed no JSON: {', '.join(crashed)}")
    out["crashed"] = crashed
    var = BENCH.parent / "var"
    var.mkdir(exist_ok=True)
    (var / "bench.json").write_text(json.dumps(out, indent=1, default=str))
    print(json.dumps(out, default=str))
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())

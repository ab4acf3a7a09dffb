"""What every bench shares: the `--quick` flag, the machine line, and goals reported as ratios to their limits.

A goal is a figure with a limit; its ratio is value / limit for an upper limit (below 1 is met) and
limit / value for a lower limit (below 1 is met too), so one column reads the same way for all.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from typing import Any


def parser(description: str | None) -> argparse.ArgumentParser:
    """Return an argument parser that knows `--quick` (a size that finishes in seconds, for `make test`)."""
    p = argparse.ArgumentParser(description=(description or "").splitlines()[0] if description else None)
    p.add_argument("--quick", action="store_true", help="a size that finishes in seconds; figures mean nothing")
    return p


def machine() -> dict[str, Any]:
    """Return the machine's cores, Python and the 1-minute load average now."""
    return {
        "cores": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform(terse=True),
        "load_average": round(os.getloadavg()[0], 2),
    }


def print_machine() -> None:
    """Print the machine line every bench starts with."""
    m = machine()
    print(f"machine: {m['cores']} cores, Python {m['python']}; load average {m['load_average']:.2f} at start", flush=True)


def goal(figure: str, value: float, limit: float, *, upper: bool = True, unit: str = "") -> dict[str, Any]:
    """Return one goal: `value` against `limit` (an upper limit unless `upper` is false) and their ratio."""
    if upper:
        ratio = value / limit if limit else float("inf")
    else:
        ratio = limit / value if value else float("inf")
    return {
        "figure": figure, "value": value, "limit": limit, "kind": "max" if upper else "min", "unit": unit,
        "ratio": round(ratio, 4), "met": ratio <= 1.0,
    }


def emit(result: dict[str, Any], goals: list[dict[str, Any]] | None = None) -> None:
    """Print each goal with its ratio, then `result` (with the goals and the load average at the end) as one JSON line."""
    goals = goals or []
    for g in goals:
        sign = "<" if g["kind"] == "max" else ">="
        print(f"goal {g['figure']}: {g['value']} {g['unit']} ({sign} {g['limit']} {g['unit']}) ratio {g['ratio']:.3f} "
              f"{'met' if g['met'] else 'NOT met'}")
    result = dict(result)
    result["goals"] = goals
    result["load_average_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, default=str), flush=True)

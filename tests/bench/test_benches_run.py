"""Every bench still runs: each one at its `--quick` size, as a subprocess, judged on finishing and nothing else.

Timings are never judged here (they live in the bench scripts and `make bench`); a bench that crashes,
or no longer prints its closing JSON object, fails the suite so `make bench` cannot rot unnoticed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))


def test_there_are_benches_to_run() -> None:
    assert len(SCRIPTS) >= 8, [p.name for p in SCRIPTS]


@pytest.mark.slow
@pytest.mark.realtime
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_bench_runs_at_its_quick_size_and_ends_with_its_json(script: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(script), "--quick"], cwd=BENCH.parent, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, f"{script.name} --quick exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    last = done.stdout.strip().splitlines()[-1]
    figures = json.loads(last)
    assert isinstance(figures, dict) and "load_average_end" in figures, last

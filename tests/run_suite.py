"""Run the whole suite as two pytest sessions side by side: `make test` calls this.

Tests marked `realtime` wait on real processes and the wall clock (live daemons on the emulator process, kills and
restarts, the exchange's 30 s settle delay): they spend most of their time idle. Running them in their own session
beside the others lets the machine work while they wait, and keeps CI well inside its time limit. Every test still
runs once; the exit status is non-zero when either session fails.

Arguments are passed to both sessions (e.g. `python -m tests.run_suite -x`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hedgebot.testing.ports import BAND_ENV

REPO = Path(__file__).resolve().parents[1]
NO_TESTS_COLLECTED = 5


def _passed(code: int) -> bool:
    return code in (0, NO_TESTS_COLLECTED)


def main(argv: list[str]) -> int:
    """Run the realtime tests in the background and the rest in the foreground; print both; return the status."""
    began = time.monotonic()
    base = [sys.executable, "-m", "pytest", "-q", *argv]
    with tempfile.TemporaryFile("w+") as realtime_log:
        # The background session keeps no cache: two sessions writing .pytest_cache at once would race.
        # Each session takes its servers' ports from its own band (hedgebot.testing.ports): never one port for two.
        realtime = subprocess.Popen(
            [*base, "-m", "realtime", "-p", "no:cacheprovider"], cwd=REPO, stdout=realtime_log, stderr=subprocess.STDOUT,
            env={**os.environ, BAND_ENV: "1"},
        )
        print("== the tests that wait on real processes run beside these; their output follows at the end", flush=True)
        try:
            rest = subprocess.call([*base, "-m", "not realtime"], cwd=REPO, env={**os.environ, BAND_ENV: "0"})
            realtime_code = realtime.wait()
        except KeyboardInterrupt:
            realtime.terminate()
            realtime.wait()
            raise
        realtime_log.seek(0)
        print("\n== the tests that wait on real processes (marker `realtime`)", flush=True)
        sys.stdout.write(realtime_log.read())
    seconds = time.monotonic() - began
    verdict = "passed" if _passed(rest) and _passed(realtime_code) else "FAILED"
    print(f"\n== suite {verdict} in {seconds:.0f} s (the rest: exit {rest}; realtime: exit {realtime_code})", flush=True)
    if _passed(rest) and _passed(realtime_code):
        return 0
    return rest if not _passed(rest) else realtime_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

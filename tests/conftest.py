"""Test-wide settings."""

from __future__ import annotations

import os

# Daemons started by tests (also as subprocesses, which inherit this) serve their
# operations endpoint on a free port, never on the default 9310, which a running
# `make paper` or another test run on the same machine may hold.
os.environ["HEDGEBOT_HTTP__PORT"] = "0"

# Property tests draw the same examples on every run and every machine: a red CI run is a defect
# found, never a draw of the dice. (A random search finds new cases; run with
# `--hypothesis-profile explore` to look for them by hand.)
from hypothesis import settings  # noqa: E402

settings.register_profile("deterministic", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

# Account locks are machine-wide; a run of the tests keeps its own, apart from any
# daemon or other test run on this machine (subprocesses inherit it too).
import tempfile  # noqa: E402

os.environ["HEDGEBOT_LOCK_DIR"] = tempfile.mkdtemp(prefix="hedgebot-test-locks-")

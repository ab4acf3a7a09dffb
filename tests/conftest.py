"""Test-wide settings."""

from __future__ import annotations

import os

# Daemons started by tests (also as subprocesses, which inherit this) serve their
# operations endpoint on a free port, never on the default 9310, which a running
# `make paper` or another test run on the same machine may hold.
os.environ["HEDGEBOT_HTTP__PORT"] = "0"

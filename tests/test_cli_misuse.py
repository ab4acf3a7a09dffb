"""Misuses of the command line: each ends with a clear message and an exit code, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _hedgebot(*args: str, cwd: Path = REPO, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hedgebot.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120, **kwargs)


def test_version_prints_the_installed_version() -> None:
    done = _hedgebot("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"hedgebot {version('hedgebot')}"

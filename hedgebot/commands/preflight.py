"""Everything `run` will need, checked before anything starts: `check` and `run` share it.

The config's own validation catches what is wrong inside the file. These
checks look outside it: each account as the venue factory will build it
(`hedgebot.exchange.factory.account_problems`: exchange ids, what the paper
venue models, credential variables and files, replay and funding files read
in full), and whether the state and journal can be written. Each problem is
one line, `field.path: message`, never a secret's value.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from hedgebot.access import blocked_directory, denied
from hedgebot.config import LiveFeedConfig, ReplayFeedConfig, Settings
from hedgebot.exchange.factory import account_problems


def writable_problem(field: str, directory: Path) -> str | None:
    """Return why `directory` cannot be created or written, or None.

    A permission problem is the one message every command gives for it, naming the path, not the field.

    It is tried for real (the permission bits do not bind root, and /proc refuses
    even root); what the probe created is removed again, so `check` leaves nothing.
    """
    blocked = blocked_directory(directory)
    if blocked is not None:
        return denied(blocked)
    if directory.is_dir() and not os.access(directory, os.X_OK):
        return denied(directory)
    if directory.is_dir() and not os.access(directory, os.W_OK):
        return denied(directory, "write in")
    missing = []
    probe = directory
    while not probe.exists() and probe.parent != probe:
        missing.append(probe)
        probe = probe.parent
    if not probe.is_dir():
        return f"{field}: cannot create {directory}: {probe} is a file, not a directory"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except PermissionError:
        return denied(directory, "write in")
    except OSError as exc:
        return f"{field}: cannot create {directory} or write in it: {exc.strerror or exc}"
    finally:
        for created in missing:
            with contextlib.suppress(OSError):
                created.rmdir()
    return None


def preflight(settings: Settings) -> list[str]:
    """Return every problem that would stop `run`, one `field.path: message` line each (empty when none)."""
    problems: list[str] = []
    for index, account in enumerate(settings.accounts):
        problems += account_problems(account, f"accounts[{index}]")
    feeds = [m.feed for a in settings.accounts if a.paper for m in a.paper.markets]
    if any(isinstance(f, ReplayFeedConfig) for f in feeds) and any(isinstance(f, LiveFeedConfig) for f in feeds):
        problems.append(
            "accounts: a replay feed runs the daemon in the replay's time, so it cannot share a daemon with a "
            "live feed; run them from two configs"
        )
    journal_dir_problem = None
    for field, directory in (("daemon.state_dir", settings.daemon.state_dir), ("journal.path", settings.journal.path.parent)):
        problem = writable_problem(field, directory)
        if problem:
            problems.append(problem)
        if field == "journal.path":
            journal_dir_problem = problem
    if journal_dir_problem is None and settings.journal.path.is_dir():
        problems.append(f"journal.path: {settings.journal.path} is a directory; name the journal's file")
    return problems

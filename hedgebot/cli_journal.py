"""`hedgebot journal check|recover|backup`: the journal's integrity, its repair, and consistent copies of it."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hedgebot.clock import RealClock
from hedgebot.config import Settings, load_config
from hedgebot.engine.daemon import AccountLock
from hedgebot.store import integrity

EXIT_OK = 0
EXIT_DAMAGED = 1
EXIT_BAD_INPUT = 2


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> int:
    print(f"hedgebot: {message}", file=sys.stderr, flush=True)
    return code


def _journal_path(settings: Settings) -> Path | None:
    path = settings.journal.path
    return path if path.exists() else None


def cmd_check(args: argparse.Namespace) -> int:
    """Run PRAGMA quick_check on the journal: exit 0 when intact, 1 when damaged (saying what to do)."""
    settings = load_config(args.config)
    path = _journal_path(settings)
    if path is None:
        return _fail(f"no journal at {settings.journal.path}: the daemon has not run with this config yet")
    problems = integrity.quick_check(path)
    if not problems:
        print(f"journal {path}: ok")
        return EXIT_OK
    print(f"journal {path}: DAMAGED")
    for problem in problems[:20]:
        print(f"  {problem}")
    print(integrity.damage_advice(path).replace("<your config>", str(args.config)))
    return EXIT_DAMAGED


def cmd_recover(args: argparse.Namespace) -> int:
    """Copy what can be read of the journal into a new one put in its place; refuse while a daemon runs."""
    settings = load_config(args.config)
    path = _journal_path(settings)
    if path is None:
        return _fail(f"no journal at {settings.journal.path}: nothing to recover")
    running = [a.name for a in settings.accounts if AccountLock(settings.daemon.state_dir, a.name).held_elsewhere()]
    if running:
        return _fail(
            f"a daemon runs account(s) {', '.join(running)} on this journal: stop it first (`systemctl stop hedgebot`), "
            "then run `hedgebot journal recover` again"
        )
    try:
        result = integrity.recover(path, RealClock())
    except (sqlite3.Error, OSError) as exc:
        return _fail(f"cannot recover {path}: {exc}", EXIT_DAMAGED)
    print(f"journal {path}: rebuilt from what could be read; the damaged file is kept as {result.kept_as}")
    for table, count in result.copied.items():
        lost = result.unreadable.get(table)
        note = f" (rows {lost[0]}..{lost[1]} could not be read; some of those may never have existed)" if lost else ""
        print(f"  {table}: {count} row(s) copied{note}")
    for table in result.missing_tables:
        print(f"  {table}: could not be read at all")
    print(
        "Start the daemon now: before trading it looks up every order the journal left open, compares each short "
        "with the fills it still holds, and says `journal_recovered`; new orders use a new client-id prefix."
    )
    return EXIT_OK


def cmd_backup(args: argparse.Namespace) -> int:
    """Write a consistent copy of the journal to PATH with SQLite's online backup API (safe while the daemon runs)."""
    settings = load_config(args.config)
    path = _journal_path(settings)
    if path is None:
        return _fail(f"no journal at {settings.journal.path}: nothing to back up")
    target: Path = args.path
    if target.resolve() == path.resolve():
        return _fail(f"PATH {target} is the journal itself: name another file")
    if target.is_dir():
        return _fail(f"PATH {target} is a directory: name the file to write")
    if not target.parent.is_dir():
        return _fail(f"PATH {target}: the directory {target.parent} does not exist")
    try:
        pages = integrity.backup(path, target)
    except (sqlite3.Error, OSError) as exc:
        return _fail(f"cannot back up {path} to {target}: {exc}", EXIT_DAMAGED)
    print(f"journal {path} copied to {target} ({pages} pages), and the copy passes quick_check")
    return EXIT_OK


def register(sub: Any, with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]) -> None:
    """Add `hedgebot journal check|recover|backup` to the `hedgebot` parser."""
    journal = sub.add_parser("journal", help="check, recover or back up the journal")
    commands = journal.add_subparsers(dest="journal_command", required=True)
    with_config(commands.add_parser("check", help="run PRAGMA quick_check on the journal")).set_defaults(func=cmd_check)
    with_config(
        commands.add_parser("recover", help="copy what can be read of a damaged journal into a new one (daemon stopped)")
    ).set_defaults(func=cmd_recover)
    backup = with_config(commands.add_parser("backup", help="write a consistent copy of the journal, also while the daemon runs"))
    backup.add_argument("path", type=Path, metavar="PATH", help="the file to write")
    backup.set_defaults(func=cmd_backup)

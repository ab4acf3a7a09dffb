"""`hedgebot journal check|recover|backup|migrate`: the journal's integrity, its repair, consistent copies, and its move to PostgreSQL."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path
from typing import Any

from hedgebot.clock import RealClock
from hedgebot.commands.args import EXIT_OK, fail, with_config
from hedgebot.config import ConfigError, Settings, load_config
from hedgebot.store import integrity
from hedgebot.store.journal import Journal, JournalUnavailable

EXIT_DAMAGED = 1


def _journal_path(settings: Settings) -> Path | None:
    path = settings.journal.path
    return path if path.exists() else None


def _sqlite_only(settings: Settings, command: str) -> int | None:
    if settings.journal.url is None:
        return None
    return fail(
        f"journal {command} works on the SQLite journal; [journal] url names a PostgreSQL database, whose own tools "
        "(pg_dump, point-in-time recovery) keep and repair it"
    )


def check_journal(settings: Settings) -> tuple[bool, str]:
    """Connect to the configured PostgreSQL journal and apply its migrations; return whether it is usable, and one line."""
    from hedgebot.store.pg_journal import PgJournal, redacted_url  # psycopg only when a PostgreSQL journal is used
    from hedgebot.store.pg_migrations import LATEST

    journal_config = settings.journal
    assert journal_config.url is not None
    where = redacted_url(journal_config.url)
    try:
        journal = PgJournal(journal_config.conninfo(), RealClock(), where=where)
    except (JournalUnavailable, ConfigError) as exc:
        return False, str(exc)
    try:
        version = journal.schema_version()
    except JournalUnavailable as exc:
        return False, str(exc)
    finally:
        journal.close()
    return True, f"journal: PostgreSQL at {where}, schema version {version} (current {LATEST}): OK"


def cmd_check(args: argparse.Namespace) -> int:
    """Check the journal: PRAGMA quick_check on SQLite (exit 1 when damaged, saying what to do), or connect to PostgreSQL."""
    settings = load_config(args.config)
    if settings.journal.url is not None:
        usable, line = check_journal(settings)
        if not usable:
            return fail(line)
        print(line)
        return EXIT_OK
    path = _journal_path(settings)
    if path is None:
        return fail(f"no journal at {settings.journal.path}: the daemon has not run with this config yet")
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
    if (refused := _sqlite_only(settings, "recover")) is not None:
        return refused
    path = _journal_path(settings)
    if path is None:
        return fail(f"no journal at {settings.journal.path}: nothing to recover")
    from hedgebot.engine.daemon import AccountLock  # the daemon's modules load only for the commands that need them

    running = [a.name for a in settings.accounts if AccountLock(settings.daemon.state_dir, a.name).held_elsewhere()]
    if running:
        return fail(
            f"a daemon runs account(s) {', '.join(running)} on this journal: stop it first (`systemctl stop hedgebot`), "
            "then run `hedgebot journal recover` again"
        )
    try:
        result = integrity.recover(path, RealClock())
    except (sqlite3.Error, OSError) as exc:
        return fail(f"cannot recover {path}: {exc}", EXIT_DAMAGED)
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
    if (refused := _sqlite_only(settings, "backup")) is not None:
        return refused
    path = _journal_path(settings)
    if path is None:
        return fail(f"no journal at {settings.journal.path}: nothing to back up")
    target: Path = args.path
    if target.resolve() == path.resolve():
        return fail(f"PATH {target} is the journal itself: name another file")
    if target.is_dir():
        return fail(f"PATH {target} is a directory: name the file to write")
    if not target.parent.is_dir():
        return fail(f"PATH {target}: the directory {target.parent} does not exist")
    try:
        pages = integrity.backup(path, target)
    except (sqlite3.Error, OSError) as exc:
        return fail(f"cannot back up {path} to {target}: {exc}", EXIT_DAMAGED)
    print(f"journal {path} copied to {target} ({pages} pages), and the copy passes quick_check")
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    """Copy an SQLite journal into PostgreSQL; every row is copied once, so the command can be run again."""
    from hedgebot.store.pg_journal import PgJournal, redacted_url

    source: Path = args.source
    if not source.is_file():
        return fail(f"--from {source}: no such journal file")
    try:
        target = PgJournal(args.target, RealClock(), where=redacted_url(args.target))
    except JournalUnavailable as exc:
        return fail(str(exc))
    try:
        try:
            db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
            db.execute("SELECT 1 FROM intents LIMIT 1")
            db.close()
            old = Journal(source, RealClock())
        except sqlite3.DatabaseError as exc:
            return fail(f"--from {source}: not a hedgebot journal ({exc})")
        try:
            origin = f"sqlite:{old.epoch}"
            intents, events = target.import_rows(origin, old.intents(), old.events())
            total_intents, total_events = len(old.intents()), len(old.events())
            controls, kept = target.import_controls(origin, _control_rows(source))
        finally:
            old.close()
    except JournalUnavailable as exc:
        return fail(str(exc))
    finally:
        target.close()
    print(
        f"copied {intents} new intent(s) and {events} new event(s) from {source} to {redacted_url(args.target)} "
        f"({total_intents - intents} intent(s) and {total_events - events} event(s) were there already), and "
        f"{controls} trading state, hold, unwind and request row(s)"
    )
    if kept:
        print(
            f"warning: hedge(s) {', '.join(kept)} already have trading states, holds, unwinds or requests written on "
            "PostgreSQL: theirs were kept and the SQLite journal's were not copied; check `hedgebot status`",
            file=sys.stderr,
        )
    return EXIT_OK


def _control_rows(source: Path) -> dict[str, list[dict[str, Any]]]:
    """Read the SQLite journal's control tables, read-only, oldest first (a journal from before them has none)."""
    from hedgebot.store.pg_journal import CONTROL_COLUMNS

    db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    rows: dict[str, list[dict[str, Any]]] = {}
    try:
        for table in CONTROL_COLUMNS:
            order = "at" if table == "holds" else "id"
            try:
                rows[table] = [dict(r) for r in db.execute(f"SELECT * FROM {table} ORDER BY {order}")]  # noqa: S608
            except sqlite3.OperationalError:
                rows[table] = []  # no such table: nothing of that kind was ever written
    finally:
        db.close()
    return rows


def register(sub: Any) -> None:
    """Add `hedgebot journal check|recover|backup|migrate` to the `hedgebot` parser."""
    journal = sub.add_parser("journal", help="check, recover, back up the journal, or copy it into PostgreSQL")
    commands = journal.add_subparsers(dest="journal_command", required=True)
    with_config(
        commands.add_parser("check", help="SQLite: run PRAGMA quick_check; PostgreSQL: connect, apply migrations, verify the schema")
    ).set_defaults(func=cmd_check)
    with_config(
        commands.add_parser("recover", help="copy what can be read of a damaged journal into a new one (daemon stopped)")
    ).set_defaults(func=cmd_recover)
    backup = with_config(commands.add_parser("backup", help="write a consistent copy of the journal, also while the daemon runs"))
    backup.add_argument("path", type=Path, metavar="PATH", help="the file to write")
    backup.set_defaults(func=cmd_backup)
    migrate = commands.add_parser("migrate", help="copy an SQLite journal into PostgreSQL (safe to run again)")
    migrate.add_argument("--from", dest="source", type=Path, required=True, help="the SQLite journal file")
    migrate.add_argument(
        "--to", dest="target", required=True,
        help="postgresql:// URL; give the password in PGPASSWORD (or ~/.pgpass), not in the URL",
    )
    migrate.set_defaults(func=cmd_migrate)

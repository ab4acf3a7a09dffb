"""`hedgebot journal check` and `hedgebot journal migrate`: the PostgreSQL journal from the command line."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path
from typing import Any

from hedgebot.clock import RealClock
from hedgebot.config import ConfigError, Settings, load_config
from hedgebot.store.journal import Journal, JournalUnavailable

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def _fail(message: str) -> int:
    print(f"hedgebot: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


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
    """Connect to the configured PostgreSQL journal, apply its migrations, and say in one line what is wrong if it fails."""
    settings = load_config(args.config)
    if settings.journal.url is None:
        print(f"journal: SQLite at {settings.journal.path} (no [journal] url: nothing to connect to)")
        return EXIT_OK
    usable, line = check_journal(settings)
    if not usable:
        return _fail(line)
    print(line)
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    """Copy an SQLite journal into PostgreSQL; every row is copied once, so the command can be run again."""
    from hedgebot.store.pg_journal import PgJournal, redacted_url

    source: Path = args.source
    if not source.is_file():
        return _fail(f"--from {source}: no such journal file")
    try:
        target = PgJournal(args.target, RealClock(), where=redacted_url(args.target))
    except JournalUnavailable as exc:
        return _fail(str(exc))
    try:
        try:
            db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
            db.execute("SELECT 1 FROM intents LIMIT 1")
            db.close()
            old = Journal(source, RealClock())
        except sqlite3.DatabaseError as exc:
            return _fail(f"--from {source}: not a hedgebot journal ({exc})")
        try:
            intents, events = target.import_rows(f"sqlite:{old.epoch}", old.intents(), old.events())
            total_intents, total_events = len(old.intents()), len(old.events())
        finally:
            old.close()
    except JournalUnavailable as exc:
        return _fail(str(exc))
    finally:
        target.close()
    print(
        f"copied {intents} new intent(s) and {events} new event(s) from {source} to {redacted_url(args.target)} "
        f"({total_intents - intents} intent(s) and {total_events - events} event(s) were there already)"
    )
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """Add the `journal` command (check, migrate) to the CLI's subparsers."""
    journal = sub.add_parser("journal", help="check or fill the PostgreSQL journal")
    commands = journal.add_subparsers(dest="journal_command", required=True)
    check = commands.add_parser("check", help="connect to [journal] url, apply migrations, verify the schema")
    check.add_argument("--config", type=Path, required=True, help="path to the TOML config")
    check.set_defaults(func=cmd_check)
    migrate = commands.add_parser("migrate", help="copy an SQLite journal into PostgreSQL (safe to run again)")
    migrate.add_argument("--from", dest="source", type=Path, required=True, help="the SQLite journal file")
    migrate.add_argument(
        "--to", dest="target", required=True,
        help="postgresql:// URL; give the password in PGPASSWORD (or ~/.pgpass), not in the URL",
    )
    migrate.set_defaults(func=cmd_migrate)

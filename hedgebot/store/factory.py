"""Open the configured journal and its control records: SQLite by default, PostgreSQL when `[journal] url` is set.

The one place that chooses between the two databases; the keeper and the commands never know which they use.
"""

from __future__ import annotations

from typing import Any

from hedgebot.clock import Clock
from hedgebot.config import JournalConfig
from hedgebot.store.control import Control
from hedgebot.store.journal import Journal, JournalStore


def open_journal(config: JournalConfig, clock: Clock) -> JournalStore:
    """Return the journal `config` names; raise JournalUnavailable (or ConfigError for its password) naming it."""
    if config.url is None:
        return Journal(config.path, clock)
    from hedgebot.store.pg_journal import PgJournal, redacted_url  # psycopg only when a PostgreSQL journal is used

    return PgJournal(config.conninfo(), clock, where=redacted_url(config.url))


def open_control(journal: JournalStore) -> Any:
    """Return the control records kept in `journal`, whichever database it lives in (the same methods either way)."""
    if isinstance(journal, Journal):
        return Control(journal)
    from hedgebot.store.pg_control import PgControl  # psycopg only when a PostgreSQL journal is used
    from hedgebot.store.pg_journal import PgJournal

    assert isinstance(journal, PgJournal)
    return PgControl(journal)

"""Open the configured journal: the SQLite file, or the PostgreSQL database when `[journal] url` is set."""

from __future__ import annotations

from hedgebot.clock import Clock
from hedgebot.config import JournalConfig
from hedgebot.store.journal import Journal, JournalStore


def open_journal(config: JournalConfig, clock: Clock) -> JournalStore:
    """Return the journal `config` names; raise JournalUnavailable (or ConfigError for its password) naming it."""
    if config.url is None:
        return Journal(config.path, clock)
    from hedgebot.store.pg_journal import PgJournal, redacted_url  # psycopg only when a PostgreSQL journal is used

    return PgJournal(config.conninfo(), clock, where=redacted_url(config.url))

"""A COMMIT that fails (disk full, I/O error) may leave SQLite's transaction open ("may or may not be rolled back
automatically", sqlite.org/lang_transaction.html). The journal then refuses every later write with "cannot start a
transaction within a transaction", so it never resumes by itself once the disk has room again (issue 18 item 1)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hedgebot.clock import SimClock
from hedgebot.store.journal import IntentStatus, Journal, JournalUnavailable


class CommitFailsOnce:
    """The journal's connection, whose next COMMIT fails with SQLITE_FULL and leaves the transaction open."""

    def __init__(self, inner: sqlite3.Connection) -> None:
        self.inner = inner
        self.fail_next_commit = True

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.strip().upper() == "COMMIT" and self.fail_next_commit:
            self.fail_next_commit = False
            raise sqlite3.OperationalError("database or disk is full")
        return self.inner.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_the_journal_writes_again_once_a_failed_commit_is_over(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite", SimClock(1_700_000_000.0))
    intent = journal.begin("acct", "btc", "order", {"side": "sell", "amount": "1"})
    journal._db = CommitFailsOnce(journal._db)  # type: ignore[assignment]
    with pytest.raises(JournalUnavailable):
        journal.finish(intent.client_id, IntentStatus.DONE, {"filled": "1"})
    # What was never committed is not read back as done: the intent is still open, to be settled.
    assert [i.status for i in journal.intents("acct")] == [IntentStatus.PENDING]
    # The disk has room again: the next write must go through.
    journal.finish(intent.client_id, IntentStatus.DONE, {"filled": "1"})
    assert [i.status for i in journal.intents("acct")] == [IntentStatus.DONE]

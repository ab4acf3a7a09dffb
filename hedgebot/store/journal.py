"""The SQLite journal: every intent before it is sent, every outcome after, and every event.

It is the audit trail a user reads after a bad day (`hedgebot history`) and
what recovery reads on start-up to settle actions whose outcome is unknown.
Writes are committed before the call returns (WAL, synchronous=FULL), so a
SIGKILL loses nothing that was recorded.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import hashlib
import json
import os
import secrets
import sqlite3
import string
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from hedgebot.access import require_access
from hedgebot.clock import Clock
from hedgebot.redact import redact, redact_value

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS intents (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    hedge TEXT NOT NULL,
    seq INTEGER NOT NULL,
    client_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (account, hedge, seq)
);
CREATE INDEX IF NOT EXISTS intents_open ON intents (status) WHERE status IN ('pending', 'unknown');
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    account TEXT NOT NULL,
    hedge TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_hedge ON events (account, hedge, at);
"""

_BASE36 = string.digits + string.ascii_lowercase


class IntentStatus(StrEnum):
    PENDING = "pending"  # journaled; may or may not have reached the venue
    DONE = "done"  # the venue executed it (fully or partly)
    REJECTED = "rejected"  # the venue refused it
    ABSENT = "absent"  # looked up: the venue never executed it
    UNKNOWN = "unknown"  # could not be settled yet; looked up again before trading


OPEN_STATUSES = (IntentStatus.PENDING, IntentStatus.UNKNOWN)
_OPEN_SQL = ", ".join(f"'{status.value}'" for status in OPEN_STATUSES)


def _base36(number: int) -> str:
    out = ""
    while True:
        number, digit = divmod(number, 36)
        out = _BASE36[digit] + out
        if number == 0:
            return out


def client_order_id(epoch: str, account: str, hedge: str, seq: int) -> str:
    """Return the deterministic client id of an intent.

    Letters and digits only, starting with a letter, at most 32 characters:
    valid for Binance (36), Bybit (36) and OKX (32, alphanumeric).
    """
    digest = hashlib.sha256(f"{account}\x00{hedge}".encode()).digest()
    hedge_key = _base36(int.from_bytes(digest[:4], "big")).rjust(7, "0")[:7]
    return f"hb{epoch}{hedge_key}{_base36(seq)}"


def _where(filters: dict[str, str | None]) -> tuple[str, list[str]]:
    """Return an SQL condition matching every filter that is set (column names are ours, never input)."""
    clauses = ["1=1"] + [f"{column} = ?" for column, value in filters.items() if value is not None]
    return " AND ".join(clauses), [value for value in filters.values() if value is not None]


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def _redacted_json(value: dict[str, Any]) -> str:
    """Return `value` as JSON through the logs' redaction: no secret, URL credential or signed URL is stored.

    Texts are redacted, numbers never (a masked digit would change a figure).
    """
    return json.dumps(redact_value(value), default=_redacted_text, sort_keys=True)


def _redacted_text(value: object) -> str:
    return str(value) if isinstance(value, (Decimal, int, float)) else redact(str(value))


@dataclass(frozen=True)
class Intent:
    """One action the keeper decided on, as journaled."""

    id: int
    account: str
    hedge: str
    seq: int
    client_id: str
    kind: str
    detail: dict[str, Any]
    status: IntentStatus
    outcome: dict[str, Any] | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Event:
    """Something that happened to a hedge: a fill, a top-up, an alert, a state change."""

    id: int
    at: float
    account: str
    hedge: str
    kind: str
    severity: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class NewEvent:
    """An event to be journaled; `at` None stamps it with the time of writing."""

    account: str
    hedge: str
    kind: str
    severity: str
    detail: dict[str, Any]
    at: float | None = None


def _intent(row: sqlite3.Row) -> Intent:
    return Intent(
        row["id"], row["account"], row["hedge"], row["seq"], row["client_id"], row["kind"],
        json.loads(row["detail"]), IntentStatus(row["status"]),
        json.loads(row["outcome"]) if row["outcome"] else None, row["created_at"], row["updated_at"],
    )


class JournalStore(Protocol):
    """What the engine needs of a journal, on SQLite or on PostgreSQL alike: keepers never know which."""

    path: str
    clock: Clock
    damage: str | None

    def begin(self, account: str, hedge: str, kind: str, detail: dict[str, Any]) -> Intent: ...

    def finish(
        self, client_id: str, status: IntentStatus, outcome: dict[str, Any] | None = None, events: Sequence[NewEvent] = (),
    ) -> None: ...

    def open_intents(self, account: str | None = None, hedge: str | None = None) -> list[Intent]: ...

    def intents(self, account: str | None = None, hedge: str | None = None) -> list[Intent]: ...

    def record_event(
        self, account: str, hedge: str, kind: str, severity: str, detail: dict[str, Any], at: float | None = None
    ) -> None: ...

    def events(self, account: str | None = None, hedge: str | None = None, kind: str | None = None) -> list[Event]: ...

    def own_prefixes(self) -> tuple[str, ...]: ...

    def close(self) -> None: ...


# How long a write waits for a lock another connection holds: the journal is written on the event loop,
# so a lock must cost the loop a moment, never SQLite's default five seconds.
BUSY_TIMEOUT_SECONDS = 0.25


class JournalUnavailable(Exception):
    """The journal cannot be written now (a full disk, a lock held elsewhere, a damaged file); the message says which."""


class Journal:
    """Durable record of intents, outcomes and events."""

    def __init__(self, path: Path | str, clock: Clock) -> None:
        self.clock = clock
        self.path = str(path)
        if self.path != ":memory:":
            where = Path(self.path)
            # SQLite says only "unable to open database file"; name the file, or the directory in the way.
            require_access(where, os.R_OK | os.W_OK)
            where.parent.mkdir(parents=True, exist_ok=True)
            require_access(where.parent, os.W_OK | os.X_OK)  # WAL mode creates -wal and -shm beside it
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_SECONDS)
        self._db.row_factory = sqlite3.Row
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self.epoch = self._epoch()
        # Set when an integrity check finds the file damaged: from then on no intent is begun.
        self.damage: str | None = None

    def own_prefixes(self) -> tuple[str, ...]:
        """Return the client-id prefixes this journal wrote under: its epoch, and those before a recovery."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'previous_epochs'").fetchone()
        return tuple(f"hb{e}" for e in (self.epoch, *(row["value"].split() if row else ())))

    def _epoch(self) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
        if row:
            return row["value"]
        # A journal's own prefix keeps its client ids apart from any earlier journal's.
        epoch = "".join(secrets.choice(_BASE36) for _ in range(5))
        self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)", (epoch,))
        return self._db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()["value"]

    def meta(self, key: str) -> str | None:
        """Return a value of the journal's meta table (its client-id prefix, when it was recovered), or None."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    @property
    def db(self) -> sqlite3.Connection:
        """Return the open connection, for stores that keep their tables in the journal."""
        return self._db

    # ---- intents ------------------------------------------------------------------

    def begin(self, account: str, hedge: str, kind: str, detail: dict[str, Any]) -> Intent:
        """Record an intent before it is sent, with its new client id; raise JournalUnavailable when it cannot be."""
        if self.damage is not None:
            raise JournalUnavailable(f"the journal {self.path} is damaged ({self.damage}): no new action is begun")
        now = self.clock.now()
        with self._writing(), self._transaction():
            row = self._db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM intents WHERE account = ? AND hedge = ?",
                (account, hedge),
            ).fetchone()
            seq = int(row["next"])
            cid = client_order_id(self.epoch, account, hedge, seq)
            cursor = self._db.execute(
                "INSERT INTO intents (account, hedge, seq, client_id, kind, detail, status, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (account, hedge, seq, cid, kind, _json(detail), IntentStatus.PENDING.value, now, now),
            )
        return Intent(cursor.lastrowid or 0, account, hedge, seq, cid, kind, detail, IntentStatus.PENDING, None, now, now)

    def finish(
        self, client_id: str, status: IntentStatus, outcome: dict[str, Any] | None = None,
        events: Sequence[NewEvent] = (),
    ) -> None:
        """Record what became of an intent, and the events that tell of it, in one transaction.

        A crash can then never leave a fill in the intents without its `order_filled` in the events,
        which `history` reads.
        """
        now = self.clock.now()
        with self._writing(), self._transaction():
            self._db.execute(
                "UPDATE intents SET status = ?, outcome = ?, updated_at = ? WHERE client_id = ?",
                (status.value, _redacted_json(outcome or {}), now, client_id),
            )
            for event in events:
                self._insert_event(event, now)

    def open_intents(self, account: str | None = None, hedge: str | None = None) -> list[Intent]:
        """Return intents whose outcome is not settled yet, oldest first."""
        return self._select_intents(account, hedge, only_open=True)

    def intents(self, account: str | None = None, hedge: str | None = None) -> list[Intent]:
        """Return every intent, oldest first."""
        return self._select_intents(account, hedge, only_open=False)

    def _select_intents(self, account: str | None, hedge: str | None, only_open: bool) -> list[Intent]:
        query, params = _where({"account": account, "hedge": hedge})
        if only_open:
            # The statuses written out (ours, never input) and the partial index named: every keeper asks this
            # several times a tick, and it must cost the few open intents, not the hedge's whole history.
            query = f"SELECT * FROM intents INDEXED BY intents_open WHERE {query} AND status IN ({_OPEN_SQL}) ORDER BY id"
        else:
            query = f"SELECT * FROM intents WHERE {query} ORDER BY id"
        return [_intent(r) for r in self._db.execute(query, params)]

    # ---- events -------------------------------------------------------------------

    def record_event(
        self, account: str, hedge: str, kind: str, severity: str, detail: dict[str, Any], at: float | None = None
    ) -> None:
        """Append an event, stamped now or at `at`."""
        with self._writing():
            self._insert_event(NewEvent(account, hedge, kind, severity, detail, at), self.clock.now())

    def _insert_event(self, event: NewEvent, now: float) -> None:
        self._db.execute(
            "INSERT INTO events (at, account, hedge, kind, severity, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (now if event.at is None else event.at, event.account, event.hedge, event.kind, event.severity, _redacted_json(event.detail)),
        )

    def events(self, account: str | None = None, hedge: str | None = None, kind: str | None = None) -> list[Event]:
        """Return events, oldest first."""
        query, params = _where({"account": account, "hedge": hedge, "kind": kind})
        return [
            Event(r["id"], r["at"], r["account"], r["hedge"], r["kind"], r["severity"], json.loads(r["detail"]))
            for r in self._db.execute(f"SELECT * FROM events WHERE {query} ORDER BY id", params)
        ]

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Turn SQLite's and the file system's failures to write into JournalUnavailable, naming the file."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise JournalUnavailable(f"cannot write the journal {self.path}: {exc}") from exc


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        if self._db.in_transaction:
            # A COMMIT that failed earlier may have left its transaction open (see __exit__): end it first.
            self._roll_back()
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        if kind is not None:
            self._roll_back()
            return
        try:
            self._db.execute("COMMIT")
        except BaseException:
            # SQLite says a transaction whose COMMIT failed (disk full, I/O error, busy) "may or may not be rolled
            # back automatically"; left open, every later write would fail and reads would see what was never
            # committed. Roll it back, so the journal holds what it held before and writes again once it can.
            self._roll_back()
            raise

    def _roll_back(self) -> None:
        if not self._db.in_transaction:
            return
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # still open: the next transaction tries again before it begins


"""The control channel and the hedge's standing orders, kept in the journal.

Three tables beside the journal's intents and events:
- `requests`: what a person asked for (`pause`, `resume`, `reduce`, `unwind`)
  and who asked. The command writes a row; the daemon that keeps the hedge
  takes it on its next tick and writes back when and what it did. A stopped
  daemon takes it at its next start. No network port, and every request stays
  as an audit trail.
- `trading_states`: every change of a hedge's trading state, with its reason
  and who or what made it; the last row is the state now.
- `unwinds`: each unwind of a hedge, what was asked, and whether it finished.
  The steps themselves are intents tagged with the unwind's id.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from hedgebot.domain.trading import TradingState
from hedgebot.store.journal import Journal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    hedge TEXT NOT NULL,
    command TEXT NOT NULL,
    detail TEXT NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at REAL NOT NULL,
    taken_at REAL,
    taken_by TEXT,
    result TEXT
);
CREATE INDEX IF NOT EXISTS requests_pending ON requests (account, hedge) WHERE taken_at IS NULL;
CREATE TABLE IF NOT EXISTS trading_states (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    hedge TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS holds (
    account TEXT NOT NULL,
    hedge TEXT NOT NULL,
    name TEXT NOT NULL,
    detail TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (account, hedge, name)
);
CREATE TABLE IF NOT EXISTS unwinds (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    hedge TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""

COMMANDS = ("pause", "resume", "reduce", "unwind")
UNWIND_RUNNING = "running"
UNWIND_DONE = "done"


@dataclass(frozen=True)
class Request:
    """One request of the control channel."""

    id: int
    account: str
    hedge: str
    command: str
    detail: dict[str, Any]
    reason: str
    actor: str
    created_at: float
    taken_at: float | None
    taken_by: str | None
    result: str | None


@dataclass(frozen=True)
class StateRecord:
    """A hedge's trading state, why, and who set it."""

    state: TradingState
    reason: str
    actor: str
    at: float


@dataclass(frozen=True)
class UnwindRecord:
    """One unwind of a hedge."""

    id: int
    account: str
    hedge: str
    spec: dict[str, Any]
    status: str
    actor: str
    created_at: float


def _request(row: sqlite3.Row) -> Request:
    return Request(
        row["id"], row["account"], row["hedge"], row["command"], json.loads(row["detail"]), row["reason"],
        row["actor"], row["created_at"], row["taken_at"], row["taken_by"], row["result"],
    )


class Control:
    """Requests, trading states and unwinds of every hedge, in the journal's database."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.db = journal.db
        self.db.executescript(_SCHEMA)

    def _now(self) -> float:
        return self.journal.clock.now()

    # ---- requests -----------------------------------------------------------------

    def submit(self, account: str, hedge: str, command: str, actor: str, reason: str = "", **detail: Any) -> int:
        """Write a request for the daemon; return its id."""
        if command not in COMMANDS:
            raise ValueError(f"unknown command {command!r}")
        cursor = self.db.execute(
            "INSERT INTO requests (account, hedge, command, detail, reason, actor, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (account, hedge, command, json.dumps(detail, default=str, sort_keys=True), reason, actor, self._now()),
        )
        return int(cursor.lastrowid or 0)

    def pending(self, account: str, hedge: str) -> list[Request]:
        """Return the hedge's requests nobody has taken yet, oldest first."""
        rows = self.db.execute(
            "SELECT * FROM requests WHERE account = ? AND hedge = ? AND taken_at IS NULL ORDER BY id", (account, hedge)
        )
        return [_request(r) for r in rows]

    def take(self, request_id: int, taken_by: str, result: str) -> bool:
        """Mark a request taken, with what was done; False when someone took it first."""
        cursor = self.db.execute(
            "UPDATE requests SET taken_at = ?, taken_by = ?, result = ? WHERE id = ? AND taken_at IS NULL",
            (self._now(), taken_by, result, request_id),
        )
        return cursor.rowcount == 1

    def request(self, request_id: int) -> Request | None:
        """Return one request as it stands now."""
        row = self.db.execute("SELECT * FROM requests WHERE id = ?", (request_id,)).fetchone()
        return _request(row) if row else None

    def requests(self, account: str | None = None, hedge: str | None = None) -> list[Request]:
        """Return every request (the audit trail), oldest first."""
        query = "SELECT * FROM requests WHERE (? IS NULL OR account = ?) AND (? IS NULL OR hedge = ?) ORDER BY id"
        return [_request(r) for r in self.db.execute(query, (account, account, hedge, hedge))]

    # ---- trading states -----------------------------------------------------------

    def set_state(self, account: str, hedge: str, state: TradingState, reason: str, actor: str) -> StateRecord:
        """Record a change of the hedge's trading state."""
        now = self._now()
        self.db.execute(
            "INSERT INTO trading_states (account, hedge, state, reason, actor, at) VALUES (?, ?, ?, ?, ?, ?)",
            (account, hedge, state.value, reason, actor, now),
        )
        return StateRecord(state, reason, actor, now)

    def state(self, account: str, hedge: str) -> StateRecord | None:
        """Return the hedge's last recorded trading state, or None when none was ever set."""
        row = self.db.execute(
            "SELECT * FROM trading_states WHERE account = ? AND hedge = ? ORDER BY id DESC LIMIT 1", (account, hedge)
        ).fetchone()
        if row is None:
            return None
        return StateRecord(TradingState(row["state"]), row["reason"], row["actor"], row["at"])

    # ---- holds --------------------------------------------------------------------

    def set_hold(self, account: str, hedge: str, name: str, detail: dict[str, Any] | None) -> None:
        """Record that a guard holds trading on the hedge (`detail` says what it waits for), or lift it with None."""
        if detail is None:
            self.db.execute("DELETE FROM holds WHERE account = ? AND hedge = ? AND name = ?", (account, hedge, name))
            return
        self.db.execute(
            "INSERT OR REPLACE INTO holds (account, hedge, name, detail, at) VALUES (?, ?, ?, ?, ?)",
            (account, hedge, name, json.dumps(detail), self._now()),
        )

    def holds(self, account: str, hedge: str) -> dict[str, dict[str, Any]]:
        """Return the guards that hold trading on the hedge, by name, each with its detail."""
        rows = self.db.execute("SELECT name, detail FROM holds WHERE account = ? AND hedge = ?", (account, hedge))
        return {row["name"]: json.loads(row["detail"]) for row in rows}

    # ---- unwinds ------------------------------------------------------------------

    def start_unwind(self, account: str, hedge: str, spec: dict[str, Any], actor: str) -> UnwindRecord:
        """Record a new unwind of the hedge."""
        now = self._now()
        cursor = self.db.execute(
            "INSERT INTO unwinds (account, hedge, spec, status, actor, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (account, hedge, json.dumps(spec, default=str, sort_keys=True), UNWIND_RUNNING, actor, now, now),
        )
        return UnwindRecord(int(cursor.lastrowid or 0), account, hedge, spec, UNWIND_RUNNING, actor, now)

    def running_unwind(self, account: str, hedge: str) -> UnwindRecord | None:
        """Return the hedge's unwind under way, if any."""
        row = self.db.execute(
            "SELECT * FROM unwinds WHERE account = ? AND hedge = ? AND status = ? ORDER BY id DESC LIMIT 1",
            (account, hedge, UNWIND_RUNNING),
        ).fetchone()
        if row is None:
            return None
        return UnwindRecord(
            row["id"], row["account"], row["hedge"], json.loads(row["spec"]), row["status"], row["actor"], row["created_at"]
        )

    def finish_unwind(self, unwind_id: int) -> None:
        """Mark an unwind done."""
        self.db.execute("UPDATE unwinds SET status = ?, updated_at = ? WHERE id = ?", (UNWIND_DONE, self._now(), unwind_id))


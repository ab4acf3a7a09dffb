"""The control channel, trading states, holds and unwinds in the PostgreSQL journal: the SQLite `Control`'s twin.

Same records and the same answers as `hedgebot.store.control.Control`, so a
keeper never knows which journal it runs on. The tables come with the
journal's migrations (version 2).
"""

from __future__ import annotations

import json
from typing import Any

from hedgebot.domain.trading import TradingState
from hedgebot.store.control import COMMANDS, UNWIND_DONE, UNWIND_RUNNING, Request, StateRecord, UnwindRecord
from hedgebot.store.pg_journal import PgJournal


def _request(row: dict[str, Any]) -> Request:
    return Request(
        row["id"], row["account"], row["hedge"], row["command"], json.loads(row["detail"]), row["reason"],
        row["actor"], row["created_at"], row["taken_at"], row["taken_by"], row["result"],
    )


class PgControl:
    """Requests, trading states, holds and unwinds of every hedge, in the PostgreSQL journal."""

    def __init__(self, journal: PgJournal) -> None:
        self.journal = journal

    def _now(self) -> float:
        return self.journal.clock.now()

    def _one(self, sql: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
        with self.journal.connection() as conn:
            return conn.execute(sql, params).fetchone()  # type: ignore[no-any-return]

    def _all(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self.journal.connection() as conn:
            return conn.execute(sql, params).fetchall()  # type: ignore[no-any-return]

    def _count(self, sql: str, params: tuple[Any, ...]) -> int:
        with self.journal.connection() as conn:
            return int(conn.execute(sql, params).rowcount)

    # ---- requests -----------------------------------------------------------------

    def submit(self, account: str, hedge: str, command: str, actor: str, reason: str = "", **detail: Any) -> int:
        """Write a request for the daemon; return its id."""
        if command not in COMMANDS:
            raise ValueError(f"unknown command {command!r}")
        row = self._one(
            "INSERT INTO requests (account, hedge, command, detail, reason, actor, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id",
            (account, hedge, command, json.dumps(detail, default=str, sort_keys=True), reason, actor, self._now()),
        )
        assert row is not None
        return int(row["id"])

    def pending(self, account: str, hedge: str) -> list[Request]:
        """Return the hedge's requests nobody has taken yet, oldest first."""
        rows = self._all(
            "SELECT * FROM requests WHERE account = %s AND hedge = %s AND taken_at IS NULL ORDER BY id", (account, hedge)
        )
        return [_request(r) for r in rows]

    def take(self, request_id: int, taken_by: str, result: str) -> bool:
        """Mark a request taken, with what was done; False when someone took it first."""
        return self._count(
            "UPDATE requests SET taken_at = %s, taken_by = %s, result = %s WHERE id = %s AND taken_at IS NULL",
            (self._now(), taken_by, result, request_id),
        ) == 1

    def request(self, request_id: int) -> Request | None:
        """Return one request as it stands now."""
        row = self._one("SELECT * FROM requests WHERE id = %s", (request_id,))
        return _request(row) if row else None

    def requests(self, account: str | None = None, hedge: str | None = None) -> list[Request]:
        """Return every request (the audit trail), oldest first."""
        query = (
            "SELECT * FROM requests WHERE (%s::text IS NULL OR account = %s) AND (%s::text IS NULL OR hedge = %s) ORDER BY id"
        )
        return [_request(r) for r in self._all(query, (account, account, hedge, hedge))]

    # ---- trading states -----------------------------------------------------------

    def set_state(self, account: str, hedge: str, state: TradingState, reason: str, actor: str) -> StateRecord:
        """Record a change of the hedge's trading state."""
        now = self._now()
        self._count(
            "INSERT INTO trading_states (account, hedge, state, reason, actor, at) VALUES (%s, %s, %s, %s, %s, %s)",
            (account, hedge, state.value, reason, actor, now),
        )
        return StateRecord(state, reason, actor, now)

    def state(self, account: str, hedge: str) -> StateRecord | None:
        """Return the hedge's last recorded trading state, or None when none was ever set."""
        row = self._one(
            "SELECT * FROM trading_states WHERE account = %s AND hedge = %s ORDER BY id DESC LIMIT 1", (account, hedge)
        )
        if row is None:
            return None
        return StateRecord(TradingState(row["state"]), row["reason"], row["actor"], row["at"])

    # ---- holds --------------------------------------------------------------------

    def set_hold(self, account: str, hedge: str, name: str, detail: dict[str, Any] | None) -> None:
        """Record that a guard holds trading on the hedge (`detail` says what it waits for), or lift it with None."""
        if detail is None:
            self._count("DELETE FROM holds WHERE account = %s AND hedge = %s AND name = %s", (account, hedge, name))
            return
        self._count(
            "INSERT INTO holds (account, hedge, name, detail, at) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (account, hedge, name) DO UPDATE SET detail = EXCLUDED.detail, at = EXCLUDED.at",
            (account, hedge, name, json.dumps(detail), self._now()),
        )

    def holds(self, account: str, hedge: str) -> dict[str, dict[str, Any]]:
        """Return the guards that hold trading on the hedge, by name, each with its detail."""
        rows = self._all("SELECT name, detail FROM holds WHERE account = %s AND hedge = %s", (account, hedge))
        return {row["name"]: json.loads(row["detail"]) for row in rows}

    # ---- unwinds ------------------------------------------------------------------

    def start_unwind(self, account: str, hedge: str, spec: dict[str, Any], actor: str) -> UnwindRecord:
        """Record a new unwind of the hedge."""
        now = self._now()
        row = self._one(
            "INSERT INTO unwinds (account, hedge, spec, status, actor, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id",
            (account, hedge, json.dumps(spec, default=str, sort_keys=True), UNWIND_RUNNING, actor, now, now),
        )
        assert row is not None
        return UnwindRecord(int(row["id"]), account, hedge, spec, UNWIND_RUNNING, actor, now)

    def running_unwind(self, account: str, hedge: str) -> UnwindRecord | None:
        """Return the hedge's unwind under way, if any."""
        row = self._one(
            "SELECT * FROM unwinds WHERE account = %s AND hedge = %s AND status = %s ORDER BY id DESC LIMIT 1",
            (account, hedge, UNWIND_RUNNING),
        )
        if row is None:
            return None
        return UnwindRecord(
            row["id"], row["account"], row["hedge"], json.loads(row["spec"]), row["status"], row["actor"], row["created_at"]
        )

    def finish_unwind(self, unwind_id: int) -> None:
        """Mark an unwind done."""
        self._count("UPDATE unwinds SET status = %s, updated_at = %s WHERE id = %s", (UNWIND_DONE, self._now(), unwind_id))

"""The PostgreSQL journal: the SQLite journal's record and guarantees, shared by daemons that take turns by lease.

Every intent is committed before its exchange call, as with SQLite. Here the
journal is also the fenced resource: an intent is written only in a transaction
that finds the writer's lease current (its epoch, unexpired by the database's
clock) and holds that row until commit, so a takeover commits either before the
write (which is then refused) or after it (and its reconciliation sees it).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from hedgebot.clock import Clock
from hedgebot.store import pg_migrations
from hedgebot.store.journal import (
    _BASE36, _OPEN_SQL, OPEN_STATUSES, Event, Intent, IntentStatus, JournalUnavailable, NewEvent, _base36, _json, _redacted_json,
    client_order_id,
)

# How long a call waits for a pooled connection, and how long a statement may run: the journal is written on
# the event loop, so a database that does not answer must cost it seconds at most, then count as unavailable.
CONNECT_TIMEOUT_SECONDS = 3
STATEMENT_TIMEOUT_MS = 2000


class LeaseLost(JournalUnavailable):
    """This daemon's lease on the account is not current: another took it, or it expired. Nothing may be sent."""


@dataclass(frozen=True)
class LeaseRow:
    """A lease as the database holds it, with the database's clock at the moment it was read."""

    account: str
    holder: str
    epoch: int
    expires_in: float  # seconds left by the database's clock (negative: expired)
    age: float  # seconds since the holder last renewed it


def redacted_url(url: str) -> str:
    """Return a database URL without its password, fit for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class JournalNotAnswering(JournalUnavailable):
    """Nothing answers at the journal's address yet: worth waiting for, unlike a wrong password or database."""


def _not_answering(exc: BaseException) -> bool:
    lowered = str(exc).lower()
    return isinstance(exc, PoolTimeout) or any(
        cue in lowered for cue in ("connection refused", "could not translate host", "timeout", "timed out",
                                   "the database system is starting up", "the database system is shutting down")
    )


def describe_error(exc: BaseException, where: str) -> str:
    """Say in one line what is wrong with a connection: address, password, database, permission, or schema."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = str(exc).lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        cause = "wrong user or password"
    elif "does not exist" in lowered and "database" in lowered:
        cause = "the database does not exist"
    elif "permission denied" in lowered or isinstance(exc, psycopg.errors.InsufficientPrivilege):
        cause = "the user lacks a permission"
    elif isinstance(exc, PoolTimeout):
        cause = "the database does not answer"
    elif "connection refused" in lowered or "could not translate host" in lowered or "timeout" in lowered:
        cause = "nothing answers at that address"
    else:
        cause = "cannot use the database"
    return f"journal {where}: {cause} ({text})"


class PgJournal:
    """Durable record of intents, outcomes and events in PostgreSQL, fenced by per-account leases."""

    def __init__(self, conninfo: str, clock: Clock, *, where: str, pool_size: int = 4) -> None:
        self.clock = clock
        self.path = where  # the URL without its password, for messages
        self.fences: dict[str, tuple[str, int]] = {}  # account -> (holder, epoch) this daemon writes under
        self.damage: str | None = None  # PostgreSQL keeps its own integrity: never set here, read by keepers as on SQLite
        options = f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={STATEMENT_TIMEOUT_MS}"
        settings: dict[str, Any] = {"autocommit": True, "row_factory": dict_row, "connect_timeout": CONNECT_TIMEOUT_SECONDS, "options": options}
        try:
            # One direct connection first: it says why a URL, password or permission is wrong, and migrates.
            with psycopg.connect(conninfo, **settings) as conn:
                pg_migrations.migrate(conn)
        except psycopg.Error as exc:
            kind = JournalNotAnswering if _not_answering(exc) else JournalUnavailable
            raise kind(describe_error(exc, where)) from exc
        self._pool = ConnectionPool(
            conninfo, min_size=1, max_size=pool_size, open=True, timeout=CONNECT_TIMEOUT_SECONDS,
            check=ConnectionPool.check_connection, kwargs=settings,
        )
        self.epoch = self._epoch()

    def own_prefixes(self) -> tuple[str, ...]:
        """Return the client-id prefixes this journal wrote under (its epoch; leases add theirs to the ids)."""
        with self._connection() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'previous_epochs'").fetchone()
        return tuple(f"hb{e}" for e in (self.epoch, *(row["value"].split() if row else ())))

    def _epoch(self) -> str:
        prefix = "".join(secrets.choice(_BASE36) for _ in range(5))
        with self._connection() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('epoch', %s) ON CONFLICT DO NOTHING", (prefix,))
            return str(conn.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()["value"])

    def schema_version(self) -> int:
        """Return the schema version the database is at."""
        with self._connection() as conn:
            return pg_migrations.applied_version(conn)

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.close()

    def connection(self) -> Any:
        """Lend a pooled connection (for stores that keep their tables in this journal); errors become JournalUnavailable."""
        return self._connection()

    def meta(self, key: str) -> str | None:
        """Return a value of the journal's meta table, or None."""
        with self._connection() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return None if row is None else str(row["value"])

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """Lend a pooled connection; turn a failing database into JournalUnavailable naming it."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except LeaseLost:
            raise
        except (psycopg.Error, PoolTimeout) as exc:
            raise JournalUnavailable(describe_error(exc, self.path)) from exc

    # ---- leases -------------------------------------------------------------------------

    def take_lease(self, account: str, holder: str, seconds: float, epoch: int | None) -> int | None:
        """Take, renew or take over the account's lease in one statement; return its epoch, or None when another holds it.

        Renewal keeps the epoch when `holder` still holds `epoch` unexpired; anything
        else (a first lease, an expired one, this holder's own lost one) raises it by one.
        """
        with self._connection() as conn:
            row = conn.execute(
                """
                INSERT INTO leases AS l (account, holder, epoch, taken_at, renewed_at, expires_at)
                VALUES (%(account)s, %(holder)s, 1, clock_timestamp(), clock_timestamp(),
                        clock_timestamp() + make_interval(secs => %(seconds)s))
                ON CONFLICT (account) DO UPDATE SET
                    holder = EXCLUDED.holder,
                    epoch = CASE WHEN l.holder = EXCLUDED.holder AND l.epoch = %(epoch)s AND l.expires_at > clock_timestamp()
                                 THEN l.epoch ELSE l.epoch + 1 END,
                    taken_at = CASE WHEN l.holder = EXCLUDED.holder AND l.epoch = %(epoch)s AND l.expires_at > clock_timestamp()
                                    THEN l.taken_at ELSE clock_timestamp() END,
                    renewed_at = clock_timestamp(),
                    expires_at = EXCLUDED.expires_at
                WHERE (l.holder = EXCLUDED.holder AND l.epoch = %(epoch)s) OR l.expires_at <= clock_timestamp()
                RETURNING l.epoch
                """,
                {"account": account, "holder": holder, "seconds": seconds, "epoch": epoch if epoch is not None else -1},
            ).fetchone()
        if row is None:
            self.fences.pop(account, None)
            return None
        self.fences[account] = (holder, int(row["epoch"]))
        return int(row["epoch"])

    def release_lease(self, account: str, holder: str, epoch: int) -> None:
        """Let a lease go at a clean stop (expire it now), so a standby need not wait out its expiry."""
        self.fences.pop(account, None)
        with self._connection() as conn:
            conn.execute(
                "UPDATE leases SET expires_at = clock_timestamp() WHERE account = %s AND holder = %s AND epoch = %s",
                (account, holder, epoch),
            )

    def drop_fence(self, account: str) -> None:
        """Write nothing more under this daemon's lease on `account` (it fenced itself off)."""
        self.fences.pop(account, None)

    def lease(self, account: str) -> LeaseRow | None:
        """Return the account's lease as the database sees it now."""
        with self._connection() as conn:
            row = conn.execute(
                "SELECT account, holder, epoch, EXTRACT(EPOCH FROM expires_at - clock_timestamp()) AS expires_in,"
                " EXTRACT(EPOCH FROM clock_timestamp() - renewed_at) AS age FROM leases WHERE account = %s",
                (account,),
            ).fetchone()
        if row is None:
            return None
        return LeaseRow(row["account"], row["holder"], int(row["epoch"]), float(row["expires_in"]), float(row["age"]))

    def _fence(self, conn: psycopg.Connection[Any], account: str) -> int:
        """Hold the account's lease row for this transaction, or raise LeaseLost when it is not ours and current."""
        fence = self.fences.get(account)
        if fence is None:
            raise LeaseLost(f"journal {self.path}: this daemon holds no lease on account {account!r}; nothing is sent")
        holder, epoch = fence
        row = conn.execute(
            "SELECT holder, epoch, expires_at > clock_timestamp() AS current FROM leases WHERE account = %s FOR SHARE",
            (account,),
        ).fetchone()
        if row is None or row["holder"] != holder or int(row["epoch"]) != epoch or not row["current"]:
            now = f"epoch {row['epoch']} held by {row['holder']}" if row else "no lease"
            raise LeaseLost(
                f"journal {self.path}: the lease on account {account!r} under epoch {epoch} is not current ({now}); "
                "nothing is sent"
            )
        return epoch

    # ---- intents ------------------------------------------------------------------------

    def begin(self, account: str, hedge: str, kind: str, detail: dict[str, Any]) -> Intent:
        """Record an intent before it is sent, under a current lease; raise LeaseLost or JournalUnavailable when it cannot be."""
        now = self.clock.now()
        with self._connection() as conn, conn.transaction():
            epoch = self._fence(conn, account)
            row = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM intents WHERE account = %s AND hedge = %s",
                (account, hedge),
            ).fetchone()
            seq = int(row["next"])
            # The lease epoch in the client id: an order is traceable to the writer that sent it.
            cid = client_order_id(self.epoch + _base36(epoch).rjust(4, "0"), account, hedge, seq)
            inserted = conn.execute(
                "INSERT INTO intents (account, hedge, seq, client_id, kind, detail, status, created_at, updated_at, lease_epoch)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (account, hedge, seq, cid, kind, _json(detail), IntentStatus.PENDING.value, now, now, epoch),
            ).fetchone()
        return Intent(int(inserted["id"]), account, hedge, seq, cid, kind, detail, IntentStatus.PENDING, None, now, now)

    def finish(
        self, client_id: str, status: IntentStatus, outcome: dict[str, Any] | None = None,
        events: Sequence[NewEvent] = (),
    ) -> None:
        """Record what became of an intent, and the events that tell of it, in one transaction.

        Not fenced: what an exchange did is a fact whoever records it, and a standby settles
        the intents its predecessor left open. But only an open intent is changed: a stale leader
        woken late must not re-open (nor overwrite) what the new leader has settled; then nothing
        is written, its events neither.
        """
        now = self.clock.now()
        with self._connection() as conn, conn.transaction():
            changed = conn.execute(
                "UPDATE intents SET status = %s, outcome = %s, updated_at = %s WHERE client_id = %s AND status = ANY(%s)",
                (status.value, _redacted_json(outcome or {}), now, client_id, [s.value for s in OPEN_STATUSES]),
            ).rowcount
            if not changed:
                return
            for event in events:
                self._insert_event(conn, event, now)

    def open_intents(self, account: str | None = None, hedge: str | None = None) -> list[Intent]:
        """Return intents whose outcome is not settled yet, oldest first."""
        return self._select_intents(account, hedge, only_open=True)

    def intents(self, account: str | None = None, hedge: str | None = None) -> list[Intent]:
        """Return every intent, oldest first."""
        return self._select_intents(account, hedge, only_open=False)

    def _select_intents(self, account: str | None, hedge: str | None, only_open: bool) -> list[Intent]:
        with self._connection() as conn:
            rows = conn.execute(*intents_query(account, hedge, only_open)).fetchall()
        return [_intent(r) for r in rows]

    # ---- events -------------------------------------------------------------------------

    def record_event(
        self, account: str, hedge: str, kind: str, severity: str, detail: dict[str, Any], at: float | None = None
    ) -> None:
        """Append an event, stamped now or at `at`."""
        with self._connection() as conn:
            self._insert_event(conn, NewEvent(account, hedge, kind, severity, detail, at), self.clock.now())

    @staticmethod
    def _insert_event(conn: psycopg.Connection[Any], event: NewEvent, now: float) -> None:
        conn.execute(
            "INSERT INTO events (at, account, hedge, kind, severity, detail) VALUES (%s, %s, %s, %s, %s, %s)",
            (now if event.at is None else event.at, event.account, event.hedge, event.kind, event.severity,
             _redacted_json(event.detail)),
        )

    def events(self, account: str | None = None, hedge: str | None = None, kind: str | None = None) -> list[Event]:
        """Return events, oldest first."""
        query, params = _where({"account": account, "hedge": hedge, "kind": kind})
        with self._connection() as conn:
            rows = conn.execute(f"SELECT * FROM events WHERE {query} ORDER BY id", params).fetchall()
        return [Event(r["id"], r["at"], r["account"], r["hedge"], r["kind"], r["severity"], json.loads(r["detail"])) for r in rows]

    # ---- copying an SQLite journal in ------------------------------------------------------

    def import_rows(self, origin: str, intents: list[Intent], events: list[Event]) -> tuple[int, int]:
        """Copy intents and events from another journal, each once (keyed by `origin` and its id); return how many were new."""
        added_intents = added_events = 0
        with self._connection() as conn, conn.transaction():
            for i in intents:
                cursor = conn.execute(
                    "INSERT INTO intents (account, hedge, seq, client_id, kind, detail, status, outcome, created_at, updated_at, origin)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (i.account, i.hedge, i.seq, i.client_id, i.kind, _json(i.detail), i.status.value,
                     _json(i.outcome) if i.outcome is not None else None, i.created_at, i.updated_at, f"{origin}:intent:{i.id}"),
                )
                added_intents += cursor.rowcount
            for e in events:
                cursor = conn.execute(
                    "INSERT INTO events (at, account, hedge, kind, severity, detail, origin) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    (e.at, e.account, e.hedge, e.kind, e.severity, _json(e.detail), f"{origin}:event:{e.id}"),
                )
                added_events += cursor.rowcount
        return added_intents, added_events

    def import_controls(self, origin: str, rows: dict[str, list[dict[str, Any]]]) -> tuple[int, list[str]]:
        """Copy another journal's control rows (trading states, holds, unwinds, requests) hedge by hedge.

        A hedge with no control rows here, or only rows copied from `origin` before, gets the source's rows
        (the earlier copy replaced, the order kept). A hedge with rows the PostgreSQL daemons wrote keeps them:
        it is named in the returned list and nothing of it is copied. Return the rows copied and those names.
        """
        hedges = sorted({(r["account"], r["hedge"]) for table in rows.values() for r in table})
        copied = 0
        kept: list[str] = []
        with self._connection() as conn, conn.transaction():
            for account, hedge in hedges:
                own = sum(
                    int(conn.execute(
                        f"SELECT COUNT(*) AS n FROM {table} WHERE account = %s AND hedge = %s"  # noqa: S608 - our table names
                        " AND (origin IS NULL OR origin NOT LIKE %s)", (account, hedge, f"{origin}:%"),
                    ).fetchone()["n"])
                    for table in CONTROL_COLUMNS
                )
                if own:
                    kept.append(f"{account}/{hedge}")
                    continue
                for table, columns in CONTROL_COLUMNS.items():
                    conn.execute(
                        f"DELETE FROM {table} WHERE account = %s AND hedge = %s AND origin LIKE %s",  # noqa: S608
                        (account, hedge, f"{origin}:%"),
                    )
                    for row in rows.get(table, []):
                        if (row["account"], row["hedge"]) != (account, hedge):
                            continue
                        key = row["name"] if table == "holds" else row["id"]
                        conn.execute(
                            f"INSERT INTO {table} ({', '.join(columns)}, origin) VALUES ({', '.join(['%s'] * (len(columns) + 1))})",  # noqa: S608
                            (*(row[c] for c in columns), f"{origin}:{table}:{key}"),
                        )
                        copied += 1
        return copied, kept


# The control tables `journal migrate` copies, each with the columns it copies (ids are the target's own).
CONTROL_COLUMNS: dict[str, tuple[str, ...]] = {
    "trading_states": ("account", "hedge", "state", "reason", "actor", "at"),
    "holds": ("account", "hedge", "name", "detail", "at"),
    "unwinds": ("account", "hedge", "spec", "status", "actor", "created_at", "updated_at"),
    "requests": ("account", "hedge", "command", "detail", "reason", "actor", "created_at", "taken_at", "taken_by", "result"),
}


def intents_query(account: str | None, hedge: str | None, only_open: bool) -> tuple[str, list[Any]]:
    """Return the statement and parameters that select intents, oldest first (only unsettled ones when `only_open`)."""
    query, params = _where({"account": account, "hedge": hedge})
    if only_open:
        # The statuses written out (ours, never input): a parameter would hide them from the planner once the
        # statement is prepared, and the partial index on unsettled intents would go unused, each keeper's
        # question then scanning the whole history several times a tick.
        query += f" AND status IN ({_OPEN_SQL})"
    return f"SELECT * FROM intents WHERE {query} ORDER BY id", params


def _where(filters: dict[str, str | None]) -> tuple[str, list[Any]]:
    """Return an SQL condition matching every filter that is set (column names are ours, never input)."""
    clauses = ["TRUE"] + [f"{column} = %s" for column, value in filters.items() if value is not None]
    return " AND ".join(clauses), [value for value in filters.values() if value is not None]


def _intent(row: dict[str, Any]) -> Intent:
    return Intent(
        row["id"], row["account"], row["hedge"], row["seq"], row["client_id"], row["kind"], json.loads(row["detail"]),
        IntentStatus(row["status"]), json.loads(row["outcome"]) if row["outcome"] else None,
        row["created_at"], row["updated_at"],
    )

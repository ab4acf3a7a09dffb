"""The journal's health: check it, copy what can still be read out of a damaged one, back it up online.

A damaged journal must stop trading (an order the journal cannot record may be
sent twice after a restart), and the person who has to act needs to be told which
file and what to do: `hedgebot journal recover`, then start the daemon, which
looks up every open order and compares each short with the exchange.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from hedgebot.clock import Clock

# The tables the journal and the control channel keep, in the order they are copied.
TABLES = ("meta", "intents", "events", "requests", "trading_states", "holds", "unwinds")
# Rows are read in slices of rowids, so one unreadable page costs the rows on it, not the whole table.
_SLICE = 64
# A table is scanned until this many slices in a row hold no row and raise no error.
_EMPTY_SLICES_TO_END = 64


def damage_advice(path: Path | str) -> str:
    """Return what a person should do about a damaged journal at `path`."""
    return (
        f"stop the daemon, run `hedgebot journal recover --config <your config>` to copy what can be read of {path} "
        "into a new journal (the damaged file is kept beside it), then start the daemon again: it looks up every "
        "order left open and compares each short with the exchange before trading"
    )


def quick_check(path: Path | str, timeout: float = 5.0) -> list[str]:
    """Return the problems `PRAGMA quick_check` finds in the journal at `path` (none: an empty list).

    Opens its own read-only connection, so it can run in a thread beside the daemon's writes.
    """
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout)
    except sqlite3.Error as exc:
        return [f"cannot open: {exc}"]
    try:
        rows = db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.Error as exc:
        return [str(exc)]
    finally:
        db.close()
    problems = [str(row[0]) for row in rows]
    return [] if problems == ["ok"] else problems


def backup(source: Path | str, destination: Path | str) -> int:
    """Copy the journal to `destination` with SQLite's online backup API (consistent while the daemon writes); return its pages.

    The copy is written beside the destination and renamed into place, so a failed backup never leaves a half file.
    """
    target = Path(destination)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=5.0)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst, pages=256)
            pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
        finally:
            dst.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    problems = quick_check(partial)
    if problems:
        partial.unlink(missing_ok=True)
        raise sqlite3.DatabaseError(f"the copy does not pass quick_check: {'; '.join(problems[:3])}")
    os.replace(partial, target)
    return pages


@dataclass
class Recovery:
    """What `recover` copied and what it could not read."""

    copied: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, tuple[int, int]] = field(default_factory=dict)  # per table, the first and last rowid that raised
    missing_tables: list[str] = field(default_factory=list)
    kept_as: Path | None = None


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [str(row[1]) for row in db.execute(f"PRAGMA table_info({table})")]


def _copy_table(src: sqlite3.Connection, dst: sqlite3.Connection, table: str, result: Recovery) -> None:
    columns = _columns(dst, table)
    try:
        present = set(_columns(src, table))
    except sqlite3.Error:
        present = set()
    if not present:
        result.missing_tables.append(table)
        return
    wanted = [c for c in columns if c in present]
    names = ", ".join(wanted)
    insert = f"INSERT OR IGNORE INTO {table} (rowid, {names}) VALUES (?, {', '.join('?' * len(wanted))})"
    try:
        top = src.execute(f"SELECT MAX(rowid) FROM {table}").fetchone()[0]
    except sqlite3.Error:
        top = None
    copied = empty_run = 0
    errors: list[int] = []
    start = 0
    while True:
        end = start + _SLICE
        try:
            rows = src.execute(f"SELECT rowid, {names} FROM {table} WHERE rowid > ? AND rowid <= ?", (start, end)).fetchall()
        except sqlite3.Error:
            rows = []
            for rowid in range(start + 1, end + 1):  # one row at a time: keep what the damaged page spares
                try:
                    rows += src.execute(f"SELECT rowid, {names} FROM {table} WHERE rowid = ?", (rowid,)).fetchall()
                except sqlite3.Error:
                    errors.append(rowid)
        for row in rows:
            dst.execute(insert, tuple(row))
        copied += len(rows)
        empty_run = empty_run + 1 if not rows else 0
        start = end
        if top is not None and start >= top:
            break
        if top is None and empty_run >= _EMPTY_SLICES_TO_END:
            break
    result.copied[table] = copied
    if errors:
        result.unreadable[table] = (min(errors), max(errors))


def recover(source: Path | str, clock: Clock) -> Recovery:
    """Copy every row that can still be read out of the journal at `source` into a new journal put in its place.

    The damaged file (and its -wal and -shm) is kept beside it as `<name>.damaged-<time>`. The new
    journal gets a new client-id prefix, so no order it sends can reuse an id the lost rows held,
    and notes that it was recovered, so the next start says so.
    """
    from hedgebot.store.control import Control  # the control channel's tables live in the same file
    from hedgebot.store.journal import Journal

    path = Path(source)
    fresh = path.with_name(path.name + ".recovering")
    for leftover in (fresh, Path(f"{fresh}-wal"), Path(f"{fresh}-shm")):
        leftover.unlink(missing_ok=True)
    result = Recovery()
    journal = Journal(fresh, clock)
    Control(journal)
    dst = journal.db
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        dst.execute("BEGIN IMMEDIATE")
        for table in TABLES:
            _copy_table(src, dst, table, result)
        # A new prefix for client ids: the lost rows may hold ids already sent. The old ones are kept, so that
        # orders sent under them and lost with the rows are known as this journal's, not another daemon's.
        try:
            before = {r[0]: r[1] for r in src.execute("SELECT key, value FROM meta WHERE key IN ('epoch', 'previous_epochs')")}
        except sqlite3.DatabaseError:
            before = {}  # the damage took the meta table: its prefixes are lost with it
        previous = " ".join(p for p in (before.get("previous_epochs", ""), before.get("epoch", "")) if p)
        if previous:
            dst.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('previous_epochs', ?)", (previous,))
        epoch = "".join(secrets.choice("0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(5))
        dst.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('epoch', ?)", (epoch,))
        dst.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('recovered_at', ?)", (str(clock.now()),))
        dst.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('recovered_from', ?)", (str(path),))
        dst.execute("COMMIT")
        dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        src.close()
        journal.close()
    problems = quick_check(fresh)
    if problems:
        raise sqlite3.DatabaseError(f"the recovered copy {fresh} does not pass quick_check: {'; '.join(problems[:3])}")
    stamp = f"{clock.now():.0f}"
    kept = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        old = Path(f"{path}{suffix}")
        if old.exists():
            os.replace(old, Path(f"{kept}{suffix}"))
    for suffix in ("-wal", "-shm"):
        Path(f"{fresh}{suffix}").unlink(missing_ok=True)
    os.replace(fresh, path)
    result.kept_as = kept
    return result

"""A paper account's files: its state, small and current, and an append-only log of its history, written off the loop.

Rewriting the whole account (every order since start) with an fsync after each order, on the event loop,
made a daemon of 200 paper hedges take seconds from a spot change to its fill. Now each change is one record
numbered `seq`: the account's state (balances, legs, marks, settings, counters: a few KB whatever its age) and
only the orders and movements new since the record before. A worker thread appends the records to
`paper-ACCOUNT.log`, then rewrites `paper-ACCOUNT.json` with the newest state alone (no history), both with
an fsync, before the change is acknowledged. The log opens with a base record holding the whole history
kept in memory (bounded); every `COMPACT_EVERY` records, at the first write of a process, and after a failed
write, the log is rewritten from a new base (to a temporary file, then renamed), so it never grows without end.

A clean stop writes `paper-ACCOUNT.json` whole, history included, as hedgebot always did, and empties the log.
A file written before the log existed has no `seq`: it loads as it always did.

Which holds the truth on load: the whole JSON file (at a clean stop, or an older hedgebot's) unless the log holds
a newer record; otherwise the log, its state from its newest record. A crash between two writes leaves either
a record not yet acknowledged (a torn last line, skipped) or files that disagree only in a way this rule reads
right: the log is always written first.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

COMPACT_EVERY = 500  # log records between two bases

# Two threads serve every paper account of the process; each file has at most one drain in flight.
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="paper-store")
_WRITERS: dict[Path, PaperStore] = {}
_WRITERS_LOCK = threading.Lock()

Record = dict[str, Any]  # {"state": {...}, "orders": {...}, "movements": [...]} and, once queued, "seq"


def log_path(state_path: Path) -> Path:
    """Return the history log that goes with a paper account's file."""
    return state_path.with_suffix(".log")


class PaperStore:
    """The writer of one paper account's file and log."""

    def __init__(self, state_path: Path) -> None:
        self.state_path = state_path
        self._lock = threading.Lock()
        self._pending: list[tuple[str, Record]] = []
        self._batch: Future[None] = Future()
        self._draining = False
        self._records = 0  # records in the log since its base
        self._needs_base = True  # the log does not (yet) hold the whole history in this process
        self.seq = 0

    @classmethod
    def of(cls, state_path: Path) -> PaperStore:
        """Return the one writer of this file in the process."""
        key = state_path.resolve()
        with _WRITERS_LOCK:
            store = _WRITERS.get(key)
            if store is None:
                store = _WRITERS[key] = cls(state_path)
            return store

    def resume(self, seq: int) -> None:
        """Go on numbering after `seq` (the newest record read); the next write starts the log afresh from a base."""
        with self._lock:
            self.seq = max(self.seq, seq)
            self._needs_base = True

    def save(self, whole: Callable[[], Record], change: Callable[[], Record], *, inline: bool) -> Future[None]:
        """Queue one change (the whole history when a base is due); return a future done once it is on disk.

        `inline` writes in the calling thread before returning (simulated time: a replay stays deterministic).
        """
        with self._lock:
            if self._needs_base or self._records >= COMPACT_EVERY:
                self._needs_base, self._records = False, 0
                return self._queue("base", whole(), inline=inline)
            self._records += 1
            return self._queue("line", change(), inline=inline)

    def close(self, whole: Record, *, inline: bool) -> Future[None]:
        """Queue the whole account for the JSON file (the log is emptied after it); return a future done once on disk."""
        with self._lock:
            self._needs_base = True
            return self._queue("whole", whole, inline=inline)

    def _queue(self, kind: str, record: Record, *, inline: bool) -> Future[None]:
        # Called with the lock held.
        self.seq += 1
        record = {"seq": self.seq, **record}
        if inline and not self._draining:
            done: Future[None] = Future()
            try:
                self._write([(kind, record)])
            except BaseException:
                self._needs_base = True
                raise
            done.set_result(None)
            return done
        self._pending.append((kind, record))
        batch = self._batch
        if not self._draining:
            self._draining = True
            _POOL.submit(self._drain)
        return batch

    def flush(self) -> None:
        """Wait until every change queued so far is on disk (raise if its write failed)."""
        with self._lock:
            if not self._draining:
                return
            batch = self._batch
        batch.result()

    def _drain(self) -> None:
        while True:
            with self._lock:
                items, self._pending = self._pending, []
                batch, self._batch = self._batch, Future()
                if not items:
                    self._draining = False
                    batch.set_result(None)
                    return
            try:
                self._write(items)
            except BaseException as exc:
                # The waiters hear of it; the next write starts from a base, so nothing of this batch is lost.
                with self._lock:
                    self._needs_base = True
                batch.set_exception(exc)
            else:
                batch.set_result(None)

    def _write(self, items: list[tuple[str, Record]]) -> None:
        log = log_path(self.state_path)
        whole = max((i for i, (kind, _) in enumerate(items) if kind == "whole"), default=None)
        if whole is not None:
            record = items[whole][1]
            _replace(self.state_path, json.dumps({**record["state"], "orders": record["orders"],
                                                  "movements": record["movements"], "seq": record["seq"]}))
            _rewrite(log, "")  # the file holds everything now
            items = items[whole + 1 :]
            if not items:
                return
        base = max((i for i, (kind, _) in enumerate(items) if kind == "base"), default=None)
        if base is not None:
            # The base holds every record before it: the log restarts there.
            _replace(log, "".join(json.dumps({**r, "base": True} if i == base else r) + "\n"
                                  for i, (_, r) in enumerate(items) if i >= base))
        else:
            with log.open("a") as handle:
                handle.write("".join(json.dumps(r) + "\n" for _, r in items))
                handle.flush()
                os.fsync(handle.fileno())
        newest = items[-1][1]
        # A crash before this rename leaves the log newer than the file: the log is read then.
        _replace(self.state_path, json.dumps({**newest["state"], "seq": newest["seq"], "history": log.name}), durable_name=False)


def _replace(path: Path, text: str, *, durable_name: bool = True) -> None:
    """Write `path` atomically: a temporary file, fsynced, renamed over it (and the rename made durable)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    if durable_name:
        _fsync_dir(path.parent)


def _rewrite(path: Path, text: str) -> None:
    with path.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (where the platform allows opening a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _log_records(log: Path) -> list[Record]:
    """Return the log's records from its last base on; a torn last line (never acknowledged) is left out."""
    if not log.exists():
        return []
    lines = log.read_text().splitlines()
    records: list[Record] = []
    for number, line in enumerate(lines):
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines) - 1:
                break  # a crash mid-write: that change was never acknowledged
            raise ValueError(f"{log}: line {number + 1} is damaged; the paper account cannot be read") from None
        if record.get("base"):
            records = []
        records.append(record)
    if records and not records[0].get("base"):
        raise ValueError(f"{log}: the log does not start with its base record; the paper account cannot be read")
    return records


def read_account(state_path: Path) -> tuple[dict[str, Any], int] | None:
    """Return the account as `PaperVenue.to_dict` wrote it, and the newest record's number; None without a file.

    Raise ValueError naming the file when it cannot be read.
    """
    if not state_path.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(state_path.read_text())
    except ValueError as exc:
        raise ValueError(f"{state_path}: not a paper account file ({exc})") from None
    seq = int(data.pop("seq", 0))
    history = data.pop("history", None)
    log = log_path(state_path)
    records = _log_records(log)
    if "orders" in data and (not records or records[-1]["seq"] <= seq):
        return data, seq  # written whole (a clean stop, or a hedgebot from before the log)
    if not records:
        raise ValueError(f"{state_path} keeps its history in {history or log.name}, which is missing or empty")
    orders: dict[str, Any] = {}
    movements: list[Any] = []
    for record in records:
        for cid, order in record["orders"].items():
            orders.pop(cid, None)  # the newest last, as the venue keeps them
            orders[cid] = order
        movements.extend(record["movements"])
    return {**records[-1]["state"], "orders": orders, "movements": movements}, int(records[-1]["seq"])

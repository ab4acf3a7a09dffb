"""The journal's integrity: a damaged file is found, what can be read is recovered, backups are consistent."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from hedgebot.clock import SimClock
from hedgebot.store import integrity
from hedgebot.store.control import Control
from hedgebot.store.journal import IntentStatus, Journal

PAGE = 4096


def filled_journal(path: Path, orders: int = 40, events: int = 400) -> Journal:
    """Return a journal holding done orders and enough events to span many pages."""
    journal = Journal(path, SimClock(start=1_700_000_000.0))
    Control(journal)
    for n in range(orders):
        intent = journal.begin("acct", "btc", "order", {"side": "sell", "amount": "0.1", "n": n})
        journal.finish(intent.client_id, IntentStatus.DONE, {"filled": "0.1", "average_price": "50000", "fee": "2"})
    for n in range(events):
        journal.record_event("acct", "btc", "note", "info", {"n": n, "pad": "x" * 200})
    return journal


def overwrite_last_page(path: Path, seed: int = 7) -> None:
    """Damage the file as a failing disk would: its last page becomes noise."""
    size = path.stat().st_size
    rng = random.Random(seed)
    with path.open("r+b") as handle:
        handle.seek(size - PAGE)
        handle.write(bytes(rng.randrange(256) for _ in range(PAGE)))


def test_quick_check_finds_a_journal_whose_last_page_was_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    filled_journal(path).close()
    assert integrity.quick_check(path) == []
    overwrite_last_page(path)
    problems = integrity.quick_check(path)
    assert problems, "the damage is found"


def test_recover_keeps_every_readable_row_sets_the_damaged_file_aside_and_changes_the_client_id_prefix(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = filled_journal(path)
    old_epoch = journal.epoch
    journal.close()
    overwrite_last_page(path)
    result = integrity.recover(path, SimClock(start=1_700_000_100.0))
    assert integrity.quick_check(path) == []
    assert result.kept_as is not None and result.kept_as.exists()
    assert integrity.quick_check(result.kept_as), "the damaged file is kept as it was"
    recovered = Journal(path, SimClock(start=1_700_000_200.0))
    assert len(recovered.intents()) == 40 and all(i.status is IntentStatus.DONE for i in recovered.intents())
    assert 300 <= len(recovered.events()) <= 400
    assert recovered.epoch != old_epoch, "no new order can reuse a client id the lost rows held"
    assert recovered.meta("recovered_from") == str(path)
    following = recovered.begin("acct", "btc", "order", {"side": "sell", "amount": "0.1"})
    assert following.seq == 41


def test_backup_is_a_consistent_copy_taken_while_another_connection_holds_uncheckpointed_writes(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = filled_journal(path)  # still open: its last writes sit in the WAL, not yet in the main file
    target = tmp_path / "backup.sqlite"
    pages = integrity.backup(path, target)
    assert pages > 1 and integrity.quick_check(target) == []
    copy = sqlite3.connect(target)
    assert copy.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 400
    assert copy.execute("SELECT COUNT(*) FROM intents WHERE status = 'done'").fetchone()[0] == 40
    journal.close()

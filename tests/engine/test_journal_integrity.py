"""A damaged journal stops trading, loudly, naming the file and what to do; at start-up and while running."""

from __future__ import annotations

import sqlite3

import pytest

from hedgebot.clock import SimClock
from hedgebot.domain.model import Wallet
from hedgebot.engine.daemon import Daemon
from hedgebot.engine.daemon_journal import JournalDamaged
from tests.helpers import D, SYMBOL
from tests.ops.support import Receiver, eventually, paper_settings
from tests.store.test_integrity import overwrite_last_page


def webhook(url: str) -> dict:
    return {"alerts": {"senders": [{"kind": "webhook", "name": "ops", "url": {"value": f"{url}/hook"}, "min_severity": "warning"}]}}


async def _run_a_while(tmp_path) -> None:
    """Run the paper daemon long enough to journal a hedge, then stop it cleanly."""
    clock = SimClock()
    daemon = Daemon(paper_settings(tmp_path), clock)
    await daemon.start()
    await clock.advance(5)
    for n in range(300):  # enough events for the file to span many pages
        daemon.events.emit("paper", "btc-core", "note", n=n, pad="x" * 200)
    await clock.run(daemon.stop())


async def test_a_damaged_journal_at_start_up_refuses_the_start_with_a_critical_alert_naming_the_file_and_what_to_do(tmp_path) -> None:
    await _run_a_while(tmp_path)
    journal = tmp_path / "state" / "journal.sqlite"
    overwrite_last_page(journal)
    receiver = Receiver()
    url = await receiver.start()
    try:
        daemon = Daemon(paper_settings(tmp_path, webhook(url)), SimClock())
        with pytest.raises(JournalDamaged) as refused:
            await daemon.start()
        assert str(journal) in str(refused.value) and "hedgebot journal recover" in str(refused.value)
        await eventually(lambda: len(receiver.received) >= 1)
        [alert] = receiver.received
        assert alert["kind"] == "journal_damaged" and alert["severity"] == "critical"
        assert str(journal) in alert["text"] and "hedgebot journal recover" in alert["text"]
        assert not daemon.keepers, "nothing was started"
    finally:
        await receiver.close()


async def test_a_journal_damaged_while_running_stops_every_order_with_a_critical_alert(tmp_path) -> None:
    receiver = Receiver()
    url = await receiver.start()
    clock = SimClock()
    daemon = Daemon(paper_settings(tmp_path, webhook(url)), clock)
    await daemon.start()
    try:
        await clock.advance(5)
        keeper = daemon.keepers[0]
        venue = daemon.accounts[0].venue
        assert keeper.status.state == "hedged"
        for n in range(300):
            daemon.events.emit("paper", "btc-core", "note", n=n, pad="x" * 200)
        daemon.journal.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the pages are in the main file now
        overwrite_last_page(tmp_path / "state" / "journal.sqlite")
        assert await daemon.check_journal(), "the check finds the damage"
        short_before = (await venue.fetch_legs(SYMBOL)).short.size
        venue.deposit(Wallet.SPOT, "BTC", D("0.5"))
        keeper.notify_balance()
        await clock.advance(10)
        assert (await venue.fetch_legs(SYMBOL)).short.size == short_before, "no order goes out on a damaged journal"
        assert keeper.status.state == "journal_damaged"
        assert not daemon.ops.ready()[0]
        await eventually(lambda: any(b.get("code") == "journal_damaged" for b in receiver.received))
        alert = next(b for b in receiver.received if b.get("code") == "journal_damaged")
        assert alert["severity"] == "critical" and "journal.sqlite" in alert["text"] and "journal recover" in alert["text"]
    finally:
        await clock.run(daemon.stop())
        await receiver.close()


async def test_the_journal_is_checked_again_every_check_interval_seconds_while_running(tmp_path) -> None:
    clock = SimClock()
    daemon = Daemon(paper_settings(tmp_path, {"journal": {"path": str(tmp_path / "state" / "journal.sqlite"), "check_interval_seconds": 60}}), clock)
    await daemon.start()
    try:
        await clock.advance(5)
        for n in range(300):
            daemon.events.emit("paper", "btc-core", "note", n=n, pad="x" * 200)
        daemon.journal.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        overwrite_last_page(tmp_path / "state" / "journal.sqlite")
        for _ in range(30):  # the check runs in a thread: a bounded number of simulated minutes
            await clock.advance(10)
            if daemon.keepers[0].status.state == "journal_damaged":
                break
        assert daemon.keepers[0].status.state == "journal_damaged"
        assert daemon.journal.damage is not None
    finally:
        await clock.run(daemon.stop())

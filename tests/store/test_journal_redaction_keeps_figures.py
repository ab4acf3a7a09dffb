"""C20f677 stores intent outcomes through the logs' redaction. The keeper's outcomes hold figures as TEXT
(`describe` -> `plain`), so a registered secret that is a run of digits (a 4+ character bearer token or passphrase) is
masked inside prices and amounts: the journal then holds "***0.0" where the fill price was, and every later reader
(`Decimal(outcome["average_price"])` in unwind progress, late sales, reports) breaks."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from hedgebot import redact
from hedgebot.clock import SimClock
from hedgebot.store.journal import IntentStatus, Journal


def test_a_secret_made_of_digits_never_changes_a_journaled_figure(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(redact, "_secrets", set())
    redact.register_secret("5000")  # e.g. an ops-port bearer token or a short passphrase someone chose
    journal = Journal(tmp_path / "journal.sqlite", SimClock(1_700_000_000.0))
    intent = journal.begin("acct", "btc", "order", {"side": "sell", "amount": "1"})
    journal.finish(intent.client_id, IntentStatus.DONE, {"filled": "1", "average_price": "50000.0", "fee": "25.0000"})
    [stored] = journal.intents("acct")
    assert stored.outcome is not None and stored.outcome["average_price"] == "50000.0", stored.outcome
    assert Decimal(stored.outcome["average_price"]) == Decimal("50000")

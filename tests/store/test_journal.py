"""The journal: durable intents with client ids every exchange accepts."""

from __future__ import annotations

import re

from hedgebot.clock import SimClock
from hedgebot.store.journal import IntentStatus, Journal, client_order_id


def test_client_ids_fit_binance_bybit_and_okx() -> None:
    ids = [client_order_id("a1b2c", account, hedge, seq) for account in ("main", "x" * 40) for hedge in ("btc", "eth-half") for seq in (1, 35, 36, 10**9)]
    assert len(set(ids)) == len(ids)
    for cid in ids:
        assert re.fullmatch(r"[a-z][a-z0-9]{1,31}", cid), cid


def test_client_ids_are_derived_from_the_intent_and_nothing_else() -> None:
    assert client_order_id("e", "acct", "btc", 7) == client_order_id("e", "acct", "btc", 7)
    assert client_order_id("e", "acct", "btc", 7) != client_order_id("e", "acct", "eth", 7)


def test_intents_and_events_survive_reopening(tmp_path) -> None:
    clock = SimClock()
    path = tmp_path / "j.sqlite"
    journal = Journal(path, clock)
    first = journal.begin("acct", "btc", "order", {"amount": "1"})
    second = journal.begin("acct", "btc", "order", {"amount": "2"})
    journal.finish(first.client_id, IntentStatus.DONE, {"filled": "1"})
    journal.record_event("acct", "btc", "alert", "critical", {"code": "x"})
    epoch = journal.epoch
    journal.close()

    again = Journal(path, clock)
    assert again.epoch == epoch
    assert [i.client_id for i in again.open_intents()] == [second.client_id]
    assert [i.status for i in again.intents()] == [IntentStatus.DONE, IntentStatus.PENDING]
    assert again.intents()[0].outcome == {"filled": "1"}
    assert [e.detail for e in again.events(kind="alert")] == [{"code": "x"}]
    third = again.begin("acct", "btc", "margin", {})
    assert third.seq == 3 and third.client_id not in {first.client_id, second.client_id}


def test_a_new_journal_never_reuses_an_old_journals_client_ids(tmp_path) -> None:
    clock = SimClock()
    a = Journal(tmp_path / "a.sqlite", clock).begin("acct", "btc", "order", {})
    b = Journal(tmp_path / "b.sqlite", clock).begin("acct", "btc", "order", {})
    assert a.seq == b.seq == 1 and a.client_id != b.client_id


SIGNED = (
    "binanceusdm POST https://fapi.binance.com/fapi/v1/order?symbol=BTCUSDT&side=SELL&timestamp=1764740000000"
    "&recvWindow=10000&signature=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 503 Service Unavailable"
)


def test_event_details_are_stored_through_the_logs_redaction(tmp_path) -> None:
    from decimal import Decimal

    from hedgebot.redact import register_secret

    register_secret("journal-planted-SECRET-77")
    journal = Journal(tmp_path / "j.sqlite", SimClock())
    journal.record_event(
        "acct", "btc", "order_failed", "warning",
        {"error": f"refused with key journal-planted-SECRET-77: {SIGNED}", "hook": "https://user:pw@example.org/x", "amount": Decimal("1.2345")},
    )
    intent = journal.begin("acct", "btc", "order", {"amount": "1"})
    journal.finish(intent.client_id, IntentStatus.REJECTED, {"error": SIGNED})
    journal.close()
    stored = (tmp_path / "j.sqlite").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("j.sqlite-*"))
    for leaked in (b"journal-planted-SECRET-77", b"signature=9f86", b"timestamp=1764740000000", b"user:pw"):
        assert leaked not in stored
    [event] = Journal(tmp_path / "j.sqlite", SimClock()).events()
    assert event.detail["amount"] == "1.2345" and "fapi.binance.com/fapi/v1/order" in event.detail["error"]


def _vm_steps_to_find_open_intents(journal: Journal, account: str, hedge: str) -> int:
    """Count SQLite's virtual-machine steps (in hundreds) spent finding a hedge's open intents."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    journal.db.set_progress_handler(count, 100)
    try:
        journal.open_intents(account, hedge)
    finally:
        journal.db.set_progress_handler(None, 100)
    return steps[0]


def test_open_intents_are_found_among_a_long_settled_history_oldest_first_and_only_the_hedges_own() -> None:
    journal = Journal(":memory:", SimClock())
    for hedge in ("btc", "eth"):
        for _ in range(50):
            settled = journal.begin("acct", hedge, "order", {})
            journal.finish(settled.client_id, IntentStatus.DONE, {"filled": "1"})
    first = journal.begin("acct", "btc", "order", {"amount": "1"})
    journal.begin("acct", "eth", "order", {"amount": "2"})
    journal.begin("other", "btc", "order", {"amount": "3"})
    second = journal.begin("acct", "btc", "order", {"amount": "4"})
    journal.finish(second.client_id, IntentStatus.UNKNOWN, {"error": "timeout"})
    found = journal.open_intents("acct", "btc")
    assert [(i.client_id, i.status) for i in found] == [(first.client_id, IntentStatus.PENDING), (second.client_id, IntentStatus.UNKNOWN)]
    assert len(journal.open_intents("acct")) == 3 and len(journal.open_intents()) == 4
    journal.finish(first.client_id, IntentStatus.ABSENT, {})
    assert [i.client_id for i in journal.open_intents("acct", "btc")] == [second.client_id]


def test_asking_for_a_hedges_open_intents_costs_the_same_after_thousands_of_settled_orders() -> None:
    journal = Journal(":memory:", SimClock())
    for _ in range(10):
        journal.finish(journal.begin("acct", "btc", "order", {}).client_id, IntentStatus.DONE, {})
    journal.begin("acct", "btc", "order", {})
    young = _vm_steps_to_find_open_intents(journal, "acct", "btc")
    for _ in range(3000):
        journal.finish(journal.begin("acct", "btc", "order", {}).client_id, IntentStatus.DONE, {})
    old = _vm_steps_to_find_open_intents(journal, "acct", "btc")
    assert old <= young + 1, f"finding the open intents read the settled history: {young} then {old} hundred steps"

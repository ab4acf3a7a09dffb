"""Bybit answers an order create with retCode 10016 ("Internal server error or Service Restarting") or
10000/5004 ("Server Timeout"). Neither says the order was refused: its outcome is unknown, and Bybit may have created it.
hedgebot maps them (through ccxt's ExchangeError) to PermanentError: the order is journaled REJECTED, feeds the rejection
breaker, and the next tick sends a new order under a new id."""

from __future__ import annotations

from typing import Any

import pytest

import tests.exchange.books as books
from hedgebot.engine.keeper import Keeper
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import IntentStatus, Journal
from tests.exchange.books import BybitBook
from tests.exchange.ccxt_recorder import Reply
from tests.exchange.dialect_rig import make_rig
from tests.helpers import D, hedge_config

CREATE = ("POST", "/v5/order/create")


@pytest.mark.parametrize("code,msg", [(10016, "Internal server error or Service Restarting"), (10000, "Server Timeout"),
                                      (5004, "Server Timeout")])
async def test_an_order_create_answered_with_a_bybit_server_error_is_not_taken_for_a_rejection(
    monkeypatch: Any, code: int, msg: str
) -> None:
    book = BybitBook()
    book.futures_usdt = book.coins["USDT"] = D("200000")
    rig = make_rig("bybit", book)
    create = rig.session.routes[CREATE]
    answered = {"done": False}

    def flaky_create(request: Any) -> Any:
        created = create(request)  # Bybit carried it out ...
        if not answered["done"]:
            answered["done"] = True  # ... but answered with a server error
            return Reply({"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": books.NOW_MS})
        return created

    rig.session.route(*CREATE, flaky_create)
    journal = Journal(":memory:", rig.venue.clock)
    keeper = Keeper("acct", hedge_config(max_order=D("5")), rig.venue, rig.venue.clock, journal, EventLog(journal, NullLogger()))
    try:
        await keeper.prepare()
        await keeper.tick()
        statuses = [i.status for i in journal.intents("acct")]
        assert IntentStatus.REJECTED not in statuses, f"{msg} journaled as a rejection: {[(i.status, i.outcome.get('error')) for i in journal.intents('acct')]}"
    finally:
        await rig.venue.close()

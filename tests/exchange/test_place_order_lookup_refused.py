"""An order the exchange accepted must never be judged 'not carried out' because the venue's
follow-up lookup (inside place_order) was refused by a rate limit."""

from __future__ import annotations

from typing import Any

import pytest

from hedgebot.engine.keeper import Keeper
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import IntentStatus, Journal
import tests.exchange.books as books
from tests.exchange.books import BybitBook
from tests.exchange.ccxt_recorder import Reply
from tests.exchange.dialect_rig import make_rig
from tests.helpers import D, hedge_config

CREATE = ("POST", "/v5/order/create")
REALTIME = ("GET", "/v5/order/realtime")


REFUSALS = {
    # a 429 (the IP's budget used by another account of the daemon): read as "not carried out", retried, then ABSENT
    "429": Reply({"retCode": 10006, "retMsg": "Too many visits!"}, status=429, headers={"Retry-After": "30"}),
    # a definite-looking error on the lookup (Bybit 10001 params error): read as the order's rejection
    "10001": Reply({"retCode": 10001, "retMsg": "params error: orderLinkId", "result": {}, "retExtInfo": {}, "time": 1}),
}


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
async def test_an_accepted_order_whose_follow_up_lookup_fails_is_not_sent_again(monkeypatch: Any, refusal: str) -> None:
    book = BybitBook()
    book.fill_after = 40  # Bybit creates orders asynchronously: the fill comes some requests later
    book.futures_usdt = book.coins["USDT"] = D("200000")
    rig = make_rig("bybit", book)
    answer = rig.session.routes[REALTIME]
    refused = {"done": False}

    def realtime(request: Any) -> Any:
        # The lookup right after the create meets a 429 (another account of the daemon used the IP's budget).
        if not refused["done"] and request.query.get("orderLinkId"):
            refused["done"] = True
            return REFUSALS[refusal]
        return answer(request)

    rig.session.route(*REALTIME, realtime)
    journal = Journal(":memory:", rig.venue.clock)
    keeper = Keeper("acct", hedge_config(max_order=D("5")), rig.venue, rig.venue.clock, journal, EventLog(journal, NullLogger()))
    try:
        await keeper.prepare()
        for _ in range(10):
            await keeper.tick()
            await rig.venue.clock.advance(5)
            monkeypatch.setattr(books, "NOW_MS", int(rig.venue.clock.now() * 1000))  # the book's mark stays fresh
        creates = [r for r in rig.requests() if (r.method, r.path) == CREATE]
        statuses = [i.status for i in journal.intents("acct")]
        # The one create was accepted (it carries an orderId): it must not be journaled as not executed ...
        assert IntentStatus.ABSENT not in statuses and IntentStatus.REJECTED not in statuses, statuses
        # ... and no second order may go out for the same 2 BTC.
        assert len(creates) == 1, f"{len(creates)} orders were created for one 2 BTC hedge"
        assert book.short.size <= D("2"), f"short {book.short.size} for 2 BTC held"
    finally:
        await rig.venue.close()

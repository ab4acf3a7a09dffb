"""An order the exchange accepted (its create answer carried an order id) is known to exist; a by-id lookup that
does not see it yet (Bybit's order/realtime and order/history lag) must not settle it as absent and send it again."""

from __future__ import annotations

from typing import Any

import tests.exchange.books as books
from hedgebot.engine.keeper import Keeper
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import IntentStatus, Journal
from tests.exchange.books import BybitBook
from tests.exchange.dialect_rig import make_rig
from tests.helpers import D, hedge_config

CREATE = ("POST", "/v5/order/create")


async def test_an_accepted_order_that_lookups_do_not_see_yet_is_not_settled_absent(monkeypatch: Any) -> None:
    book = BybitBook()
    book.futures_usdt = book.coins["USDT"] = D("200000")
    book.fill_after, book.lookup_lag = 5, 90  # filled at once, visible to lookups only ~45 s later
    rig = make_rig("bybit", book)
    journal = Journal(":memory:", rig.venue.clock)
    keeper = Keeper("acct", hedge_config(max_order=D("5")), rig.venue, rig.venue.clock, journal, EventLog(journal, NullLogger()))
    try:
        await keeper.prepare()
        for _ in range(9):
            await keeper.tick()
            await rig.venue.clock.advance(5)
            monkeypatch.setattr(books, "NOW_MS", int(rig.venue.clock.now() * 1000))  # the book's mark stays fresh
        creates = [r for r in rig.requests() if (r.method, r.path) == CREATE]
        statuses = [i.status for i in journal.intents("acct")]
        assert IntentStatus.ABSENT not in statuses, [(i.status, i.outcome) for i in journal.intents("acct")]
        assert len(creates) == 1, f"{len(creates)} orders for one hedge"
    finally:
        await rig.venue.close()

"""While a reduction of an over-hedge is pending (accepted, not filled yet), the keeper must not send
another reduction for the same excess: when both fill, the hedge is left under-hedged."""

from __future__ import annotations

from typing import Any

import tests.exchange.books as books
from hedgebot.engine.keeper import Keeper
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import Journal
from tests.exchange.books import BybitBook, LegBook
from tests.exchange.dialect_rig import make_rig
from tests.helpers import D, hedge_config

CREATE = ("POST", "/v5/order/create")


async def test_a_pending_reduction_is_not_sent_again_while_it_works(monkeypatch: Any) -> None:
    book = BybitBook()
    book.futures_usdt = book.coins["USDT"] = D("200000")
    # 2 BTC held, short 3: over-hedged by 1 BTC (the user sold 1 BTC of spot).
    book.short = LegBook(size=D("3"), entry=D("50000"), margin=D("50000"))
    book.fill_after = 30  # Bybit creates orders asynchronously: the reduction fills some requests later
    rig = make_rig("bybit", book)
    journal = Journal(":memory:", rig.venue.clock)
    keeper = Keeper("acct", hedge_config(max_order=D("5")), rig.venue, rig.venue.clock, journal, EventLog(journal, NullLogger()))
    try:
        await keeper.prepare()
        for _ in range(4):
            await keeper.tick()
            await rig.venue.clock.advance(5)
            monkeypatch.setattr(books, "NOW_MS", int(rig.venue.clock.now() * 1000))  # the book's mark stays fresh
        buys = [r for r in rig.requests() if (r.method, r.path) == CREATE and r.params.get("side") == "Buy"]
        working = sum(o.amount for o in book.orders.values() if o.working and o.side == "buy")
        # Once everything sent has filled, the short is 3 - 1 - working: it must end at the 2 BTC target.
        assert len(buys) == 1, f"{len(buys)} reductions of the 1 BTC excess were sent; {working} BTC of them still working"
    finally:
        await rig.venue.close()

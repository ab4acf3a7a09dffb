"""Bybit and OKX accept an order before they fill it: accepted-but-working is pending, never rejected."""

from __future__ import annotations

from typing import Any

import pytest

from hedgebot.domain.model import OrderSide, PositionSide
from hedgebot.engine.keeper import Keeper
from hedgebot.exchange.port import OrderRequest, OrderStatus
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import IntentStatus, Journal
from tests.exchange.books import BybitBook, OkxBook
from tests.exchange.dialect_rig import SPOT, SYMBOL, Rig, make_rig
from tests.helpers import D, hedge_config

ORDER_PATHS = {"bybit": ("POST", "/v5/order/create"), "okx": ("POST", "/api/v5/trade/batch-orders")}


def _late_rig(exchange: str, fill_after: int, lookup_lag: int = 0) -> Rig:
    book: Any = BybitBook() if exchange == "bybit" else OkxBook()
    book.fill_after, book.lookup_lag = fill_after, lookup_lag
    return make_rig(exchange, book)


@pytest.mark.parametrize("exchange", ["bybit", "okx"])
@pytest.mark.parametrize("symbol", [SYMBOL, SPOT])
async def test_an_order_accepted_and_not_yet_filled_is_pending_not_rejected(exchange: str, symbol: str) -> None:
    rig = _late_rig(exchange, fill_after=1_000)
    try:
        await rig.venue.load_market(SYMBOL)
        side = OrderSide.SELL
        position_side = PositionSide.SHORT if symbol == SYMBOL else None
        result = await rig.venue.place_order(OrderRequest("hb-late-1", symbol, side, D("0.1"), position_side, False))
        assert result.status is OrderStatus.PENDING
        assert result.filled == 0
        looked_up = await rig.venue.fetch_order(symbol, "hb-late-1")
        assert looked_up is not None and looked_up.status is OrderStatus.PENDING
    finally:
        await rig.venue.close()


@pytest.mark.parametrize("exchange", ["bybit", "okx"])
async def test_an_order_that_fills_later_is_found_filled_by_a_later_lookup(exchange: str) -> None:
    rig = _late_rig(exchange, fill_after=6)
    try:
        await rig.venue.load_market(SYMBOL)
        first = await rig.venue.place_order(OrderRequest("hb-late-2", SYMBOL, OrderSide.SELL, D("0.1"), PositionSide.SHORT, False))
        assert first.status is OrderStatus.PENDING
        result = None
        for _ in range(10):
            result = await rig.venue.fetch_order(SYMBOL, "hb-late-2")
            if result is not None and result.status is not OrderStatus.PENDING:
                break
        assert result is not None and result.status is OrderStatus.FILLED and result.filled == D("0.1")
        assert rig.book.short.size == D("0.1")
    finally:
        await rig.venue.close()


def _keeper(rig: Rig, journal: Journal) -> Keeper:
    config = hedge_config(max_order=D("5"), tick_seconds=10)
    return Keeper("acct", config, rig.venue, rig.venue.clock, journal, EventLog(journal, NullLogger()))


@pytest.mark.parametrize("exchange", ["bybit", "okx"])
async def test_a_keeper_on_a_venue_that_fills_late_and_looks_up_late_sends_one_order_and_reaches_target(exchange: str) -> None:
    # The order fills 25 requests after it was accepted, and lookups do not see it for 12 requests.
    rig = _late_rig(exchange, fill_after=25, lookup_lag=12)
    rig.book.futures_usdt = rig.book.coins["USDT"] = D("200000")  # margin enough to hedge the 2 BTC in one order
    journal = Journal(":memory:", rig.venue.clock)
    keeper = _keeper(rig, journal)
    try:
        await keeper.prepare()
        for _ in range(12):
            await keeper.tick()
            await rig.venue.clock.advance(2)  # the book's mark is stamped once: stay inside the staleness limit
        creates = [r for r in rig.requests() if (r.method, r.path) == ORDER_PATHS[exchange]]
        assert len(creates) == 1, f"{len(creates)} orders were sent for one hedge"
        assert rig.book.short.size == D("2")  # the 2 BTC held, hedged once
        statuses = [intent.status for intent in journal.intents("acct")]
        assert IntentStatus.REJECTED not in statuses
        assert statuses == [IntentStatus.DONE]
        assert keeper.status.state == "hedged"
        assert keeper.trading_state.value == "active"
    finally:
        await rig.venue.close()


# ---- the order history that proves an order absent (issue 16, item 1) ----------------------------


@pytest.mark.parametrize("exchange", ["bybit", "okx"])
@pytest.mark.parametrize("symbol", [SYMBOL, SPOT])
async def test_the_order_history_holds_working_and_ended_orders_of_the_window_and_nothing_else(exchange: str, symbol: str) -> None:
    from tests.exchange.books import NOW_MS

    rig = _late_rig(exchange, fill_after=4)
    try:
        await rig.venue.load_market(SYMBOL)
        position_side = PositionSide.SHORT if symbol == SYMBOL else None
        await rig.venue.place_order(OrderRequest("hb-hist-1", symbol, OrderSide.SELL, D("0.1"), position_side, False))
        since, until = NOW_MS / 1000 - 60, NOW_MS / 1000 + 60
        working = await rig.venue.fetch_order_history(symbol, since, until)
        assert working.complete and [(o.client_id, o.status) for o in working.orders] == [("hb-hist-1", OrderStatus.PENDING)]
        for _ in range(4):
            await rig.venue.fetch_order(symbol, "hb-hist-1")  # the book fills it a few requests later
        ended = await rig.venue.fetch_order_history(symbol, since, until)
        found = ended.find("hb-hist-1")
        assert ended.complete and found is not None and found.status is OrderStatus.FILLED and found.filled == D("0.1")
        assert ended.find("hb-never-sent") is None
        assert (await rig.venue.fetch_order_history(symbol, until + 1, until + 120)).find("hb-hist-1") is None
    finally:
        await rig.venue.close()


@pytest.mark.parametrize("exchange", ["bybit", "okx"])
async def test_a_late_fill_on_a_book_that_lags_past_the_settle_delay_is_never_taken_for_absent(exchange: str) -> None:
    # Lookups by client id keep missing the order (a lagging read), well past the settle delay; the
    # history shows it: one order, settled done, never rejected, and never sent again.
    rig = _late_rig(exchange, fill_after=3, lookup_lag=0)
    rig.book.futures_usdt = rig.book.coins["USDT"] = D("200000")
    journal = Journal(":memory:", rig.venue.clock)
    keeper = _keeper(rig, journal)
    real_lookup = rig.venue.fetch_order

    async def lagging_lookup(symbol: str, client_id: str) -> Any:
        await real_lookup(symbol, client_id)  # the request is made (the book counts it) but misses
        return None

    rig.venue.fetch_order = lagging_lookup  # type: ignore[method-assign]
    try:
        await keeper.prepare()
        for _ in range(8):
            await keeper.tick()
            await rig.venue.clock.advance(15)
        creates = [r for r in rig.requests() if (r.method, r.path) == ORDER_PATHS[exchange]]
        assert len(creates) == 1, f"{len(creates)} orders were sent for one hedge"
        assert [intent.status for intent in journal.intents("acct")] == [IntentStatus.DONE]
        assert rig.book.short.size == D("2")
    finally:
        await rig.venue.close()

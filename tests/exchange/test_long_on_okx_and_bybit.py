"""A long hedge for a planned purchase on OKX and Bybit: the keeper, ccxt and each dialect over a recorded account in
the exchange's documented shapes. The LONG leg (OKX posSide long, Bybit positionIdx 1) equals the coins still to
buy, shrinks as they arrive in spot with each exchange's close form in hedge mode, and the guard tops it up on its
own leg after a fall."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

import tests.exchange.books as books
from hedgebot.domain.instrument import HedgeSide
from hedgebot.engine.keeper import Keeper
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import Journal
from tests.exchange.books import BybitBook, OkxBook
from tests.exchange.dialect_rig import Rig, make_rig
from tests.helpers import D, hedge_config

# How each exchange names the order endpoint, the long leg on an order, and a margin top-up of a leg.
ORDER = {"okx": ("POST", "/api/v5/trade/batch-orders"), "bybit": ("POST", "/v5/order/create")}
MARGIN = {"okx": ("POST", "/api/v5/account/position/margin-balance"), "bybit": ("POST", "/v5/position/add-margin")}


def long_named(exchange: str, sent: dict[str, Any]) -> bool:
    return sent.get("posSide") == "long" if exchange == "okx" else int(sent.get("positionIdx", 0)) == 1


def side_of(exchange: str, sent: dict[str, Any]) -> str:
    return str(sent["side"]).lower()


def account(exchange: str) -> Any:
    book = OkxBook() if exchange == "okx" else BybitBook()
    book.coins = {"BTC": D(0), "USDT": D(100000)}
    book.futures_usdt = D(100000)
    return book


async def keeper_on(rig: Rig, amount: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Keeper, Journal]:
    monkeypatch.setattr(books, "NOW_MS", int(rig.venue.clock.now() * 1000))
    journal = Journal(":memory:", rig.venue.clock)
    hedge = hedge_config(side=HedgeSide.LONG, amount=D(amount), margin_mode="isolated", leverage=3, max_order=D(5))
    keeper = Keeper("acct", hedge, rig.venue, rig.venue.clock, journal, EventLog(journal, NullLogger()))
    await keeper.prepare()
    await keeper.tick()
    return keeper, journal


async def later(rig: Rig, seconds: float, monkeypatch: pytest.MonkeyPatch) -> None:
    await rig.venue.clock.advance(seconds)
    monkeypatch.setattr(books, "NOW_MS", int(rig.venue.clock.now() * 1000))  # the book's mark stays fresh


def orders(rig: Rig, exchange: str) -> list[dict[str, Any]]:
    out = []
    for r in rig.requests():
        if (r.method, r.path) != ORDER[exchange]:
            continue
        sent = dict(r.body[0]) if isinstance(r.body, list) else dict(r.params)
        if sent.get("instId", sent.get("symbol")) in ("BTC-USDT-SWAP", "BTCUSDT") and sent.get("category", "linear") == "linear":
            out.append(sent)
    return out


@pytest.mark.parametrize("exchange", ["okx", "bybit"])
async def test_a_long_holds_the_coins_still_to_buy_on_its_named_leg_and_shrinks_as_they_arrive(
    exchange: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    book = account(exchange)
    rig = make_rig(exchange, book)
    keeper, journal = await keeper_on(rig, "3", monkeypatch)
    try:
        assert (book.long.size, book.short.size) == (D(3), D(0))
        for bought, left in (("1", "2"), ("1.5", "0.5"), ("0.5", "0")):
            book.coins["BTC"] += D(bought)
            await later(rig, 10, monkeypatch)
            await keeper.tick()
            assert (book.long.size, book.short.size) == (D(left), D(0)), bought
        sent = orders(rig, exchange)
        assert [side_of(exchange, o) for o in sent] == ["buy", "sell", "sell", "sell"]
        assert all(long_named(exchange, o) for o in sent), sent
        # Each exchange's close form in hedge mode: OKX names the leg only (reduceOnly is net mode's), Bybit
        # names it and sends reduceOnly on the close, so a close can never open the other way.
        closes = [bool(o.get("reduceOnly")) for o in sent]
        assert closes == ([False] * 4 if exchange == "okx" else [False, True, True, True]), sent
        assert sorted(book.orders) == sorted(i.client_id for i in journal.intents() if i.kind == "order")
    finally:
        journal.close()
        await rig.venue.close()


@pytest.mark.parametrize("exchange", ["okx", "bybit"])
async def test_the_guard_tops_up_a_long_on_its_own_leg_after_a_fall(exchange: str, monkeypatch: pytest.MonkeyPatch) -> None:
    book = account(exchange)
    rig = make_rig(exchange, book)
    keeper, journal = await keeper_on(rig, "2", monkeypatch)
    try:
        posted = book.long.margin
        rig.forget()
        for price in ("46000", "42000", "39000"):  # a fall in steps the jump guard accepts
            book.mark = D(price)
            await later(rig, 60, monkeypatch)
            await keeper.tick()
        topups = [dict(r.params) for r in rig.requests() if (r.method, r.path) == MARGIN[exchange]]
        assert topups, "no top-up after a 22 % fall"
        assert all(long_named(exchange, t) for t in topups), topups
        assert book.long.margin > posted and book.short.margin == 0
        assert book.long.size == D(2)
    finally:
        journal.close()
        await rig.venue.close()


@pytest.mark.parametrize("exchange", ["okx", "bybit"])
async def test_a_long_unwinds_in_its_exchange_s_close_form_and_the_hedge_closes(exchange: str, monkeypatch: pytest.MonkeyPatch) -> None:
    book = account(exchange)
    rig = make_rig(exchange, book)
    keeper, journal = await keeper_on(rig, "3", monkeypatch)
    try:
        assert book.long.size == D(3)
        rig.forget()
        keeper.control.submit("acct", keeper.hedge.name, "unwind", "tester", "closing")
        for _ in range(6):
            await later(rig, 10, monkeypatch)
            await keeper.tick()
        assert (book.long.size, book.short.size) == (D(0), D(0))
        closes = orders(rig, exchange)
        assert closes and all(side_of(exchange, o) == "sell" and long_named(exchange, o) for o in closes), closes
        assert all(bool(o.get("reduceOnly")) is (exchange == "bybit") for o in closes), closes
        assert keeper.status.trading_state == "closed"
    finally:
        journal.close()
        await rig.venue.close()

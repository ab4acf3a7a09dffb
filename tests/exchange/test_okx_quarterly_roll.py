"""A live quarterly short on OKX: the keeper, ccxt's `okx` and the OKX dialect over a recorded OKX account whose legs
live on each instrument (tests/exchange/okx_delivery_book.py). It holds the nearest `live` future more than
roll_before from delivery, rolls next contract first in slices on posSide short (long/short mode closes with the
opposite side on the same posSide, never reduceOnly), finds a lost answer by clOrdId, and meets OKX's refusal of a
contract that is not `live` with the perpetual and a critical alert."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import tests.exchange.books as books
from hedgebot.domain.instrument import InstrumentKind
from hedgebot.domain.model import OrderSide, PositionSide
from hedgebot.engine.keeper import Keeper
from hedgebot.exchange.port import InvalidOrder, OrderRequest
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import Journal
from tests.engine.test_quarterly_roll import tick_until_killed
from tests.exchange.delivery_books import DEC23, MAR24, okx_instrument
from tests.exchange.dialect_rig import Rig, make_rig
from tests.exchange.okx_delivery_book import SWAP, OkxDeliveryBook
from tests.helpers import D, hedge_config

DEC, MAR = "BTC-USDT-231229", "BTC-USDT-240329"
DEC_CCXT, MAR_CCXT = "BTC/USDT:USDT-231229", "BTC/USDT:USDT-240329"
DAY = 86_400.0
SLICE = D("0.5")
ROLL_AT = DEC23 / 1000 - 3 * DAY  # roll_before's default: 3 days
ORDERS = ("POST", "/api/v5/trade/batch-orders")


def book(next_state: str = "live") -> OkxDeliveryBook:
    listed = [okx_instrument(DEC, "FUTURES", "live", DEC23), okx_instrument(MAR, "FUTURES", next_state, MAR24)]
    okx = OkxDeliveryBook(listed=listed)
    okx.coins = {"BTC": D("2"), "USDT": D("60000")}
    okx.marks = {DEC: D("50500"), MAR: D("51200")}
    return okx


def quarterly_keeper(rig: Rig, journal: Journal) -> Keeper:
    hedge = hedge_config(instrument=InstrumentKind.USDM_QUARTERLY, max_order=SLICE, margin_mode="isolated", leverage=3)
    return Keeper("acct", hedge, rig.venue, rig.venue.clock, journal, EventLog(journal, NullLogger()))


async def to(rig: Rig, when: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """Move the clock to `when`; the book's marks and orders are stamped at that time (its prices stay fresh)."""
    await rig.venue.clock.advance(when - rig.venue.clock.now())
    monkeypatch.setattr(books, "NOW_MS", int(when * 1000))


def shorts(okx: OkxDeliveryBook) -> tuple[Decimal, Decimal, Decimal]:
    """The SHORT legs on the exchange: December, March, the swap."""
    dated = [okx.dated.get(i, (None, None))[1] for i in (DEC, MAR)]
    return tuple(leg.size if leg is not None else D(0) for leg in dated) + (okx.short.size,)  # type: ignore[return-value]


def orders_sent(rig: Rig) -> list[dict[str, Any]]:
    return [dict(r.body[0]) for r in rig.requests() if (r.method, r.path) == ORDERS and isinstance(r.body, list)]


async def opened(monkeypatch: pytest.MonkeyPatch, okx: OkxDeliveryBook, journal_path: str = ":memory:") -> tuple[Rig, Keeper, Journal]:
    rig = make_rig("okx", okx)
    await to(rig, rig.venue.clock.now(), monkeypatch)
    journal = Journal(journal_path, rig.venue.clock)
    keeper = quarterly_keeper(rig, journal)
    await keeper.prepare()
    await keeper.tick()
    return rig, keeper, journal


async def test_an_okx_quarterly_short_holds_the_nearest_live_future_and_rolls_next_contract_first_on_pos_side_short(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    okx = book()
    rig, keeper, journal = await opened(monkeypatch, okx)
    try:
        assert shorts(okx) == (D(2), 0, 0), "the nearest live future more than roll_before from delivery"
        assert keeper.status.to_json()["contract"] == DEC_CCXT
        rig.forget()
        await to(rig, ROLL_AT + 60, monkeypatch)
        for _ in range(3):
            await keeper.tick()
            await to(rig, rig.venue.clock.now() + 10, monkeypatch)
        assert shorts(okx) == (0, D(2), 0)
        sent = orders_sent(rig)
        assert [(o["instId"], o["side"], o["posSide"]) for o in sent] == [(MAR, "sell", "short"), (DEC, "buy", "short")] * 4
        assert all(o["tdMode"] == "isolated" and o["ordType"] == "market" and "reduceOnly" not in o for o in sent)
        short = D(2)
        for o in sent:
            filled = D(o["sz"]) * D("0.01")  # contracts of 0.01 BTC
            assert filled <= SLICE
            short += filled if o["side"] == "sell" else -filled
            assert D(2) <= short <= D(2) + SLICE
        assert [e.detail["next_contract"] for e in journal.events(kind="roll_completed")] == [MAR_CCXT]
        assert keeper.market is not None and keeper.market.symbol == MAR_CCXT
    finally:
        journal.close()
        await rig.venue.close()


@pytest.mark.parametrize("point,nth", [("roll_journaled", 1), ("action_sent", 1), ("action_sent", 2), ("outcome_journaled", 3)])
async def test_a_kill_at_a_step_of_an_okx_roll_resumes_without_a_duplicate_leg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str, nth: int,
) -> None:
    okx = book()
    path = str(tmp_path / "journal.sqlite")
    rig, keeper, journal = await opened(monkeypatch, okx, path)
    try:
        await to(rig, ROLL_AT + 60, monkeypatch)
        await tick_until_killed(keeper, monkeypatch, point, nth)
        journal.close()
        await to(rig, rig.venue.clock.now() + 30, monkeypatch)
        journal = Journal(path, rig.venue.clock)  # a new daemon on the same journal and the same OKX account
        keeper = quarterly_keeper(rig, journal)
        await keeper.prepare()
        for _ in range(3):
            await keeper.tick()
            dec, mar, swap = shorts(okx)
            assert D(2) <= dec + mar <= D(2) + SLICE and swap == 0
            await to(rig, rig.venue.clock.now() + 10, monkeypatch)
        assert shorts(okx) == (0, D(2), 0), "the roll completed with exactly one leg of the short"
        done = [o for o in okx.orders.values() if okx.inst_ids.get(o.client_id) in (DEC, MAR)]
        opened_mar = sum(o.amount for o in done if (okx.inst_ids[o.client_id], o.side) == (MAR, "sell"))
        closed_dec = sum(o.amount for o in done if (okx.inst_ids[o.client_id], o.side) == (DEC, "buy"))
        assert (opened_mar, closed_dec) == (D(2), D(2)), "each coin opened once on March and bought back once on December"
        assert len(journal.events(kind="roll_completed")) == 1
    finally:
        journal.close()
        await rig.venue.close()


async def test_an_okx_next_future_not_live_makes_the_roll_fall_back_to_the_swap_with_a_critical_alert(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    okx = book(next_state="preopen")
    rig, keeper, journal = await opened(monkeypatch, okx)
    try:
        await to(rig, ROLL_AT + 60, monkeypatch)
        rig.forget()
        for _ in range(3):
            await keeper.tick()
            await to(rig, rig.venue.clock.now() + 10, monkeypatch)
        assert shorts(okx) == (0, 0, D(2)), "the short moved from December to the swap"
        assert keeper.alerts.active["roll_fallback"].severity.value == "critical"
        assert MAR not in {o["instId"] for o in orders_sent(rig)}, "no order sent to a contract OKX lists as preopen"
    finally:
        journal.close()
        await rig.venue.close()


@pytest.mark.parametrize(
    "state,code,said",
    [("preopen", "51021", "not listed for trading yet"), ("suspend", "51022", "suspended"), ("expired", "51027", "expired"),
     ("delivering", "51028", "being delivered")],
)
async def test_an_okx_order_on_a_future_that_is_not_live_is_a_refusal_naming_okxs_reason(
    monkeypatch: pytest.MonkeyPatch, state: str, code: str, said: str,
) -> None:
    okx = book()
    rig = make_rig("okx", okx)
    try:
        await rig.venue.load_market(DEC_CCXT)
        okx.set_state(DEC, state)  # turned after the listing was read: OKX itself refuses the order
        with pytest.raises(InvalidOrder, match=f"okx {code}: the contract is {said}; no order was placed"):
            await rig.venue.place_order(OrderRequest("hbNl1", DEC_CCXT, OrderSide.SELL, D("0.5"), PositionSide.SHORT))
        assert shorts(okx) == (0, 0, 0) and "hbNl1" not in okx.orders
    finally:
        await rig.venue.close()


async def test_an_okx_quarterly_short_s_isolated_margin_is_topped_up_on_its_own_future_when_the_price_rises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    okx = book()
    rig, keeper, journal = await opened(monkeypatch, okx)
    try:
        _, short = okx.dated[DEC]
        posted = short.margin
        okx.marks[DEC] = D("62000")  # December up 23 %: the short's isolated margin is mostly lost
        rig.forget()
        await to(rig, rig.venue.clock.now() + 10, monkeypatch)
        await keeper.tick()
        topups = [dict(r.params) for r in rig.requests() if (r.method, r.path) == ("POST", "/api/v5/account/position/margin-balance")]
        assert topups and all((t["instId"], t["posSide"], t["type"]) == (DEC, "short", "add") for t in topups), topups
        assert short.margin > posted and okx.short.margin == 0, "the margin went to December's short, not the swap's"
    finally:
        journal.close()
        await rig.venue.close()


async def test_okx_mark_prices_are_asked_with_the_inst_type_okxs_docs_require() -> None:
    rig = make_rig("okx", book())
    try:
        future = await rig.venue.fetch_mark_price(DEC_CCXT)
        swap = await rig.venue.fetch_mark_price("BTC/USDT:USDT")
    finally:
        await rig.venue.close()
    assert (future.price, swap.price) == (D("50500"), D("50000"))
    asked = [dict(r.query) for r in rig.requests() if r.path == "/api/v5/public/mark-price"]
    assert asked == [{"instId": DEC, "instType": "FUTURES"}, {"instId": "BTC-USDT-SWAP", "instType": "SWAP"}]


COIN_DEC, COIN_MAR = "BTC-USD-231229", "BTC-USD-240329"


async def test_an_okx_coin_margined_quarterly_short_rolls_its_100_usd_contracts_next_first_backed_by_its_own_coins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listed = [
        okx_instrument("BTC-USD-SWAP", "SWAP", "live", None),
        okx_instrument(COIN_DEC, "FUTURES", "live", DEC23), okx_instrument(COIN_MAR, "FUTURES", "live", MAR24),
    ]
    okx = OkxDeliveryBook(listed=listed)
    okx.coins = {"BTC": D("2"), "USDT": D("0")}
    okx.marks = {"BTC-USD-SWAP": D("50000"), COIN_DEC: D("50000"), COIN_MAR: D("50000")}
    rig = make_rig("okx", okx)
    await to(rig, rig.venue.clock.now(), monkeypatch)
    journal = Journal(":memory:", rig.venue.clock)
    hedge = hedge_config(
        symbol="BTC/USD:BTC", instrument=InstrumentKind.COINM_QUARTERLY, max_order=SLICE, leverage=2,
        margin_mode="isolated", margin_guard={"sources": ["futures_wallet", "spot_stablecoin"]},
    )
    keeper = Keeper("acct", hedge, rig.venue, rig.venue.clock, journal, EventLog(journal, NullLogger()))
    try:
        await keeper.prepare()
        await keeper.tick()
        held = okx.dated[COIN_DEC][1].size
        assert held >= D(99000) and keeper.status.to_json()["contract"] == "BTC/USD:BTC-231229", held  # 2 BTC of face, less fees
        rig.forget()
        await to(rig, ROLL_AT + 60, monkeypatch)
        for _ in range(4):
            await keeper.tick()
            await to(rig, rig.venue.clock.now() + 10, monkeypatch)
        assert (okx.dated[COIN_DEC][1].size, okx.dated[COIN_MAR][1].size) == (0, held)
        sent = orders_sent(rig)
        assert sent[0]["instId"] == COIN_MAR and sent[1]["instId"] == COIN_DEC, "the next contract first"
        assert all(o["posSide"] == "short" and "reduceOnly" not in o for o in sent)
        face = held
        for o in sent:
            contracts = D(o["sz"]) * 100
            face += contracts if o["side"] == "sell" else -contracts
            assert held <= face <= held + D(25000), "never below the short, never above it by more than a slice (0.5 BTC)"
        assert not [o for o in sent if o["instId"] == "BTC-USDT"], "no coin sold"
        assert keeper.market is not None and keeper.market.symbol == "BTC/USD:BTC-240329"
    finally:
        journal.close()
        await rig.venue.close()


async def test_an_okx_coin_margined_perpetual_short_opens_on_its_own_coins_and_is_topped_up_in_btc_on_a_rally(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    okx = OkxDeliveryBook(listed=[okx_instrument("BTC-USD-SWAP", "SWAP", "live", None)])
    okx.coins = {"BTC": D("2"), "USDT": D("0")}
    okx.marks = {"BTC-USD-SWAP": D("50000")}
    rig = make_rig("okx", okx)
    await to(rig, rig.venue.clock.now(), monkeypatch)
    journal = Journal(":memory:", rig.venue.clock)
    hedge = hedge_config(
        symbol="BTC/USD:BTC", instrument=InstrumentKind.COINM_PERP, max_order=D(5), leverage=2,
        margin_mode="isolated", margin_guard={"sources": ["futures_wallet", "spot_stablecoin"]},
    )
    keeper = Keeper("acct", hedge, rig.venue, rig.venue.clock, journal, EventLog(journal, NullLogger()))
    try:
        await keeper.prepare()
        await keeper.tick()
        short = okx.dated["BTC-USD-SWAP"][1]
        assert short.size >= D(99000) and short.margin > 0, short  # 2 BTC of face in contracts of 100 USD, at 2x
        posted = short.margin
        rig.forget()
        # A rally in steps the jump guard accepts, until the 2x short (liquidated near 100,000) is within the guard's
        # trigger of its liquidation.
        for price in ("56000", "62000", "68000", "74000", "80000", "86000"):
            okx.marks["BTC-USD-SWAP"] = D(price)
            await to(rig, rig.venue.clock.now() + 60, monkeypatch)
            await keeper.tick()
        topups = [dict(r.params) for r in rig.requests() if (r.method, r.path) == ("POST", "/api/v5/account/position/margin-balance")]
        assert topups and all((t["instId"], t["posSide"], t["type"]) == ("BTC-USD-SWAP", "short", "add") for t in topups), topups
        assert short.margin > posted, "the coins behind the short were topped up in BTC"
        assert not [o for o in orders_sent(rig) if o["instId"] == "BTC-USDT"], "no coin sold"
    finally:
        journal.close()
        await rig.venue.close()


def okx_settled(okx: OkxDeliveryBook, rate: Decimal, until: float) -> None:
    """Have BTC-USDT-SWAP settled at `rate` every 8 h over the 30 days up to `until`."""
    okx.settled[SWAP] = [(int((until - n * 8 * 3600) * 1000), rate) for n in range(90, 0, -1)]


async def test_a_live_cheapest_hedge_on_okx_chooses_by_the_swap_s_settled_funding_and_moves_at_the_roll_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    okx = book()
    okx.marks = {DEC: D("50300"), MAR: D("50800")}  # about 5 % a year over the swap's 50,000 on both futures
    rig = make_rig("okx", okx)
    await to(rig, rig.venue.clock.now(), monkeypatch)
    okx_settled(okx, D("-0.0001"), rig.venue.clock.now())  # a short pays 10.95 % a year on the swap
    journal = Journal(":memory:", rig.venue.clock)
    hedge = hedge_config(instrument=InstrumentKind.CHEAPEST, max_order=SLICE, margin_mode="isolated", leverage=3)
    keeper = Keeper("acct", hedge, rig.venue, rig.venue.clock, journal, EventLog(journal, NullLogger()))
    try:
        await keeper.prepare()
        await keeper.tick()
        assert shorts(okx) == (D(2), 0, 0), "opened on December: its basis beats paying funding"
        [opening] = [e.detail for e in journal.events(kind="instrument_chosen")]
        carries = opening["carries"]
        assert isinstance(carries, dict) and D(carries["BTC/USDT:USDT"]) == D("-0.0001") * 3 * 365, carries
        asked = [dict(r.query) for r in rig.requests() if r.path == "/api/v5/public/funding-rate-history"]
        assert asked and asked[0]["instId"] == SWAP and "before" in asked[0]
        await to(rig, ROLL_AT + 60, monkeypatch)
        okx_settled(okx, D("0.0003"), rig.venue.clock.now())  # funding has turned: 32.85 % a year to a short
        rig.forget()
        for _ in range(3):
            await keeper.tick()
            await to(rig, rig.venue.clock.now() + 10, monkeypatch)
        assert shorts(okx) == (0, 0, D(2)), "moved from December to the swap"
        sent = orders_sent(rig)
        assert [(o["instId"], o["side"], o["posSide"]) for o in sent] == [(SWAP, "sell", "short"), (DEC, "buy", "short")] * 4
        window = [e.detail for e in journal.events(kind="instrument_chosen")][-1]
        assert (window["contract"], window["when"]) == ("BTC/USDT:USDT", "roll window")
        assert "roll_fallback" not in keeper.alerts.active
    finally:
        journal.close()
        await rig.venue.close()

"""OKX: the exact requests unmodified ccxt builds for every port call, and the answers read back.

The venue runs its real ccxt client; only the HTTP session is replaced by a
recorder answering in OKX v5's documented shapes (tests/exchange/books.py).
Amounts cross the wire in contracts of 0.01 BTC.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from hedgebot.domain.model import MarginMode, OrderSide, PositionMode, PositionSide, Wallet
from hedgebot.exchange.port import DuplicateClientId, InvalidOrder, ModeError, OrderRequest, OrderStatus
from tests.exchange.books import LegBook, OkxBook
from tests.exchange.dialect_rig import SPOT, SYMBOL, Rig, make_rig

D = Decimal
BATCH = "/api/v5/trade/batch-orders"


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    made = make_rig("okx")
    await made.venue.set_margin_mode(SYMBOL, MarginMode.ISOLATED)
    await made.venue.load_market(SYMBOL)
    made.forget()
    yield made
    await made.venue.close()


def short(client_id: str, side: OrderSide, amount: str) -> OrderRequest:
    return OrderRequest(client_id, SYMBOL, side, D(amount), PositionSide.SHORT, reduce_only=side is OrderSide.BUY)


async def test_market_rules_are_in_base_units_and_tiers_are_converted_from_contracts_at_the_mark() -> None:
    made = make_rig("okx")
    await made.venue.set_margin_mode(SYMBOL, MarginMode.ISOLATED)
    market = await made.venue.load_market(SYMBOL)
    assert made.last("GET", "/api/v5/public/position-tiers") == {"instType": "SWAP", "tdMode": "isolated", "instFamily": "BTC-USDT"}
    assert not made.session.sent("GET", "/api/v5/asset/currencies")
    # lotSz and minSz are 0.01 contracts of ctVal 0.01 BTC
    assert (market.contract_size, market.amount_step, market.min_amount) == (D("0.01"), D("0.0001"), D("0.0001"))
    # maxSz 2500 contracts x 0.01 BTC x 50,000 USDT = 1,250,000 USDT of notional
    assert [(b.notional_floor, b.notional_cap, b.maint_margin_rate) for b in market.brackets] == [
        (D(0), D(1_250_000), D("0.004")),
        (D(1_250_000), D(2_500_000), D("0.005")),
        (D(2_500_000), D(5_000_000), D("0.0065")),
    ]
    assert [b.maint_amount for b in market.brackets] == [D(0), D(1250), D(5000)]
    await made.venue.close()


async def test_opening_the_short_sends_contracts_with_pos_side_short_td_mode_and_cl_ord_id(rig: Rig) -> None:
    result = await rig.venue.place_order(short("hbOpen1", OrderSide.SELL, "0.123"))
    assert rig.last("POST", BATCH) == {"instId": "BTC-USDT-SWAP", "side": "sell", "ordType": "market", "sz": "12.3", "posSide": "short", "tdMode": "isolated", "clOrdId": "hbOpen1"}
    # filled contracts come back as base units, exactly
    assert (result.client_id, result.amount, result.filled, result.position_side, result.status) == ("hbOpen1", D("0.123"), D("0.123"), PositionSide.SHORT, OrderStatus.FILLED)
    assert rig.book.short.size == D("0.123")


async def test_an_amount_between_lots_is_rounded_down_to_whole_lots(rig: Rig) -> None:
    await rig.venue.place_order(short("hbRound1", OrderSide.SELL, "0.12345"))
    assert rig.last("POST", BATCH)["sz"] == "12.34"  # never more than asked


async def test_reducing_the_short_buys_on_pos_side_short_without_reduce_only(rig: Rig) -> None:
    rig.book.short = LegBook(D("0.2"), D(50000), D("3333.33"))
    await rig.venue.place_order(short("hbClose1", OrderSide.BUY, "0.05"))
    sent = rig.last("POST", BATCH)
    assert (sent["side"], sent["posSide"], sent["tdMode"], sent["sz"]) == ("buy", "short", "isolated", "5")
    assert "reduceOnly" not in sent  # OKX applies reduceOnly only in net mode
    assert rig.book.short.size == D("0.15")


async def test_the_long_leg_is_pos_side_long(rig: Rig) -> None:
    await rig.venue.place_order(OrderRequest("hbLong1", SYMBOL, OrderSide.BUY, D("0.01"), PositionSide.LONG))
    assert (rig.last("POST", BATCH)["side"], rig.last("POST", BATCH)["posSide"]) == ("buy", "long")
    await rig.venue.place_order(OrderRequest("hbLong2", SYMBOL, OrderSide.SELL, D("0.01"), PositionSide.LONG, reduce_only=True))
    assert (rig.last("POST", BATCH)["side"], rig.last("POST", BATCH)["posSide"]) == ("sell", "long")


async def test_a_spot_sale_is_a_cash_market_sell_in_base_units(rig: Rig) -> None:
    result = await rig.venue.place_order(OrderRequest("hbSpot1", SPOT, OrderSide.SELL, D("0.01"), None))
    sent = rig.last("POST", BATCH)
    assert (sent["instId"], sent["tdMode"], sent["tgtCcy"], sent["sz"], sent["clOrdId"]) == ("BTC-USDT", "cash", "base_ccy", "0.01", "hbSpot1")
    assert "posSide" not in sent and result.filled == D("0.01")


async def test_the_margin_mode_in_use_is_sent_on_every_order(rig: Rig) -> None:
    await rig.venue.set_margin_mode(SYMBOL, MarginMode.CROSS)
    await rig.venue.place_order(short("hbCross1", OrderSide.SELL, "0.01"))
    assert rig.last("POST", BATCH)["tdMode"] == "cross"


async def test_an_order_is_found_by_cl_ord_id(rig: Rig) -> None:
    await rig.venue.place_order(short("hbFind1", OrderSide.SELL, "0.01"))
    rig.forget()
    found = await rig.venue.fetch_order(SYMBOL, "hbFind1")
    assert rig.last("GET", "/api/v5/trade/order") == {"instId": "BTC-USDT-SWAP", "clOrdId": "hbFind1"}
    assert found is not None and (found.filled, found.position_side) == (D("0.01"), PositionSide.SHORT)


async def test_an_order_okx_never_saw_is_reported_as_never_seen(rig: Rig) -> None:
    assert await rig.venue.fetch_order(SYMBOL, "hbNever1") is None  # 51603


async def test_a_duplicate_cl_ord_id_is_the_ports_duplicate(rig: Rig) -> None:
    await rig.venue.place_order(short("hbDup1", OrderSide.SELL, "0.01"))
    with pytest.raises(DuplicateClientId, match="51016"):
        await rig.venue.place_order(short("hbDup1", OrderSide.SELL, "0.01"))


async def test_an_order_on_a_net_mode_account_is_a_mode_error_naming_the_setting(rig: Rig) -> None:
    rig.book.hedge_mode = False
    with pytest.raises(ModeError, match="51000.*long/short mode"):
        await rig.venue.place_order(short("hbMode1", OrderSide.SELL, "0.01"))


async def test_position_mode_is_read_from_account_config_and_set_to_long_short_mode(rig: Rig) -> None:
    rig.book.hedge_mode = False
    assert await rig.venue.fetch_position_mode() is PositionMode.ONE_WAY
    await rig.venue.set_position_mode(PositionMode.HEDGE)
    assert rig.last("POST", "/api/v5/account/set-position-mode") == {"posMode": "long_short_mode"}
    assert await rig.venue.fetch_position_mode() is PositionMode.HEDGE
    await rig.venue.set_position_mode(PositionMode.HEDGE)  # OKX answers 0 when it is already so


async def test_hedge_mode_with_an_open_position_is_refused(rig: Rig) -> None:
    rig.book.hedge_mode = False
    rig.book.short = LegBook(D("0.1"), D(50000), D(0))
    with pytest.raises(ModeError, match="59000"):
        await rig.venue.set_position_mode(PositionMode.HEDGE)


async def test_margin_mode_is_read_from_the_open_legs(rig: Rig) -> None:
    rig.book.isolated = False
    rig.book.short = LegBook(D("0.1"), D(50000), D(0))
    assert await rig.venue.fetch_margin_mode(SYMBOL) is MarginMode.CROSS
    with pytest.raises(ModeError, match="cross"):
        await rig.venue.set_margin_mode(SYMBOL, MarginMode.ISOLATED)


async def test_isolated_leverage_is_set_on_each_leg_and_read_for_the_short(rig: Rig) -> None:
    await rig.venue.set_leverage(SYMBOL, 4)
    sent = [r.params for r in rig.session.sent("POST", "/api/v5/account/set-leverage")]
    assert sent == [
        {"instId": "BTC-USDT-SWAP", "lever": 4, "mgnMode": "isolated", "posSide": "long"},
        {"instId": "BTC-USDT-SWAP", "lever": 4, "mgnMode": "isolated", "posSide": "short"},
    ]
    assert await rig.venue.fetch_leverage(SYMBOL) == 4
    assert rig.last("GET", "/api/v5/account/leverage-info") == {"instId": "BTC-USDT-SWAP", "mgnMode": "isolated"}


async def test_cross_leverage_is_one_call_without_pos_side(rig: Rig) -> None:
    await rig.venue.set_margin_mode(SYMBOL, MarginMode.CROSS)
    rig.forget()
    await rig.venue.set_leverage(SYMBOL, 2)
    assert [r.params for r in rig.session.sent("POST", "/api/v5/account/set-leverage")] == [{"instId": "BTC-USDT-SWAP", "lever": 2, "mgnMode": "cross"}]


async def test_margin_is_added_to_and_removed_from_the_short_leg(rig: Rig) -> None:
    rig.book.short = LegBook(D("0.1"), D(50000), D(1000))
    movement = await rig.venue.adjust_margin(SYMBOL, PositionSide.SHORT, D("12.345"))
    assert rig.last("POST", "/api/v5/account/position/margin-balance") == {"instId": "BTC-USDT-SWAP", "posSide": "short", "type": "add", "amt": "12.35"}
    assert movement.amount == D("12.35") and rig.book.short.margin == D("1012.35")
    await rig.venue.adjust_margin(SYMBOL, PositionSide.SHORT, D("-2.009"))
    assert rig.last("POST", "/api/v5/account/position/margin-balance") == {"instId": "BTC-USDT-SWAP", "posSide": "short", "type": "reduce", "amt": "2.00"}


async def test_both_legs_are_read_from_contracts_exactly(rig: Rig) -> None:
    rig.book.short = LegBook(D("0.1234"), D("49876.5"), D("2045.1234"))
    rig.book.long = LegBook(D("0.0001"), D("50010.1"), D("1.5"))
    legs = await rig.venue.fetch_legs(SYMBOL)
    assert rig.last("GET", "/api/v5/account/positions") == {"instId": "BTC-USDT-SWAP"}
    assert (legs.short.size, legs.short.entry_price, legs.short.margin) == (D("0.1234"), D("49876.5"), D("2045.1234"))
    assert (legs.long.size, legs.long.entry_price) == (D("0.0001"), D("50010.1"))


async def test_the_trading_account_is_counted_once(rig: Rig) -> None:
    assert await rig.venue.fetch_spot_balances() == {"BTC": D(2)}
    futures = await rig.venue.fetch_futures_balance("USDT")
    assert (futures.wallet, futures.free) == (D(10000), D(10000))


async def test_a_transfer_is_refused_without_a_request(rig: Rig) -> None:
    with pytest.raises(InvalidOrder, match="unified"):
        await rig.venue.transfer("USDT", D(100), Wallet.SPOT, Wallet.FUTURES)
    assert rig.requests() == []


async def test_the_mark_price_carries_okxs_own_timestamp(rig: Rig) -> None:
    quote = await rig.venue.fetch_mark_price(SYMBOL)
    # instType is Required on v5 Get mark price (ccxt sends instId alone): the dialect names it.
    assert rig.last("GET", "/api/v5/public/mark-price") == {"instId": "BTC-USDT-SWAP", "instType": "SWAP"}
    assert (quote.price, quote.timestamp) == (D(50000), 1_700_000_000.0)


async def test_funding_rate_and_the_accounts_funding_bills(rig: Rig) -> None:
    quote = await rig.venue.fetch_funding_rate(SYMBOL)
    assert quote.rate == D("0.0001")
    payments = await rig.venue.fetch_funding_history(SYMBOL, 1_699_900_000.0)
    assert rig.last("GET", "/api/v5/account/bills-archive")["type"] == "8"
    assert [(p.amount, p.timestamp) for p in payments] == [(D("-1.25"), 1_699_971_200.0)]
    assert await rig.venue.fetch_funding_history(SYMBOL, 1_699_980_000.0) == []


async def test_key_permissions_and_account_level_are_read_from_account_config(rig: Rig) -> None:
    facts = await rig.venue.fetch_account_facts()
    assert (facts.can_withdraw, facts.ip_restricted, facts.portfolio_margin) == (False, True, False)
    portfolio = make_rig("okx", OkxBook(account_level="4", can_withdraw=True, ips=()))
    facts = await portfolio.venue.fetch_account_facts()
    assert (facts.can_withdraw, facts.ip_restricted, facts.portfolio_margin) == (True, False, True)
    await portfolio.venue.close()
    spot_only = make_rig("okx", OkxBook(account_level="1"))
    with pytest.raises(ModeError, match="Spot mode"):
        await spot_only.venue.fetch_account_facts()
    await spot_only.venue.close()


async def test_an_order_okx_answers_timed_out_is_an_unknown_outcome_never_a_refusal(rig: Rig) -> None:
    from hedgebot.exchange.port import PermanentError, TransientError

    # 51149: the order request timed out, its outcome unknown (it may still be placed): sending it again as if
    # refused could open the short twice.
    rig.book.reject_order = ("51149", "Order timed out, please try again later.")
    with pytest.raises(TransientError, match="51149") as raised:
        await rig.venue.place_order(short("hbLate1", OrderSide.SELL, "0.01"))
    assert not isinstance(raised.value, PermanentError)

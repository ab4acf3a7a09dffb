"""Aster: the exact requests unmodified ccxt builds for every port call, and the answers read back.

The venue runs its real ccxt client (which signs every private request with
a wallet key, EIP-712); only the HTTP session is replaced by a recorder
answering in Aster's documented (Binance-compatible) shapes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from hedgebot.domain.model import MarginMode, OrderSide, PositionMode, PositionSide, Wallet
from hedgebot.exchange.port import DuplicateClientId, FundsQuery, ModeError, OrderRequest, OrderStatus
from tests.exchange.books import AsterBook, LegBook
from tests.exchange.dialect_rig import SPOT, SYMBOL, Rig, make_rig

D = Decimal
ORDER = "/fapi/v3/order"
SIGNING = {"nonce", "user", "signer", "signature"}


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    made = make_rig("aster")
    await made.venue.load_market(SYMBOL)
    made.forget()
    yield made
    await made.venue.close()


def unsigned(params: dict[str, object]) -> dict[str, object]:
    """Return the request's own parameters, without Aster's signing fields."""
    assert SIGNING <= params.keys(), f"an Aster private request must be signed: {params}"
    return {k: v for k, v in params.items() if k not in SIGNING}


def short(client_id: str, side: OrderSide, amount: str) -> OrderRequest:
    return OrderRequest(client_id, SYMBOL, side, D(amount), PositionSide.SHORT, reduce_only=side is OrderSide.BUY)


async def test_market_rules_and_brackets_come_from_exchange_info_and_leverage_bracket() -> None:
    made = make_rig("aster")
    market = await made.venue.load_market(SYMBOL)
    assert unsigned(made.last("GET", "/fapi/v3/leverageBracket")) == {"symbol": "BTCUSDT"}
    assert (market.amount_step, market.min_amount, market.min_notional) == (D("0.001"), D("0.001"), D(5))
    assert [(b.notional_floor, b.notional_cap, b.maint_margin_rate, b.maint_amount) for b in market.brackets] == [
        (D(0), D(50000), D("0.004"), D(0)),
        (D(50000), D(250000), D("0.005"), D(50)),
        (D(250000), D(3000000), D("0.01"), D(1300)),
    ]
    assert not made.session.sent("GET", "/fapi/v3/builder"), "ccxt's builder-fee approval must be off"
    await made.venue.close()


async def test_opening_the_short_sells_on_position_side_short_with_new_client_order_id(rig: Rig) -> None:
    result = await rig.venue.place_order(short("hbOpen1", OrderSide.SELL, "0.123"))
    assert unsigned(rig.last("POST", ORDER)) == {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.123", "positionSide": "SHORT", "newClientOrderId": "hbOpen1"}
    assert (result.client_id, result.filled, result.position_side, result.status) == ("hbOpen1", D("0.123"), PositionSide.SHORT, OrderStatus.FILLED)


async def test_no_order_pays_ccxts_builder_fee(rig: Rig) -> None:
    await rig.venue.place_order(short("hbFee1", OrderSide.SELL, "0.01"))
    sent = rig.last("POST", ORDER)
    assert "builder" not in sent and "feeRate" not in sent


async def test_reducing_the_short_buys_on_position_side_short_never_reduce_only(rig: Rig) -> None:
    rig.book.short = LegBook(D("0.2"), D(50000), D("3333.33"))
    await rig.venue.place_order(short("hbClose1", OrderSide.BUY, "0.05"))
    sent = unsigned(rig.last("POST", ORDER))
    assert (sent["side"], sent["positionSide"], sent["quantity"]) == ("BUY", "SHORT", "0.05")
    assert "reduceOnly" not in sent
    assert rig.book.short.size == D("0.15")


async def test_the_long_leg_is_position_side_long(rig: Rig) -> None:
    await rig.venue.place_order(OrderRequest("hbLong1", SYMBOL, OrderSide.BUY, D("0.01"), PositionSide.LONG))
    sent = rig.last("POST", ORDER)
    assert (sent["side"], sent["positionSide"]) == ("BUY", "LONG")


async def test_an_amount_between_steps_is_rounded_down(rig: Rig) -> None:
    await rig.venue.place_order(short("hbRound1", OrderSide.SELL, "0.0129"))
    assert rig.last("POST", ORDER)["quantity"] == "0.012"


async def test_a_spot_sale_goes_to_the_spot_order_endpoint(rig: Rig) -> None:
    result = await rig.venue.place_order(OrderRequest("hbSpot1", SPOT, OrderSide.SELL, D("0.01"), None))
    sent = unsigned(rig.last("POST", "/api/v3/order"))
    assert (sent["side"], sent["type"], sent["quantity"], sent["newClientOrderId"]) == ("SELL", "MARKET", "0.01", "hbSpot1")
    assert "positionSide" not in sent and result.filled == D("0.01")


async def test_an_order_is_found_by_its_client_id(rig: Rig) -> None:
    await rig.venue.place_order(short("hbFind1", OrderSide.SELL, "0.01"))
    found = await rig.venue.fetch_order(SYMBOL, "hbFind1")
    assert unsigned(rig.last("GET", ORDER)) == {"symbol": "BTCUSDT", "origClientOrderId": "hbFind1"}
    assert found is not None and found.filled == D("0.01")


async def test_an_order_aster_never_saw_is_reported_as_never_seen(rig: Rig) -> None:
    assert await rig.venue.fetch_order(SYMBOL, "hbNever1") is None  # -2013


async def test_a_duplicate_client_id_is_the_ports_duplicate(rig: Rig) -> None:
    await rig.venue.place_order(short("hbDup1", OrderSide.SELL, "0.01"))
    with pytest.raises(DuplicateClientId, match="-4116"):
        await rig.venue.place_order(short("hbDup1", OrderSide.SELL, "0.01"))


async def test_an_order_on_a_one_way_account_is_a_mode_error(rig: Rig) -> None:
    rig.book.hedge_mode = False
    with pytest.raises(ModeError, match="-4061"):
        await rig.venue.place_order(short("hbMode1", OrderSide.SELL, "0.01"))


async def test_position_mode_is_read_and_set_as_dual_side_position(rig: Rig) -> None:
    rig.book.hedge_mode = False
    assert await rig.venue.fetch_position_mode() is PositionMode.ONE_WAY
    await rig.venue.set_position_mode(PositionMode.HEDGE)
    assert unsigned(rig.last("POST", "/fapi/v3/positionSide/dual")) == {"dualSidePosition": "true"}
    await rig.venue.set_position_mode(PositionMode.HEDGE)  # -4059 "no need to change"
    assert await rig.venue.fetch_position_mode() is PositionMode.HEDGE


async def test_margin_type_and_leverage_are_set_per_symbol_and_read_from_position_risk(rig: Rig) -> None:
    rig.book.isolated = False
    assert await rig.venue.fetch_margin_mode(SYMBOL) is MarginMode.CROSS
    await rig.venue.set_margin_mode(SYMBOL, MarginMode.ISOLATED)
    assert unsigned(rig.last("POST", "/fapi/v3/marginType")) == {"symbol": "BTCUSDT", "marginType": "ISOLATED"}
    await rig.venue.set_margin_mode(SYMBOL, MarginMode.ISOLATED)  # -4046 "no need to change"
    await rig.venue.set_leverage(SYMBOL, 4)
    assert unsigned(rig.last("POST", "/fapi/v3/leverage")) == {"symbol": "BTCUSDT", "leverage": "4"}
    assert await rig.venue.fetch_leverage(SYMBOL) == 4
    assert unsigned(rig.last("GET", "/fapi/v3/positionRisk")) == {"symbol": "BTCUSDT"}


async def test_margin_is_added_to_the_short_leg_and_found_in_the_history(rig: Rig) -> None:
    rig.book.short = LegBook(D("0.1"), D(50000), D(1000))
    movement = await rig.venue.adjust_margin(SYMBOL, PositionSide.SHORT, D("12.3456"))
    assert unsigned(rig.last("POST", "/fapi/v3/positionMargin")) == {"symbol": "BTCUSDT", "type": "1", "amount": "12.346", "positionSide": "SHORT"}
    assert movement.amount == D("12.346") and movement.venue_id
    query = FundsQuery("margin", "USDT", D("12.346"), 1_699_999_000.0, 1_700_001_000.0, symbol=SYMBOL, side=PositionSide.SHORT)
    assert await rig.venue.find_funds_movement(query) == movement


async def test_margin_is_removed_with_type_2(rig: Rig) -> None:
    rig.book.short = LegBook(D("0.1"), D(50000), D(1000))
    await rig.venue.adjust_margin(SYMBOL, PositionSide.SHORT, D("-5"))
    assert unsigned(rig.last("POST", "/fapi/v3/positionMargin"))["type"] == "2"
    assert rig.book.short.margin == D(995)


async def test_both_legs_are_read_exactly_from_position_risk(rig: Rig) -> None:
    rig.book.short = LegBook(D("0.123"), D("49876.5"), D("2045.1234"))
    legs = await rig.venue.fetch_legs(SYMBOL)
    assert (legs.short.size, legs.short.entry_price, legs.short.margin) == (D("0.123"), D("49876.5"), D("2045.1234"))
    assert legs.long.size == 0


async def test_spot_and_futures_wallets_are_separate_and_a_transfer_moves_between_them(rig: Rig) -> None:
    assert await rig.venue.fetch_spot_balances() == {"BTC": D(2), "USDT": D(10000)}
    assert (await rig.venue.fetch_futures_balance("USDT")).wallet == D(5000)
    movement = await rig.venue.transfer("USDT", D(100), Wallet.SPOT, Wallet.FUTURES)
    sent = unsigned(rig.last("POST", "/api/v3/asset/wallet/transfer"))
    assert (sent["asset"], sent["amount"], sent["kindType"]) == ("USDT", "100", "SPOT_FUTURE")
    assert sent["clientTranId"]
    assert movement.amount == D(100) and rig.book.futures_usdt == D(5100)
    await rig.venue.transfer("USDT", D(50), Wallet.FUTURES, Wallet.SPOT)
    assert unsigned(rig.last("POST", "/api/v3/asset/wallet/transfer"))["kindType"] == "FUTURE_SPOT"


async def test_the_mark_price_carries_asters_own_timestamp(rig: Rig) -> None:
    quote = await rig.venue.fetch_mark_price(SYMBOL)
    assert rig.last("GET", "/fapi/v3/premiumIndex") == {"symbol": "BTCUSDT"}
    assert (quote.price, quote.timestamp) == (D(50000), 1_700_000_000.0)


async def test_funding_rate_and_the_accounts_funding_income(rig: Rig) -> None:
    assert (await rig.venue.fetch_funding_rate(SYMBOL)).rate == D("0.0001")
    payments = await rig.venue.fetch_funding_history(SYMBOL, 1_699_900_000.0)
    assert unsigned(rig.last("GET", "/fapi/v3/income"))["incomeType"] == "FUNDING_FEE"
    assert [(p.amount, p.timestamp) for p in payments] == [(D("-1.25"), 1_699_971_200.0)]


async def test_the_wallet_key_counts_as_a_key_that_can_withdraw(rig: Rig) -> None:
    facts = await rig.venue.fetch_account_facts()
    assert facts.can_withdraw and not facts.multi_assets_margin
    multi = make_rig("aster", AsterBook(multi_assets=True))
    assert (await multi.venue.fetch_account_facts()).multi_assets_margin
    await multi.venue.close()

"""Bybit: the exact requests unmodified ccxt builds for every port call, and the answers read back.

The venue runs its real ccxt client; only the HTTP session is replaced by a
recorder answering in Bybit v5's documented shapes (tests/exchange/books.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from hedgebot.domain.model import MarginMode, OrderSide, PositionMode, PositionSide, Wallet
from hedgebot.exchange.port import DuplicateClientId, FundsQuery, InvalidOrder, ModeError, OrderRequest, OrderStatus
from tests.exchange.books import BybitBook, LegBook
from tests.exchange.dialect_rig import SPOT, SYMBOL, Rig, make_rig

D = Decimal


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    made = make_rig("bybit")
    await made.venue.load_market(SYMBOL)
    made.forget()
    yield made
    await made.venue.close()


def short(client_id: str, side: OrderSide, amount: str) -> OrderRequest:
    return OrderRequest(client_id, SYMBOL, side, D(amount), PositionSide.SHORT, reduce_only=side is OrderSide.BUY)


async def test_market_rules_are_read_from_linear_instruments_and_risk_limits() -> None:
    made = make_rig("bybit")
    market = await made.venue.load_market(SYMBOL)
    assert made.last("GET", "/v5/market/instruments-info")["category"] in {"linear", "spot"}
    assert made.last("GET", "/v5/market/risk-limit") == {"category": "linear", "symbol": "BTCUSDT"}
    assert not made.session.sent("GET", "/v5/asset/coin/query-info"), "currencies need a Wallet permission hedgebot does not ask for"
    assert (market.amount_step, market.min_amount, market.min_notional, market.contract_size) == (D("0.001"), D("0.001"), D("5"), D(1))
    # riskLimitValue caps each tier; the maintenance amount keeps maintenance margin continuous (Bybit's mmDeduction)
    assert [(b.notional_floor, b.notional_cap, b.maint_margin_rate, b.maint_amount) for b in market.brackets] == [
        (D(0), D(2_000_000), D("0.005"), D(0)),
        (D(2_000_000), D(3_600_000), D("0.0054"), D(800)),
        (D(3_600_000), D(5_200_000), D("0.0058"), D(2240)),
    ]
    await made.venue.close()


async def test_opening_the_short_sells_on_position_idx_2_with_the_client_id_as_order_link_id(rig: Rig) -> None:
    result = await rig.venue.place_order(short("hbOpen1", OrderSide.SELL, "0.123"))
    sent = rig.last("POST", "/v5/order/create")
    assert sent == {"category": "linear", "symbol": "BTCUSDT", "side": "Sell", "orderType": "Market", "qty": "0.123", "positionIdx": 2, "orderLinkId": "hbOpen1"}
    assert (result.client_id, result.filled, result.average_price, result.status) == ("hbOpen1", D("0.123"), D(50000), OrderStatus.FILLED)
    assert result.position_side is PositionSide.SHORT
    assert result.fee == D("3.3825")  # cumExecFee, not an estimate
    assert rig.book.short.size == D("0.123")


async def test_reducing_the_short_buys_on_position_idx_2_reduce_only(rig: Rig) -> None:
    rig.book.short = LegBook(D("0.2"), D(50000), D("3333.33"))
    result = await rig.venue.place_order(short("hbClose1", OrderSide.BUY, "0.05"))
    sent = rig.last("POST", "/v5/order/create")
    assert (sent["side"], sent["positionIdx"], sent["reduceOnly"], sent["qty"], sent["orderLinkId"]) == ("Buy", 2, True, "0.05", "hbClose1")
    assert result.filled == D("0.05") and rig.book.short.size == D("0.15")


async def test_the_long_leg_is_position_idx_1_and_closes_with_a_reduce_only_sell(rig: Rig) -> None:
    await rig.venue.place_order(OrderRequest("hbLong1", SYMBOL, OrderSide.BUY, D("0.01"), PositionSide.LONG))
    opened = rig.last("POST", "/v5/order/create")
    await rig.venue.place_order(OrderRequest("hbLong2", SYMBOL, OrderSide.SELL, D("0.01"), PositionSide.LONG, reduce_only=True))
    closed = rig.last("POST", "/v5/order/create")
    assert (opened["side"], opened["positionIdx"], "reduceOnly" in opened) == ("Buy", 1, False)
    assert (closed["side"], closed["positionIdx"], closed["reduceOnly"]) == ("Sell", 1, True)


async def test_a_spot_sale_is_a_spot_market_sell_in_base_units(rig: Rig) -> None:
    result = await rig.venue.place_order(OrderRequest("hbSpot1", SPOT, OrderSide.SELL, D("0.01"), None))
    sent = rig.last("POST", "/v5/order/create")
    assert (sent["category"], sent["side"], sent["qty"], sent["marketUnit"], sent["orderLinkId"]) == ("spot", "Sell", "0.01", "baseCoin", "hbSpot1")
    assert "positionIdx" not in sent and result.filled == D("0.01")


async def test_an_order_is_found_by_order_link_id_in_open_then_all_closed_orders(rig: Rig) -> None:
    await rig.venue.place_order(short("hbFind1", OrderSide.SELL, "0.01"))
    rig.forget()
    found = await rig.venue.fetch_order(SYMBOL, "hbFind1")
    assert rig.last("GET", "/v5/order/realtime") == {"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "hbFind1"}
    # no orderStatus filter: a partly filled, then cancelled market order must be found too
    assert rig.last("GET", "/v5/order/history") == {"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "hbFind1"}
    assert found is not None and (found.client_id, found.filled, found.position_side) == ("hbFind1", D("0.01"), PositionSide.SHORT)


async def test_an_order_bybit_never_saw_is_reported_as_never_seen(rig: Rig) -> None:
    assert await rig.venue.fetch_order(SYMBOL, "hbNever1") is None


async def test_a_duplicate_order_link_id_is_the_ports_duplicate(rig: Rig) -> None:
    await rig.venue.place_order(short("hbDup1", OrderSide.SELL, "0.01"))
    with pytest.raises(DuplicateClientId, match="110072"):
        await rig.venue.place_order(short("hbDup1", OrderSide.SELL, "0.01"))


async def test_an_order_on_a_one_way_account_is_a_mode_error_naming_the_setting(rig: Rig) -> None:
    rig.book.hedge_mode = False
    with pytest.raises(ModeError, match="10001.*hedge mode"):
        await rig.venue.place_order(short("hbMode1", OrderSide.SELL, "0.01"))


async def test_position_mode_is_read_from_the_legs_position_idx(rig: Rig) -> None:
    assert await rig.venue.fetch_position_mode() is PositionMode.HEDGE
    assert rig.last("GET", "/v5/position/list") == {"category": "linear", "symbol": "BTCUSDT"}
    rig.book.hedge_mode = False
    assert await rig.venue.fetch_position_mode() is PositionMode.ONE_WAY


async def test_hedge_mode_is_switched_on_for_every_usdt_perpetual_and_already_set_is_fine(rig: Rig) -> None:
    rig.book.hedge_mode = False
    await rig.venue.set_position_mode(PositionMode.HEDGE)
    assert rig.last("POST", "/v5/position/switch-mode") == {"category": "linear", "coin": "USDT", "mode": 3}
    await rig.venue.set_position_mode(PositionMode.HEDGE)  # 110025 "not modified"
    assert rig.book.hedge_mode


async def test_hedge_mode_with_an_open_position_is_refused(rig: Rig) -> None:
    rig.book.hedge_mode = False
    rig.book.short = LegBook(D("0.1"), D(50000), D(0))
    with pytest.raises(ModeError, match="110024"):
        await rig.venue.set_position_mode(PositionMode.HEDGE)


async def test_margin_mode_is_the_unified_accounts_and_set_account_wide(rig: Rig) -> None:
    rig.book.account_margin_mode = "REGULAR_MARGIN"
    assert await rig.venue.fetch_margin_mode(SYMBOL) is MarginMode.CROSS
    await rig.venue.set_margin_mode(SYMBOL, MarginMode.ISOLATED)
    assert rig.last("POST", "/v5/account/set-margin-mode") == {"setMarginMode": "ISOLATED_MARGIN"}
    assert await rig.venue.fetch_margin_mode(SYMBOL) is MarginMode.ISOLATED


async def test_a_portfolio_margin_account_is_refused(rig: Rig) -> None:
    rig.book.account_margin_mode = "PORTFOLIO_MARGIN"
    with pytest.raises(ModeError, match="portfolio margin"):
        await rig.venue.fetch_margin_mode(SYMBOL)
    assert (await rig.venue.fetch_account_facts()).portfolio_margin


async def test_leverage_is_read_from_the_position_and_set_for_both_sides(rig: Rig) -> None:
    assert await rig.venue.fetch_leverage(SYMBOL) == 3
    await rig.venue.set_leverage(SYMBOL, 5)
    assert rig.last("POST", "/v5/position/set-leverage") == {"category": "linear", "symbol": "BTCUSDT", "buyLeverage": "5", "sellLeverage": "5"}
    await rig.venue.set_leverage(SYMBOL, 5)  # 110043 "not modified"
    assert rig.book.leverage == 5


async def test_margin_is_added_to_the_short_through_the_add_margin_endpoint(rig: Rig) -> None:
    rig.book.short = LegBook(D("0.1"), D(50000), D(1000))
    movement = await rig.venue.adjust_margin(SYMBOL, PositionSide.SHORT, D("12.345"))
    # rounded up to the cent when adding
    assert rig.last("POST", "/v5/position/add-margin") == {"category": "linear", "symbol": "BTCUSDT", "margin": "12.35", "positionIdx": 2}
    assert (movement.kind, movement.asset, movement.amount) == ("margin", "USDT", D("12.35"))
    assert rig.book.short.margin == D("1012.35")


async def test_margin_is_removed_with_a_negative_amount_rounded_down(rig: Rig) -> None:
    rig.book.short = LegBook(D("0.1"), D(50000), D(1000))
    await rig.venue.adjust_margin(SYMBOL, PositionSide.SHORT, D("-10.009"))
    assert rig.last("POST", "/v5/position/add-margin")["margin"] == "-10.00"
    assert rig.book.short.margin == D("990.00")


async def test_both_legs_are_read_exactly_from_the_position_list(rig: Rig) -> None:
    rig.book.short = LegBook(D("0.123"), D("49876.5"), D("2045.1234"))
    rig.book.long = LegBook(D("0.002"), D("50010.1"), D("33.34"))
    legs = await rig.venue.fetch_legs(SYMBOL)
    assert (legs.short.size, legs.short.entry_price, legs.short.margin) == (D("0.123"), D("49876.5"), D("2045.1234"))
    assert (legs.long.size, legs.long.entry_price, legs.long.margin) == (D("0.002"), D("50010.1"), D("33.34"))


async def test_the_unified_wallet_is_counted_once(rig: Rig) -> None:
    spot = await rig.venue.fetch_spot_balances()
    futures = await rig.venue.fetch_futures_balance("USDT")
    assert rig.last("GET", "/v5/account/wallet-balance") == {"accountType": "UNIFIED"}
    assert spot == {"BTC": D(2)}  # USDT is the futures balance, not a spot balance too
    assert futures.wallet == D(10000)


async def test_a_transfer_is_refused_on_a_unified_account_without_a_request(rig: Rig) -> None:
    with pytest.raises(InvalidOrder, match="unified"):
        await rig.venue.transfer("USDT", D(100), Wallet.SPOT, Wallet.FUTURES)
    assert rig.requests() == []


async def test_the_mark_price_carries_bybits_own_timestamp(rig: Rig) -> None:
    quote = await rig.venue.fetch_mark_price(SYMBOL)
    assert rig.last("GET", "/v5/market/tickers") == {"category": "linear", "symbol": "BTCUSDT"}
    assert (quote.price, quote.timestamp) == (D(50000), 1_700_000_000.0)


async def test_funding_rate_and_the_accounts_funding_executions(rig: Rig) -> None:
    quote = await rig.venue.fetch_funding_rate(SYMBOL)
    assert quote.rate == D("0.0001") and quote.next_funding_time == 1_700_003_600.0
    payments = await rig.venue.fetch_funding_history(SYMBOL, 1_699_900_000.0)
    assert rig.last("GET", "/v5/execution/list")["execType"] == "Funding"
    assert [(p.amount, p.timestamp) for p in payments] == [(D("-1.25"), 1_699_971_200.0)]  # execFee 1.25 paid


async def test_key_permissions_and_ip_restriction_are_read_from_query_api(rig: Rig) -> None:
    facts = await rig.venue.fetch_account_facts()
    assert rig.session.sent("GET", "/v5/user/query-api")
    assert (facts.can_withdraw, facts.ip_restricted, facts.portfolio_margin) == (False, True, False)
    withdrawing = make_rig("bybit", BybitBook(can_withdraw=True, ips=()))
    facts = await withdrawing.venue.fetch_account_facts()
    assert (facts.can_withdraw, facts.ip_restricted) == (True, False)
    await withdrawing.venue.close()


async def test_margin_history_is_not_searched_because_bybit_keeps_none(rig: Rig) -> None:
    query = FundsQuery("margin", "USDT", D(10), 1_699_999_000.0, 1_700_001_000.0, symbol=SYMBOL, side=PositionSide.SHORT)
    assert await rig.venue.find_funds_movement(query) is None
    assert rig.requests() == []

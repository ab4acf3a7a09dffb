"""Coin-margined contracts on Bybit (category inverse) and OKX (BTC-USD-SWAP): the requests sent and the answers read.

Bybit's inverse contracts count their quantity in USD (one contract per dollar), margin and PnL in the coin, and
have no hedge mode on a unified account (docs/exchanges.md, "Bybit"): a named leg is refused before anything is
sent, a one-way order goes out on positionIdx 0. OKX's coin-margined swaps are contracts of 100 USD (ctVal 100,
ctValCcy USD) settled in BTC, traded from the same account with the same posSide and tdMode as the USDT swaps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from hedgebot.domain.model import MarginMode, OrderSide, PositionMode, PositionSide
from hedgebot.exchange.port import ModeError, OrderRequest
from tests.exchange.books import BybitBook, LegBook, OkxBook, _bybit, _okx
from tests.exchange.ccxt_recorder import RecordedRequest
from tests.exchange.delivery_books import BYBIT_DELIVERY, NOW_MS, OKX_LISTED
from tests.exchange.dialect_rig import Rig, make_rig

D = Decimal
INVERSE = "BTC/USD:BTC"


# ---------------------------------------------------------------- Bybit inverse


def bybit_inverse_position(request: RecordedRequest) -> Any:
    """Answer /v5/position/list for BTCUSD: one one-way short of 30,000 USD entered at 50,000, 0.6 BTC of margin."""
    assert request.query == {"category": "inverse", "symbol": "BTCUSD"}
    return _bybit({"category": "inverse", "nextPageCursor": "", "list": [{
        "positionIdx": 0, "riskId": 1, "riskLimitValue": "150", "symbol": "BTCUSD", "side": "Sell", "size": "30000",
        "avgPrice": "50000", "positionValue": "0.6", "tradeMode": 1, "autoAddMargin": 0, "positionStatus": "Normal",
        "leverage": "1", "markPrice": "50000", "liqPrice": "", "bustPrice": "", "positionIM": "0.6", "positionMM": "0.003",
        "positionBalance": "0.6", "takeProfit": "0", "stopLoss": "0", "trailingStop": "0", "sessionAvgPrice": "",
        "unrealisedPnl": "0", "curRealisedPnl": "0", "cumRealisedPnl": "0", "adlRankIndicator": 2,
        "createdTime": str(NOW_MS - 86_400_000), "updatedTime": str(NOW_MS), "seq": 1, "isReduceOnly": False,
        "mmrSysUpdatedTime": "", "leverageSysUpdatedTime": "",
    }]})


def bybit_inverse_risk_limits(request: RecordedRequest) -> Any:
    """Answer /v5/market/risk-limit for BTCUSD: tiers capped in coins (riskLimitValue in BTC)."""
    assert request.query["category"] == "inverse"
    rows = [("150", "0.005", "0.01", "100"), ("300", "0.01", "0.015", "66.66")]
    return _bybit({"category": "inverse", "nextPageCursor": "", "list": [
        {"id": i + 1, "symbol": "BTCUSD", "riskLimitValue": cap, "maintenanceMargin": mmr, "initialMargin": im,
         "isLowestRisk": 1 if i == 0 else 0, "maxLeverage": lev, "mmDeduction": ""}
        for i, (cap, mmr, im, lev) in enumerate(rows)
    ]})


@pytest.fixture
async def bybit() -> AsyncIterator[Rig]:
    rig = make_rig("bybit", BybitBook(listed=list(BYBIT_DELIVERY), hedge_mode=False))
    rig.session.route("GET", "/v5/market/risk-limit", bybit_inverse_risk_limits)
    rig.session.route("GET", "/v5/market/tickers", lambda r: _bybit({"category": r.query["category"], "list": [{**rig.book._ticker(), "symbol": r.query["symbol"]}]}))
    await rig.venue.load_market(INVERSE)
    rig.forget()
    yield rig
    await rig.venue.close()


async def test_a_bybit_inverse_perpetual_is_read_as_inverse_in_usd_contracts_with_tiers_in_coins() -> None:
    rig = make_rig("bybit", BybitBook(listed=list(BYBIT_DELIVERY)))
    rig.session.route("GET", "/v5/market/risk-limit", bybit_inverse_risk_limits)
    try:
        market = await rig.venue.load_market(INVERSE)
    finally:
        await rig.venue.close()
    assert (market.inverse, market.margin_asset, market.contract_size, market.amount_step, market.min_amount) == (True, "BTC", D(1), D(1), D(1))
    assert market.margin_step == D("0.00000001") and market.expiry is None
    assert [(b.notional_floor, b.notional_cap, b.maint_margin_rate) for b in market.brackets] == [
        (D(0), D(150), D("0.005")), (D(150), D(300), D("0.01")),
    ]
    assert rig.last("GET", "/v5/market/risk-limit") == {"category": "inverse", "symbol": "BTCUSD"}


async def test_a_bybit_inverse_leg_is_face_value_in_usd_with_its_margin_and_the_wallet_in_coins(bybit: Rig) -> None:
    bybit.session.route("GET", "/v5/position/list", bybit_inverse_position)
    legs = await bybit.venue.fetch_legs(INVERSE)
    wallet = await bybit.venue.fetch_futures_balance("BTC")
    mark = await bybit.venue.fetch_mark_price(INVERSE)
    assert (legs.short.size, legs.short.entry_price, legs.short.margin, legs.long.size) == (D(30000), D(50000), D("0.6"), D(0))
    assert wallet.wallet == D(2)  # the unified wallet's BTC
    assert mark.price == D(50000)
    assert bybit.last("GET", "/v5/market/tickers") == {"category": "inverse", "symbol": "BTCUSD"}
    assert await bybit.venue.fetch_position_mode() is PositionMode.ONE_WAY  # inverse contracts have no hedge mode


async def test_a_hedge_mode_leg_on_a_bybit_inverse_contract_is_refused_before_anything_is_sent(bybit: Rig) -> None:
    with pytest.raises(ModeError, match="bybit has no hedge mode for BTC/USD:BTC.*only USDT perpetuals.*nothing was sent"):
        await bybit.venue.place_order(OrderRequest("hbInv1", INVERSE, OrderSide.SELL, D(100), PositionSide.SHORT))
    assert bybit.requests() == []


async def test_a_one_way_bybit_inverse_order_sells_usd_contracts_on_position_idx_0_and_closes_reduce_only(bybit: Rig) -> None:
    opened = await bybit.venue.place_order(OrderRequest("hbInv2", INVERSE, OrderSide.SELL, D(30000), None))
    sent = bybit.last("POST", "/v5/order/create")
    assert sent == {"category": "inverse", "symbol": "BTCUSD", "side": "Sell", "orderType": "Market", "qty": "30000", "positionIdx": 0, "orderLinkId": "hbInv2"}
    assert bybit.last("GET", "/v5/order/realtime") == {"category": "inverse", "symbol": "BTCUSD", "orderLinkId": "hbInv2"}
    assert (opened.filled, opened.client_id) == (D(30000), "hbInv2")
    await bybit.venue.place_order(OrderRequest("hbInv3", INVERSE, OrderSide.BUY, D(10000), None, reduce_only=True))
    closed = bybit.last("POST", "/v5/order/create")
    assert (closed["side"], closed["qty"], closed["positionIdx"], closed["reduceOnly"]) == ("Buy", "10000", 0, True)


async def test_bybit_inverse_margin_is_added_in_coins_on_position_idx_0_and_leverage_is_set_on_the_inverse_category(bybit: Rig) -> None:
    bybit.book.short = LegBook(D(30000), D(50000), D("0.6"))
    bybit.book.long = bybit.book.short  # the one-way book keeps its one position on either name
    bybit.session.route("GET", "/v5/position/list", bybit_inverse_position)
    await bybit.venue.adjust_margin(INVERSE, PositionSide.SHORT, D("0.001234567"))
    assert bybit.last("POST", "/v5/position/add-margin") == {"category": "inverse", "symbol": "BTCUSD", "margin": "0.00123457", "positionIdx": 0}
    await bybit.venue.set_leverage(INVERSE, 2)
    sent = bybit.last("POST", "/v5/position/set-leverage")
    assert (sent["category"], sent["symbol"], sent["buyLeverage"], sent["sellLeverage"]) == ("inverse", "BTCUSD", "2", "2")
    assert await bybit.venue.fetch_leverage(INVERSE) == 1


# ---------------------------------------------------------------- OKX coin-margined swaps


def okx_inverse_tiers(request: RecordedRequest) -> Any:
    """Answer /public/position-tiers for BTC-USD: bounds in contracts of 100 USD."""
    assert request.query["instFamily"] == "BTC-USD"
    rows = [("1", "0", "5000", "0.005", "0.01", "100"), ("2", "5001", "10000", "0.01", "0.02", "50")]
    return _okx([
        {"baseMaxLoan": "", "imr": imr, "instFamily": "BTC-USD", "instId": "", "maxLever": lev, "maxSz": hi, "minSz": lo,
         "mmr": mmr, "optMgnFactor": "0", "quoteMaxLoan": "", "tier": tier, "uly": "BTC-USD"}
        for tier, lo, hi, mmr, imr, lev in rows
    ])


def okx_inverse_positions(request: RecordedRequest) -> Any:
    """Answer /account/positions for BTC-USD-SWAP: an isolated short of 300 contracts (30,000 USD), 0.6 BTC of margin."""
    return _okx([{
        "adl": "1", "availPos": "300", "avgPx": "50000", "cTime": str(NOW_MS - 86_400_000), "ccy": "BTC", "imr": "",
        "instId": "BTC-USD-SWAP", "instType": "SWAP", "lever": "1", "liqPx": "", "markPx": "50000", "margin": "0.6",
        "mgnMode": "isolated", "mgnRatio": "", "mmr": "0.003", "notionalUsd": "30000", "pos": "300", "posCcy": "",
        "posId": "307173036051017799", "posSide": "short", "uTime": str(NOW_MS), "upl": "0", "uplRatio": "0",
    }])


@pytest.fixture
async def okx() -> AsyncIterator[Rig]:
    rig = make_rig("okx", OkxBook(listed=list(OKX_LISTED)))
    rig.session.route("GET", "/api/v5/public/position-tiers", okx_inverse_tiers)
    rig.session.route("GET", "/api/v5/public/mark-price", lambda r: _okx([{"instType": "SWAP", "instId": r.query["instId"], "markPx": "50000", "ts": str(NOW_MS)}]))
    await rig.venue.set_margin_mode(INVERSE, MarginMode.ISOLATED)
    await rig.venue.load_market(INVERSE)
    rig.forget()
    yield rig
    await rig.venue.close()


async def test_an_okx_coin_margined_swap_is_inverse_in_contracts_of_100_usd_with_tiers_in_coins(okx: Rig) -> None:
    market = await okx.venue.load_market(INVERSE)
    assert (market.inverse, market.margin_asset, market.contract_size, market.amount_step, market.min_amount) == (True, "BTC", D(100), D(100), D(100))
    assert market.margin_step == D("0.00000001")
    # 5,000 contracts of 100 USD at a mark of 50,000 are 10 BTC of notional
    assert [(b.notional_floor, b.notional_cap, b.maint_margin_rate) for b in market.brackets] == [
        (D(0), D(10), D("0.005")), (D(10), D(20), D("0.01")),
    ]


async def test_an_okx_coin_margined_leg_is_face_value_and_the_wallet_is_in_coins(okx: Rig) -> None:
    okx.session.route("GET", "/api/v5/account/positions", okx_inverse_positions)
    legs = await okx.venue.fetch_legs(INVERSE)
    wallet = await okx.venue.fetch_futures_balance("BTC")
    assert (legs.short.size, legs.short.entry_price, legs.short.margin) == (D(30000), D(50000), D("0.6"))
    assert okx.last("GET", "/api/v5/account/positions") == {"instId": "BTC-USD-SWAP"}
    assert wallet.wallet == D(2)


async def test_an_okx_coin_margined_short_sells_whole_contracts_on_pos_side_short_isolated(okx: Rig) -> None:
    result = await okx.venue.place_order(OrderRequest("hbOkInv1", INVERSE, OrderSide.SELL, D(30000), PositionSide.SHORT))
    sent = okx.last("POST", "/api/v5/trade/batch-orders")
    assert {k: sent[k] for k in ("instId", "tdMode", "side", "posSide", "ordType", "sz", "clOrdId")} == {
        "instId": "BTC-USD-SWAP", "tdMode": "isolated", "side": "sell", "posSide": "short", "ordType": "market", "sz": "300", "clOrdId": "hbOkInv1",
    }
    assert "reduceOnly" not in sent
    assert okx.last("GET", "/api/v5/trade/order") == {"instId": "BTC-USD-SWAP", "clOrdId": "hbOkInv1"}
    assert (result.filled, result.position_side) == (D(30000), PositionSide.SHORT)


async def test_okx_coin_margined_leverage_is_set_per_leg_and_margin_added_in_coins(okx: Rig) -> None:
    await okx.venue.set_leverage(INVERSE, 1)
    sent = [r.params for r in okx.session.sent("POST", "/api/v5/account/set-leverage")]
    assert sorted((p["instId"], p["mgnMode"], p["posSide"], str(p["lever"])) for p in sent) == [
        ("BTC-USD-SWAP", "isolated", "long", "1"), ("BTC-USD-SWAP", "isolated", "short", "1"),
    ]
    okx.book.short = LegBook(D(3), D(50000), D("0.6"))  # the book's leg, in its own units: it only has to be open
    await okx.venue.adjust_margin(INVERSE, PositionSide.SHORT, D("0.001234567"))
    assert okx.last("POST", "/api/v5/account/position/margin-balance") == {"instId": "BTC-USD-SWAP", "posSide": "short", "type": "add", "amt": "0.00123457"}


async def test_on_a_unified_account_the_coins_margining_an_inverse_contract_are_its_futures_wallet_not_counted_again_as_spot(okx: Rig) -> None:
    spot = await okx.venue.fetch_spot_balances()
    futures = await okx.venue.fetch_futures_balance("BTC")
    assert "BTC" not in spot and futures.wallet == D(2)  # the same 2 BTC, reported once
    assert spot["USDT"] == D(10000)

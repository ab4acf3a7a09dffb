"""Binance COIN-M through ccxt's `binancecoinm`: the requests a coin-margined short sends, in Binance's documented shapes.

Shapes from https://developers.binance.com/docs/derivatives/coin-margined-futures (exchangeInfo,
leverageBracket v2, positionRisk, account, premiumIndex, new order); the values are this project's own.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hedgebot.clock import SimClock
from hedgebot.domain.model import OrderSide, PositionSide
from hedgebot.exchange.ccxt_venue import CcxtVenue
from hedgebot.exchange.dialects.binancecoinm import BinanceCoinm
from hedgebot.exchange.port import OrderRequest
from tests.exchange.ccxt_recorder import RecordedRequest, RecordingSession

SYMBOL = "BTC/USD:BTC"
NOW_MS = 1_700_000_000_000

EXCHANGE_INFO = {
    "timezone": "UTC", "serverTime": NOW_MS, "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
    ], "exchangeFilters": [], "symbols": [{
        "symbol": "BTCUSD_PERP", "pair": "BTCUSD", "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
        "onboardDate": 1597042800000, "contractStatus": "TRADING", "contractSize": 100, "marginAsset": "BTC",
        "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000", "baseAsset": "BTC", "quoteAsset": "USD",
        "pricePrecision": 1, "quantityPrecision": 0, "baseAssetPrecision": 8, "quotePrecision": 8,
        "equalQtyPrecision": 4, "maxMoveOrderLimit": 10000, "triggerProtect": "0.0500", "underlyingType": "COIN",
        "underlyingSubType": [], "liquidationFee": "0.015000", "marketTakeBound": "0.05",
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "1000", "maxPrice": "4529764", "tickSize": "0.1"},
            {"filterType": "LOT_SIZE", "minQty": "1", "maxQty": "1000000", "stepSize": "1"},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "1", "maxQty": "60000", "stepSize": "1"},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500", "multiplierDecimal": "4"},
        ],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }],
}
# Tiers by notional in coins (qtyFloor/qtyCap), as COIN-M's v2 leverageBracket serves them.
BRACKETS = [{"symbol": "BTCUSD_PERP", "notionalCoef": 1, "brackets": [
    {"bracket": 1, "initialLeverage": 125, "qtyCap": 5, "qtyFloor": 0, "maintMarginRatio": 0.004, "cum": 0},
    {"bracket": 2, "initialLeverage": 100, "qtyCap": 10, "qtyFloor": 5, "maintMarginRatio": 0.005, "cum": 0.005},
    {"bracket": 3, "initialLeverage": 50, "qtyCap": 20, "qtyFloor": 10, "maintMarginRatio": 0.01, "cum": 0.055},
    {"bracket": 4, "initialLeverage": 20, "qtyCap": 50, "qtyFloor": 20, "maintMarginRatio": 0.025, "cum": 0.355},
]}]
POSITION_RISK = [
    {"symbol": "BTCUSD_PERP", "positionAmt": "-2999", "entryPrice": "30000.0", "breakEvenPrice": "30015.0",
     "markPrice": "30010.0", "unRealizedProfit": "-0.00333", "liquidationPrice": "0", "leverage": "1", "maxQty": "50",
     "marginType": "cross", "isolatedMargin": "0.00000000", "isAutoAddMargin": "false", "positionSide": "SHORT",
     "notionalValue": "-9.99333", "isolatedWallet": "0", "updateTime": NOW_MS},
    {"symbol": "BTCUSD_PERP", "positionAmt": "0", "entryPrice": "0.0", "breakEvenPrice": "0.0", "markPrice": "30010.0",
     "unRealizedProfit": "0.00000000", "liquidationPrice": "0", "leverage": "1", "maxQty": "50", "marginType": "cross",
     "isolatedMargin": "0.00000000", "isAutoAddMargin": "false", "positionSide": "LONG", "notionalValue": "0",
     "isolatedWallet": "0", "updateTime": 0},
]
ACCOUNT = {"assets": [{"asset": "BTC", "walletBalance": "9.99500000", "unrealizedProfit": "-0.00333",
                       "marginBalance": "9.99167", "maintMargin": "0.03997", "initialMargin": "9.99333",
                       "positionInitialMargin": "9.99333", "openOrderInitialMargin": "0", "maxWithdrawAmount": "0",
                       "crossWalletBalance": "9.99500000", "crossUnPnl": "-0.00333", "availableBalance": "0.00167",
                       "updateTime": NOW_MS}],
           "positions": [], "canDeposit": True, "canTrade": True, "canWithdraw": True, "feeTier": 0, "updateTime": NOW_MS}
PREMIUM_INDEX = [{"symbol": "BTCUSD_PERP", "pair": "BTCUSD", "markPrice": "30010.0", "indexPrice": "30005.2",
                  "estimatedSettlePrice": "30003.1", "lastFundingRate": "0.00010000", "interestRate": "0.00010000",
                  "nextFundingTime": NOW_MS + 3_600_000, "time": NOW_MS}]


def new_order(request: RecordedRequest) -> dict[str, Any]:
    params = request.params
    return {"orderId": 7001, "symbol": "BTCUSD_PERP", "pair": "BTCUSD", "status": "FILLED",
            "clientOrderId": params["newClientOrderId"], "price": "0", "avgPrice": "30010.0",
            "origQty": params["quantity"], "executedQty": params["quantity"], "cumQty": params["quantity"],
            "cumBase": "0.33322", "timeInForce": "GTC", "type": "MARKET", "reduceOnly": False, "closePosition": False,
            "side": params["side"], "positionSide": params["positionSide"], "stopPrice": "0", "workingType": "CONTRACT_PRICE",
            "priceProtect": False, "origType": "MARKET", "updateTime": NOW_MS}


def routes() -> dict:
    return {
        ("GET", "/dapi/v1/exchangeInfo"): EXCHANGE_INFO,
        ("GET", "/dapi/v2/leverageBracket"): BRACKETS,
        ("GET", "/dapi/v1/positionRisk"): POSITION_RISK,
        ("GET", "/dapi/v1/account"): ACCOUNT,
        ("GET", "/dapi/v1/premiumIndex"): PREMIUM_INDEX,
        ("POST", "/dapi/v1/order"): new_order,
    }


def venue(session: RecordingSession) -> CcxtVenue:
    return CcxtVenue.connect(BinanceCoinm(), SimClock(NOW_MS / 1000), api_key="key", secret="secret", session=session)


async def test_a_coin_m_market_is_read_as_an_inverse_contract_of_100_usd_with_its_tiers_in_coins() -> None:
    session = RecordingSession(routes())
    binance = venue(session)
    try:
        market = await binance.load_market(SYMBOL)
    finally:
        await binance.close()
    assert market.inverse and market.margin_asset == "BTC" and market.contract_size == Decimal(100)
    assert market.amount_step == Decimal(100) and market.min_amount == Decimal(100)  # one contract of face value
    assert market.margin_step == Decimal("0.00000001")
    assert [(b.notional_floor, b.notional_cap, b.maint_margin_rate) for b in market.brackets[:2]] == [
        (Decimal(0), Decimal(5), Decimal("0.004")), (Decimal(5), Decimal(10), Decimal("0.005")),
    ]


async def test_a_coin_m_short_reads_its_legs_in_face_value_and_its_wallet_in_coins_and_sells_whole_contracts() -> None:
    session = RecordingSession(routes())
    binance = venue(session)
    try:
        await binance.load_market(SYMBOL)
        legs = await binance.fetch_legs(SYMBOL)
        wallet = await binance.fetch_futures_balance("BTC")
        mark = await binance.fetch_mark_price(SYMBOL)
        result = await binance.place_order(OrderRequest("hbcoinm1", SYMBOL, OrderSide.SELL, Decimal(30000), PositionSide.SHORT))
    finally:
        await binance.close()
    assert legs.short.size == Decimal(299900) and legs.short.entry_price == Decimal(30000)  # 2,999 contracts of 100 USD
    assert wallet.wallet == Decimal("9.995") and wallet.cross_wallet == Decimal("9.995")
    assert mark.price == Decimal("30010.0")
    sent = session.last("POST", "/dapi/v1/order").params
    assert {k: str(sent[k]) for k in ("symbol", "side", "positionSide", "type", "quantity", "newClientOrderId")} == {
        "symbol": "BTCUSD_PERP", "side": "SELL", "positionSide": "SHORT", "type": "MARKET", "quantity": "300",
        "newClientOrderId": "hbcoinm1",
    }
    assert "reduceOnly" not in sent  # hedge mode names the leg instead
    assert result.filled == Decimal(30000)  # back in face value
    assert all(r.path.startswith("/dapi/") for r in session.requests)  # nothing on the USDⓈ-M API


def test_a_coin_margined_hedge_is_refused_on_an_exchange_that_lists_none_and_a_usdm_one_on_coin_m(monkeypatch) -> None:
    from hedgebot.config import AccountConfig
    from hedgebot.exchange.factory import account_problems
    from tests.helpers import hedge_config

    monkeypatch.setenv("HB_KEY", "k")
    monkeypatch.setenv("HB_SECRET", "s")
    credentials = {"api_key": {"env": "HB_KEY"}, "secret": {"env": "HB_SECRET"}}
    coinm = hedge_config(symbol=SYMBOL, instrument="coinm-perp")
    usdm = hedge_config()
    on_usdm = AccountConfig(name="main", exchange="binanceusdm", mode="live", credentials=credentials, hedges=(coinm,))
    assert any("coin-margined contracts trade on binancecoinm" in p for p in account_problems(on_usdm))
    on_coinm = AccountConfig(name="main", exchange="binancecoinm", mode="live", credentials=credentials, hedges=(usdm,))
    assert any("lists only coin-margined contracts" in p for p in account_problems(on_coinm))
    right = AccountConfig(name="main", exchange="binancecoinm", mode="live", credentials=credentials, hedges=(coinm,))
    # Proven on the emulator's /dapi/ (tests/engine/test_coinm_live_emulator.py): a live coin-margined short is accepted.
    assert [p for p in account_problems(right) if p] == []

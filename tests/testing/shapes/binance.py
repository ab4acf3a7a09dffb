"""Binance USDⓈ-M futures and spot answers, as ccxt's captures show them (`binance.json`).

Read from: `createOrders` "create swap orders" (POST /fapi/v1/order answer), `fetchOpenOrder`
"swap open order" (GET /fapi/v1/order), `fetchPositions` "Fetch linear positions with symbols"
(GET /fapi/v3/positionRisk) and "… using account endpoint" (GET /fapi/v3/account),
`fetchFundingHistory` (GET /fapi/v1/income), `fetchMarginAdjustmentHistory`
(GET /fapi/v1/positionMargin/history), `fetchMarginMode` "linear swap fetch margin mode"
(GET /fapi/v1/symbolConfig), `createOrder` "spot +selfTradePrevention +iceberg" (POST /api/v3/order,
less `icebergQty`, which only an iceberg order carries), `fetchOrder` "Fetch spot closed order"
(GET /api/v3/order) and `fetchBalance` "Spot balance" (GET /api/v3/account).
"""

from __future__ import annotations

from tests.testing.shapes import BOOL, DEC, INT, LIST, OBJ, TEXT, Shape

_ORDER_COMMON: Shape = {
    "orderId": INT, "symbol": TEXT, "status": TEXT, "clientOrderId": TEXT, "price": DEC, "avgPrice": DEC,
    "origQty": DEC, "executedQty": DEC, "cumQuote": DEC, "timeInForce": TEXT, "type": TEXT, "reduceOnly": BOOL,
    "closePosition": BOOL, "side": TEXT, "positionSide": TEXT, "stopPrice": DEC, "workingType": TEXT,
    "priceProtect": BOOL, "origType": TEXT, "priceMatch": TEXT, "selfTradePreventionMode": TEXT,
    "goodTillDate": INT, "updateTime": INT,
}

FUTURES_NEW_ORDER: Shape = {**_ORDER_COMMON, "cumQty": DEC}
FUTURES_QUERY_ORDER: Shape = {**_ORDER_COMMON, "time": INT}

POSITION_RISK: Shape = {
    "symbol": TEXT, "positionSide": TEXT, "positionAmt": DEC, "entryPrice": DEC, "breakEvenPrice": DEC,
    "markPrice": DEC, "unRealizedProfit": DEC, "liquidationPrice": DEC, "isolatedMargin": DEC, "notional": DEC,
    "marginAsset": TEXT, "isolatedWallet": DEC, "initialMargin": DEC, "maintMargin": DEC,
    "positionInitialMargin": DEC, "openOrderInitialMargin": DEC, "adl": INT, "bidNotional": DEC,
    "askNotional": DEC, "updateTime": INT,
}

ACCOUNT: Shape = {
    "totalInitialMargin": DEC, "totalMaintMargin": DEC, "totalWalletBalance": DEC, "totalUnrealizedProfit": DEC,
    "totalMarginBalance": DEC, "totalPositionInitialMargin": DEC, "totalOpenOrderInitialMargin": DEC,
    "totalCrossWalletBalance": DEC, "totalCrossUnPnl": DEC, "availableBalance": DEC, "maxWithdrawAmount": DEC,
    "assets": LIST, "positions": LIST,
}
ACCOUNT_ASSET: Shape = {
    "asset": TEXT, "walletBalance": DEC, "unrealizedProfit": DEC, "marginBalance": DEC, "maintMargin": DEC,
    "initialMargin": DEC, "positionInitialMargin": DEC, "openOrderInitialMargin": DEC, "crossWalletBalance": DEC,
    "crossUnPnl": DEC, "availableBalance": DEC, "maxWithdrawAmount": DEC, "updateTime": INT,
}
ACCOUNT_POSITION: Shape = {
    "symbol": TEXT, "positionSide": TEXT, "positionAmt": DEC, "unrealizedProfit": DEC, "isolatedMargin": DEC,
    "notional": DEC, "isolatedWallet": DEC, "initialMargin": DEC, "maintMargin": DEC, "updateTime": INT,
}

INCOME: Shape = {
    "symbol": TEXT, "incomeType": TEXT, "income": DEC, "asset": TEXT, "time": INT, "info": TEXT, "tranId": INT,
    "tradeId": TEXT,
}

MARGIN_HISTORY: Shape = {
    "symbol": TEXT, "type": INT, "deltaType": TEXT, "amount": DEC, "asset": TEXT, "time": INT,
    "positionSide": TEXT, "clientTranId": TEXT,
}

SYMBOL_CONFIG: Shape = {
    "symbol": TEXT, "marginType": TEXT, "isAutoAddMargin": BOOL, "leverage": INT, "maxNotionalValue": DEC,
}

SPOT_NEW_ORDER: Shape = {
    "symbol": TEXT, "orderId": INT, "orderListId": INT, "clientOrderId": TEXT, "transactTime": INT, "price": DEC,
    "origQty": DEC, "executedQty": DEC, "origQuoteOrderQty": DEC, "cummulativeQuoteQty": DEC, "status": TEXT,
    "timeInForce": TEXT, "type": TEXT, "side": TEXT, "workingTime": INT, "fills": LIST,
    "selfTradePreventionMode": TEXT,
}

SPOT_QUERY_ORDER: Shape = {
    "symbol": TEXT, "orderId": INT, "orderListId": INT, "clientOrderId": TEXT, "price": DEC, "origQty": DEC,
    "executedQty": DEC, "cummulativeQuoteQty": DEC, "status": TEXT, "timeInForce": TEXT, "type": TEXT, "side": TEXT,
    "stopPrice": DEC, "icebergQty": DEC, "time": INT, "updateTime": INT, "isWorking": BOOL, "workingTime": INT,
    "origQuoteOrderQty": DEC, "selfTradePreventionMode": TEXT,
}

SPOT_ACCOUNT: Shape = {
    "makerCommission": INT, "takerCommission": INT, "buyerCommission": INT, "sellerCommission": INT,
    "commissionRates": OBJ, "canTrade": BOOL, "canWithdraw": BOOL, "canDeposit": BOOL, "brokered": BOOL,
    "requireSelfTradePrevention": BOOL, "preventSor": BOOL, "updateTime": INT, "accountType": TEXT,
    "balances": LIST, "permissions": LIST, "uid": INT,
}
SPOT_BALANCE: Shape = {"asset": TEXT, "free": DEC, "locked": DEC}

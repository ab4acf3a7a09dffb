"""Bybit v5 answers, as ccxt's captures show them (`bybit.json`).

Read from: every capture's envelope; `createOrder` "create spot order" (POST /v5/order/create);
`fetchClosedOrder` and `fetchOpenOrder` on BTC/USDT:USDT (GET /v5/order/history and
/v5/order/realtime, linear); `fetchBalance` "balance after availableToWithdraw update"
(GET /v5/account/wallet-balance, UNIFIED); `fetchTicker` "swap ticker" and `fetchFundingRate`
(GET /v5/market/tickers, linear); `fetchFundingHistory` "linear funding history"
(GET /v5/execution/list, execType Funding). No capture shows GET /v5/position/list,
/v5/market/instruments-info, /v5/user/query-api, /v5/account/info or /v5/market/risk-limit:
those answers of the book follow Bybit's documentation only.
"""

from __future__ import annotations

from tests.testing.shapes import BOOL, DEC, DEC_OR_EMPTY, INT, LIST, OBJ, TEXT, Shape

ENVELOPE: Shape = {"retCode": INT, "retMsg": TEXT, "result": OBJ, "retExtInfo": OBJ, "time": INT}

CREATE_RESULT: Shape = {"orderId": TEXT, "orderLinkId": TEXT}

ORDER: Shape = {
    "symbol": TEXT, "orderType": TEXT, "orderLinkId": TEXT, "slLimitPrice": DEC_OR_EMPTY, "orderId": TEXT,
    "cancelType": TEXT, "avgPrice": DEC_OR_EMPTY, "stopOrderType": TEXT, "lastPriceOnCreated": DEC_OR_EMPTY,
    "orderStatus": TEXT, "createType": TEXT, "takeProfit": DEC_OR_EMPTY, "cumExecValue": DEC, "tpslMode": TEXT,
    "smpType": TEXT, "triggerDirection": INT, "blockTradeId": TEXT, "cumFeeDetail": OBJ, "rejectReason": TEXT,
    "isLeverage": TEXT, "price": DEC, "orderIv": TEXT, "createdTime": INT, "tpTriggerBy": TEXT, "positionIdx": INT,
    "timeInForce": TEXT, "leavesValue": DEC, "updatedTime": INT, "side": TEXT, "smpGroup": INT,
    "triggerPrice": DEC_OR_EMPTY, "tpLimitPrice": DEC_OR_EMPTY, "cumExecFee": DEC, "slTriggerBy": TEXT,
    "leavesQty": DEC, "closeOnTrigger": BOOL, "slippageToleranceType": TEXT, "placeType": TEXT, "cumExecQty": DEC,
    "reduceOnly": BOOL, "qty": DEC, "stopLoss": DEC_OR_EMPTY, "smpOrderId": TEXT, "slippageTolerance": DEC,
    "triggerBy": TEXT, "extraFees": TEXT, "marketUnit": TEXT,
}

WALLET: Shape = {
    "totalEquity": DEC, "accountIMRate": DEC, "totalMarginBalance": DEC, "totalInitialMargin": DEC,
    "accountType": TEXT, "totalAvailableBalance": DEC, "accountMMRate": DEC, "totalPerpUPL": DEC,
    "totalWalletBalance": DEC, "accountLTV": DEC, "totalMaintenanceMargin": DEC, "coin": LIST,
}
WALLET_COIN: Shape = {
    "availableToBorrow": DEC_OR_EMPTY, "bonus": DEC, "accruedInterest": DEC, "availableToWithdraw": DEC_OR_EMPTY,
    "totalOrderIM": DEC, "equity": DEC, "totalPositionMM": DEC, "usdValue": DEC, "unrealisedPnl": DEC,
    "collateralSwitch": BOOL, "spotHedgingQty": DEC, "borrowAmount": DEC, "totalPositionIM": DEC,
    "walletBalance": DEC, "cumRealisedPnl": DEC, "locked": DEC, "marginCollateral": BOOL, "coin": TEXT,
}

TICKER: Shape = {
    "symbol": TEXT, "lastPrice": DEC, "indexPrice": DEC, "markPrice": DEC, "prevPrice24h": DEC, "price24hPcnt": DEC,
    "highPrice24h": DEC, "lowPrice24h": DEC, "prevPrice1h": DEC, "openInterest": DEC, "openInterestValue": DEC,
    "turnover24h": DEC, "volume24h": DEC, "fundingRate": DEC, "nextFundingTime": INT,
    "predictedDeliveryPrice": DEC_OR_EMPTY, "basisRate": DEC_OR_EMPTY, "deliveryFeeRate": DEC_OR_EMPTY,
    "deliveryTime": INT, "ask1Size": DEC, "bid1Price": DEC, "ask1Price": DEC, "bid1Size": DEC, "basis": DEC_OR_EMPTY,
    "preOpenPrice": DEC_OR_EMPTY, "preQty": DEC_OR_EMPTY, "curPreListingPhase": TEXT, "timestamp": INT,
}

EXECUTION: Shape = {
    "symbol": TEXT, "orderType": TEXT, "underlyingPrice": DEC_OR_EMPTY, "orderLinkId": TEXT, "orderId": TEXT,
    "stopOrderType": TEXT, "execTime": INT, "feeCurrency": TEXT, "createType": TEXT, "feeRate": DEC,
    "tradeIv": DEC_OR_EMPTY, "blockTradeId": TEXT, "markPrice": DEC_OR_EMPTY, "execPrice": DEC, "markIv": DEC_OR_EMPTY,
    "orderQty": DEC, "orderPrice": DEC, "execValue": DEC, "closedSize": DEC_OR_EMPTY, "execType": TEXT, "seq": INT,
    "side": TEXT, "indexPrice": DEC_OR_EMPTY, "leavesQty": DEC, "isMaker": BOOL, "execFee": DEC, "execId": TEXT,
    "marketUnit": TEXT, "execQty": DEC,
}

# Fields the book sends that the captures lack, with where the exchange documents them.
DOCUMENTED: dict[str, dict[str, tuple[str, str]]] = {
    "wallet_coin": {
        "free": (DEC_OR_EMPTY, "Bybit v5 Get Wallet Balance: `free`, classic-account spot only; ccxt's bybit parse_balance falls back to it"),
    },
}

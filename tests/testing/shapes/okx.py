"""OKX v5 answers, as ccxt's captures show them (`okx.json`).

Read from: every capture's envelope; `createOrder` "type2 & type3 together" (POST order: `ordId`,
`sCode`, no fill); `fetchOpenOrders` "swap limit open order …" and `fetchClosedOrders` "Swap closed
orders" (the order object of GET /api/v5/trade/order); `fetchPositions` "linear swap position"
(GET /api/v5/account/positions); `fetchBalance` "spot balance" (GET /api/v5/account/balance);
`fetchAccounts` (GET /api/v5/account/config). No capture shows /public/instruments,
/account/leverage-info, /public/mark-price, /public/funding-rate, /public/position-tiers or
/account/bills-archive: those answers of the book follow OKX's documentation only.
"""

from __future__ import annotations

from tests.testing.shapes import BOOL, DEC, DEC_OR_EMPTY, INT, LIST, OBJ, TEXT, Shape

INT_OR_EMPTY = DEC_OR_EMPTY  # times of events that have not happened yet are "" (fillTime of a live order)

ENVELOPE: Shape = {"code": INT, "msg": TEXT, "data": LIST, "inTime": INT, "outTime": INT}

PLACED: Shape = {"clOrdId": TEXT, "ordId": TEXT, "sCode": INT, "sMsg": TEXT, "tag": TEXT, "ts": INT}

ORDER: Shape = {
    "accFillSz": DEC, "algoClOrdId": TEXT, "algoId": TEXT, "attachAlgoClOrdId": TEXT, "attachAlgoOrds": LIST,
    "avgPx": DEC_OR_EMPTY, "cTime": INT, "cancelSource": TEXT, "cancelSourceReason": TEXT, "category": TEXT,
    "ccy": TEXT, "clOrdId": TEXT, "fee": DEC, "feeCcy": TEXT, "fillPx": DEC_OR_EMPTY, "fillSz": DEC,
    "fillTime": INT_OR_EMPTY, "instId": TEXT, "instType": TEXT, "lever": DEC, "ordId": TEXT, "ordType": TEXT,
    "pnl": DEC, "posSide": TEXT, "px": DEC_OR_EMPTY, "pxType": TEXT, "pxUsd": DEC_OR_EMPTY, "pxVol": DEC_OR_EMPTY,
    "quickMgnType": TEXT, "rebate": DEC, "rebateCcy": TEXT, "reduceOnly": TEXT, "side": TEXT,
    "slOrdPx": DEC_OR_EMPTY, "slTriggerPx": DEC_OR_EMPTY, "slTriggerPxType": TEXT, "source": TEXT, "state": TEXT,
    "stpId": TEXT, "stpMode": TEXT, "sz": DEC, "tag": TEXT, "tdMode": TEXT, "tgtCcy": TEXT, "tpOrdPx": DEC_OR_EMPTY,
    "tpTriggerPx": DEC_OR_EMPTY, "tpTriggerPxType": TEXT, "tradeId": TEXT, "uTime": INT,
}

POSITION: Shape = {
    "adl": INT, "availPos": DEC, "avgPx": DEC, "baseBal": DEC_OR_EMPTY, "baseBorrowed": DEC_OR_EMPTY,
    "baseInterest": DEC_OR_EMPTY, "bePx": DEC, "bizRefId": TEXT, "bizRefType": TEXT, "cTime": INT, "ccy": TEXT,
    "closeOrderAlgo": LIST, "deltaBS": DEC_OR_EMPTY, "deltaPA": DEC_OR_EMPTY, "fee": DEC, "fundingFee": DEC,
    "gammaBS": DEC_OR_EMPTY, "gammaPA": DEC_OR_EMPTY, "idxPx": DEC, "imr": DEC_OR_EMPTY, "instId": TEXT,
    "instType": TEXT, "interest": DEC_OR_EMPTY, "last": DEC, "lever": DEC, "liab": DEC_OR_EMPTY, "liabCcy": TEXT,
    "liqPenalty": DEC, "liqPx": DEC_OR_EMPTY, "margin": DEC_OR_EMPTY, "markPx": DEC, "mgnMode": TEXT,
    "mgnRatio": DEC_OR_EMPTY, "mmr": DEC_OR_EMPTY, "notionalUsd": DEC, "optVal": DEC_OR_EMPTY,
    "pendingCloseOrdLiabVal": DEC_OR_EMPTY, "pnl": DEC, "pos": DEC, "posCcy": TEXT, "posId": TEXT, "posSide": TEXT,
    "quoteBal": DEC_OR_EMPTY, "quoteBorrowed": DEC_OR_EMPTY, "quoteInterest": DEC_OR_EMPTY, "realizedPnl": DEC,
    "spotInUseAmt": DEC_OR_EMPTY, "spotInUseCcy": TEXT, "thetaBS": DEC_OR_EMPTY, "thetaPA": DEC_OR_EMPTY,
    "tradeId": TEXT, "uTime": INT, "upl": DEC, "uplLastPx": DEC, "uplRatio": DEC, "uplRatioLastPx": DEC,
    "usdPx": DEC_OR_EMPTY, "vegaBS": DEC_OR_EMPTY, "vegaPA": DEC_OR_EMPTY,
}

BALANCE: Shape = {
    "adjEq": DEC_OR_EMPTY, "availEq": DEC_OR_EMPTY, "borrowFroz": DEC_OR_EMPTY, "details": LIST, "imr": DEC_OR_EMPTY,
    "isoEq": DEC_OR_EMPTY, "mgnRatio": DEC_OR_EMPTY, "mmr": DEC_OR_EMPTY, "notionalUsd": DEC_OR_EMPTY,
    "notionalUsdForBorrow": DEC_OR_EMPTY, "notionalUsdForFutures": DEC_OR_EMPTY, "notionalUsdForOption": DEC_OR_EMPTY,
    "notionalUsdForSwap": DEC_OR_EMPTY, "ordFroz": DEC_OR_EMPTY, "totalEq": DEC, "uTime": INT, "upl": DEC_OR_EMPTY,
}
BALANCE_DETAIL: Shape = {
    "accAvgPx": DEC_OR_EMPTY, "availBal": DEC, "availEq": DEC_OR_EMPTY, "borrowFroz": DEC_OR_EMPTY, "cashBal": DEC,
    "ccy": TEXT, "clSpotInUseAmt": DEC_OR_EMPTY, "colBorrAutoConversion": DEC_OR_EMPTY, "collateralEnabled": BOOL,
    "collateralRestrict": BOOL, "crossLiab": DEC_OR_EMPTY, "disEq": DEC_OR_EMPTY, "eq": DEC, "eqUsd": DEC,
    "fixedBal": DEC_OR_EMPTY, "frozenBal": DEC, "imr": DEC_OR_EMPTY, "interest": DEC_OR_EMPTY, "isoEq": DEC_OR_EMPTY,
    "isoLiab": DEC_OR_EMPTY, "isoUpl": DEC_OR_EMPTY, "liab": DEC_OR_EMPTY, "maxLoan": DEC_OR_EMPTY,
    "maxSpotInUse": DEC_OR_EMPTY, "mgnRatio": DEC_OR_EMPTY, "mmr": DEC_OR_EMPTY, "notionalLever": DEC_OR_EMPTY,
    "openAvgPx": DEC_OR_EMPTY, "ordFrozen": DEC_OR_EMPTY, "rewardBal": DEC_OR_EMPTY, "smtSyncEq": DEC_OR_EMPTY,
    "spotBal": DEC_OR_EMPTY, "spotCopyTradingEq": DEC_OR_EMPTY, "spotInUseAmt": DEC_OR_EMPTY,
    "spotIsoBal": DEC_OR_EMPTY, "spotUpl": DEC_OR_EMPTY, "spotUplRatio": DEC_OR_EMPTY, "stgyEq": DEC_OR_EMPTY,
    "totalPnl": DEC_OR_EMPTY, "totalPnlRatio": DEC_OR_EMPTY, "twap": DEC_OR_EMPTY, "uTime": INT, "upl": DEC,
    "uplLiab": DEC_OR_EMPTY,
}

CONFIG: Shape = {
    "acctLv": INT, "autoLoan": BOOL, "ctIsoMode": TEXT, "greeksType": TEXT, "ip": TEXT, "kycLv": INT, "label": TEXT,
    "level": TEXT, "levelTmp": TEXT, "liquidationGear": INT, "mainUid": TEXT, "mgnIsoMode": TEXT, "opAuth": INT,
    "perm": TEXT, "posMode": TEXT, "roleType": INT, "spotOffsetType": TEXT, "spotRoleType": INT,
    "spotTraderInsts": LIST, "traderInsts": LIST, "uid": TEXT,
}

# Fields the book sends that the captures lack, with where the exchange documents them.
DOCUMENTED: dict[str, dict[str, tuple[str, str]]] = {
    "order": {
        "isTpLimit": (TEXT, "OKX v5 Get order details (also in the example answer quoted in ccxt's okx.py parse_order)"),
        "linkedAlgoOrd": (OBJ, "OKX v5 Get order details (also in the example answer quoted in ccxt's okx.py parse_order)"),
    },
}

"""Delivery and coin-margined contracts as each exchange lists them, for the recorded books.

Shapes follow the exchanges' documented answers (Binance USDⓈ-M and COIN-M exchangeInfo, Bybit v5
instruments-info, OKX v5 public/instruments) and ccxt's captured responses
(ts/src/test/static/response/*.json); the values are this project's own. The books' clock stands at
1,700,000,000 s (2023-11-14 22:13 UTC): the December 2023 quarter is the nearest, March 2024 the next.
"""

from __future__ import annotations

from typing import Any

NOW_MS = 1_700_000_000_000
DEC23 = 1_703_836_800_000  # 2023-12-29 08:00 UTC, the December quarter's delivery
MAR24 = 1_711_699_200_000  # 2024-03-29 08:00 UTC
NOV23 = 1_700_812_800_000  # 2023-11-24 08:00 UTC, a contract about to deliver
OCT23 = 1_698_393_600_000  # 2023-10-27 08:00 UTC, delivered before the books' now


# ---------------------------------------------------------------- Binance


def binance_filters(tick: str, step: str, min_qty: str, min_notional: str | None) -> list[dict[str, Any]]:
    """Return a Binance futures symbol's filters."""
    filters: list[dict[str, Any]] = [
        {"filterType": "PRICE_FILTER", "minPrice": "556.80", "maxPrice": "4529764", "tickSize": tick},
        {"filterType": "LOT_SIZE", "minQty": min_qty, "maxQty": "1000", "stepSize": step},
        {"filterType": "MARKET_LOT_SIZE", "minQty": min_qty, "maxQty": "120", "stepSize": step},
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500", "multiplierDecimal": "4"},
    ]
    if min_notional is not None:
        filters.append({"filterType": "MIN_NOTIONAL", "notional": min_notional})
    return filters


def usdm_symbol(symbol: str, contract_type: str, delivery: int, status: str, base: str = "BTC") -> dict[str, Any]:
    """Return a USDⓈ-M exchangeInfo symbol: `status` is the contract's state (TRADING, PENDING_TRADING, ...)."""
    return {
        "symbol": symbol, "pair": f"{base}USDT", "contractType": contract_type, "deliveryDate": delivery,
        "onboardDate": 1569398400000, "status": status, "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
        "baseAsset": base, "quoteAsset": "USDT", "marginAsset": "USDT", "pricePrecision": 1, "quantityPrecision": 3,
        "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN", "underlyingSubType": ["PoW"],
        "settlePlan": 0, "triggerProtect": "0.0500", "liquidationFee": "0.012500", "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000, "filters": binance_filters("0.1", "0.001", "0.001", "100"),
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
    }


def coinm_symbol(symbol: str, contract_type: str, delivery: int, status: str) -> dict[str, Any]:
    """Return a COIN-M exchangeInfo symbol: contracts of 100 USD, `contractStatus` its state."""
    return {
        "symbol": symbol, "pair": "BTCUSD", "contractType": contract_type, "deliveryDate": delivery,
        "onboardDate": 1597042800000, "contractStatus": status, "contractSize": 100, "marginAsset": "BTC",
        "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000", "baseAsset": "BTC", "quoteAsset": "USD",
        "pricePrecision": 1, "quantityPrecision": 0, "baseAssetPrecision": 8, "quotePrecision": 8, "equalQtyPrecision": 4,
        "maxMoveOrderLimit": 10000, "triggerProtect": "0.0500", "underlyingType": "COIN", "underlyingSubType": [],
        "liquidationFee": "0.015000", "marketTakeBound": "0.05", "filters": binance_filters("0.1", "1", "1", None),
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


def binance_exchange_info(symbols: list[dict[str, Any]]) -> dict[str, Any]:
    """Return an exchangeInfo answer listing `symbols`."""
    return {
        "timezone": "UTC", "serverTime": NOW_MS, "futuresType": "U_MARGINED",
        "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400}],
        "exchangeFilters": [], "assets": [], "symbols": symbols,
    }


# ---------------------------------------------------------------- Bybit v5


def bybit_instrument(
    category: str, symbol: str, contract_type: str, status: str, delivery: int, *, base: str = "BTC", quote: str = "USDT",
) -> dict[str, Any]:
    """Return a Bybit instruments-info row (`category` is the book's, not a field Bybit sends in the row)."""
    inverse = category == "inverse"
    return {
        "category": category, "symbol": symbol, "contractType": contract_type, "status": status, "baseCoin": base,
        "quoteCoin": quote, "launchTime": "1585526400000", "deliveryTime": str(delivery), "deliveryFeeRate": "0.0005" if delivery else "",
        "priceScale": "2" if not inverse else "1",
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00" if not inverse else "100", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10" if not inverse else "0.5"},
        "lotSizeFilter": (
            {"maxOrderQty": "1000000", "minOrderQty": "1", "qtyStep": "1", "postOnlyMaxOrderQty": "1000000", "maxMktOrderQty": "1000000", "minNotionalValue": "1"}
            if inverse else
            {"maxOrderQty": "500.000", "minOrderQty": "0.001", "qtyStep": "0.001", "postOnlyMaxOrderQty": "500.000", "maxMktOrderQty": "100.000", "minNotionalValue": "5"}
        ),
        "unifiedMarginTrade": True, "fundingInterval": 480 if delivery == 0 else 0,
        "settleCoin": base if inverse else quote, "copyTrading": "none",
        "upperFundingRate": "0.005" if delivery == 0 else "", "lowerFundingRate": "-0.005" if delivery == 0 else "",
    }


BYBIT_DELIVERY = [
    bybit_instrument("linear", "BTCUSDT-29DEC23", "LinearFutures", "Trading", DEC23),
    bybit_instrument("linear", "BTCUSDT-29MAR24", "LinearFutures", "PreLaunch", MAR24),
    bybit_instrument("linear", "BTCUSDT-24NOV23", "LinearFutures", "Delivering", NOV23),
    bybit_instrument("linear", "ETHUSDT-29DEC23", "LinearFutures", "Trading", DEC23, base="ETH"),
    bybit_instrument("inverse", "BTCUSD", "InversePerpetual", "Trading", 0, quote="USD"),
    bybit_instrument("inverse", "BTCUSDZ23", "InverseFutures", "Trading", DEC23, quote="USD"),
    bybit_instrument("inverse", "BTCUSDH24", "InverseFutures", "Trading", MAR24, quote="USD"),
]


# ---------------------------------------------------------------- OKX v5


def okx_instrument(inst_id: str, inst_type: str, state: str, expiry: int | None) -> dict[str, Any]:
    """Return an OKX public/instruments row: BTC-USD-* are coin-margined (ctVal 100 USD, settled in BTC)."""
    inverse = inst_id.startswith("BTC-USD-")
    return {
        "alias": "" if expiry is None else "quarter", "baseCcy": "", "category": "1", "ctMult": "1",
        "ctType": "inverse" if inverse else "linear", "ctVal": "100" if inverse else "0.01", "ctValCcy": "USD" if inverse else "BTC",
        "expTime": "" if expiry is None else str(expiry), "instFamily": "BTC-USD" if inverse else "BTC-USDT", "instId": inst_id,
        "instType": inst_type, "lever": "100", "listTime": "1573557408000", "lotSz": "1" if inverse else "0.1",
        "maxIcebergSz": "1000000", "maxLmtAmt": "20000000", "maxLmtSz": "1000000", "maxMktAmt": "", "maxMktSz": "6000",
        "maxStopSz": "6000", "maxTriggerSz": "1000000", "maxTwapSz": "1000000", "minSz": "1" if inverse else "0.1",
        "optType": "", "quoteCcy": "", "settleCcy": "BTC" if inverse else "USDT", "state": state, "stk": "", "tickSz": "0.1",
        "uly": "BTC-USD" if inverse else "BTC-USDT",
    }


OKX_LISTED = [
    okx_instrument("BTC-USD-SWAP", "SWAP", "live", None),
    okx_instrument("BTC-USDT-231229", "FUTURES", "live", DEC23),
    okx_instrument("BTC-USDT-240329", "FUTURES", "preopen", MAR24),
    okx_instrument("BTC-USDT-231124", "FUTURES", "suspend", NOV23),
    okx_instrument("BTC-USD-231229", "FUTURES", "live", DEC23),
]

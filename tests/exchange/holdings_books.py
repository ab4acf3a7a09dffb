"""Spot balance answers of exchanges hedgebot only reads (holdings accounts), in each one's documented shapes.

Kraken: https://docs.kraken.com/api-reference/ (Assets, AssetPairs, Ticker, BalanceEx). Coinbase Advanced Trade:
https://docs.cdp.coinbase.com/advanced-trade/reference/ (List Accounts) and the v2 currency lists ccxt loads
its markets with. The values are this project's own.
"""

from __future__ import annotations

from typing import Any

KRAKEN_ASSETS = {"error": [], "result": {
    "XXBT": {"aclass": "currency", "altname": "XBT", "decimals": 10, "display_decimals": 5, "status": "enabled"},
    "USDT": {"aclass": "currency", "altname": "USDT", "decimals": 8, "display_decimals": 4, "status": "enabled"},
    "ZUSD": {"aclass": "currency", "altname": "USD", "decimals": 4, "display_decimals": 2, "status": "enabled"},
}}
KRAKEN_PAIRS = {"error": [], "result": {"XXBTZUSD": {
    "altname": "XBTUSD", "wsname": "XBT/USD", "aclass_base": "currency", "base": "XXBT", "aclass_quote": "currency",
    "quote": "ZUSD", "lot": "unit", "cost_decimals": 5, "pair_decimals": 1, "lot_decimals": 8, "lot_multiplier": 1,
    "leverage_buy": [2, 3], "leverage_sell": [2, 3], "fees": [[0, 0.26]], "fees_maker": [[0, 0.16]],
    "fee_volume_currency": "ZUSD", "margin_call": 80, "margin_stop": 40, "ordermin": "0.0001", "costmin": "0.5",
    "tick_size": "0.1", "status": "online",
}, "XBTUSDT": {
    "altname": "XBTUSDT", "wsname": "XBT/USDT", "aclass_base": "currency", "base": "XXBT", "aclass_quote": "currency",
    "quote": "USDT", "lot": "unit", "cost_decimals": 5, "pair_decimals": 1, "lot_decimals": 8, "lot_multiplier": 1,
    "leverage_buy": [2, 3], "leverage_sell": [2, 3], "fees": [[0, 0.26]], "fees_maker": [[0, 0.16]],
    "fee_volume_currency": "ZUSD", "margin_call": 80, "margin_stop": 40, "ordermin": "0.0001", "costmin": "0.5",
    "tick_size": "0.1", "status": "online",
}}}
KRAKEN_BALANCE = {"error": [], "result": {
    "XXBT": {"balance": "3.25", "hold_trade": "0.5"},
    "ZUSD": {"balance": "1200.00", "hold_trade": "0"},
}}

KRAKEN_TICKER = {"error": [], "result": {"XBTUSDT": {
    "a": ["30300.10000", "1", "1.000"], "b": ["30300.00000", "2", "2.000"], "c": ["30303.20000", "0.00067643"],
    "v": ["4083.67001100", "4412.73601799"], "p": ["30706.77771", "30689.13205"], "t": [34619, 38907],
    "l": ["29868.30000", "29868.30000"], "h": ["31631.00000", "31631.00000"], "o": "30502.80000",
}}}


def kraken_routes() -> dict[tuple[str, str], Any]:
    """Return the Kraken endpoints a read of the spot balances may use, and nothing else."""
    return {
        ("GET", "/0/public/Assets"): KRAKEN_ASSETS,
        ("GET", "/0/public/AssetPairs"): KRAKEN_PAIRS,
        ("GET", "/0/public/Ticker"): KRAKEN_TICKER,
        ("POST", "/0/private/BalanceEx"): KRAKEN_BALANCE,
    }

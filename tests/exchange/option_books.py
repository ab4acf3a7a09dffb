"""Recorded option chains of Deribit, Binance and OKX, answered in each exchange's documented shapes.

Served to unmodified ccxt through `RecordingSession` (tests/exchange/ccxt_recorder.py), like the
perpetual books beside it. Shapes follow the exchanges' API documentation and the sample
responses in ccxt 4.5's source (deribit public/get_instruments, get_book_summary_by_currency,
ticker; Binance eapi/v1 exchangeInfo, mark, index; OKX v5 public/instruments, opt-summary,
mark-price, market/index-tickers). The values are this project's own: one BTC chain on
2026-12-03 08:00 UTC, index 90000, three expiries (22, 57 and 113 days), strikes 60000..95000,
a volatility smile. The marks were computed once, outside the tests, with Black-Scholes at each
row's IV on the price each venue quotes on (Deribit and OKX: the forward, marks in BTC to 8
places; Binance: the index, marks in USDT to its 5-USDT tick) and written out as literals. So
repricing them within 2 % checks that the planner reads each venue's units right (coin or USDT,
IV in percent or as a fraction, forward or index, expiry in ms); the formula itself is checked
against published values in tests/domain/test_options.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.exchange.ccxt_recorder import RecordedRequest

NOW = 1_796_284_800.0  # 2026-12-03 08:00 UTC
NOW_MS = int(NOW * 1000)
INDEX = "90000"
EXPIRIES = {"261225": 1_798_185_600_000, "270129": 1_801_209_600_000, "270326": 1_806_048_000_000}

# (expiry, strike, forward, mark iv, mark in BTC, delta): Deribit and OKX price on their forward.
COIN_CHAIN: list[tuple[str, int, str, str, str, str]] = [
    ("261225", 60000, "90433.97", "0.6502", "0.00020866", "-0.0040"),
    ("261225", 70000, "90433.97", "0.5701", "0.00162667", "-0.0287"),
    ("261225", 75000, "90433.97", "0.5435", "0.00442489", "-0.0709"),
    ("261225", 80000, "90433.97", "0.5237", "0.01098530", "-0.1544"),
    ("261225", 85000, "90433.97", "0.5097", "0.02415175", "-0.2885"),
    ("261225", 90000, "90433.97", "0.5006", "0.04652005", "-0.4599"),
    ("270129", 60000, "91124.38", "0.6549", "0.00468533", "-0.0406"),
    ("270129", 65000, "91124.38", "0.6090", "0.00735339", "-0.0637"),
    ("270129", 70000, "91124.38", "0.5734", "0.01194153", "-0.1008"),
    ("270129", 75000, "91124.38", "0.5461", "0.01950763", "-0.1562"),
    ("270129", 80000, "91124.38", "0.5258", "0.03134831", "-0.2325"),
    ("270129", 85000, "91124.38", "0.5113", "0.04870960", "-0.3280"),
    ("270129", 90000, "91124.38", "0.5016", "0.07244606", "-0.4358"),
    ("270129", 95000, "91124.38", "0.4960", "0.10278381", "-0.5456"),
    ("270326", 75000, "92229.04", "0.5505", "0.04088733", "-0.2038"),
    ("270326", 80000, "92229.04", "0.5292", "0.05538315", "-0.2642"),
]

# (expiry, strike, mark iv, mark in USDT, delta): Binance prices on the index.
USDT_CHAIN: list[tuple[str, int, str, str, str]] = [
    ("261225", 70000, "0.5681", "155", "-0.0306"),
    ("261225", 75000, "0.5418", "425", "-0.0753"),
    ("261225", 80000, "0.5225", "1055", "-0.1630"),
    ("261225", 85000, "0.5088", "2305", "-0.3015"),
    ("270129", 65000, "0.6026", "715", "-0.0687"),
    ("270129", 70000, "0.5681", "1170", "-0.1090"),
    ("270129", 75000, "0.5418", "1920", "-0.1689"),
    ("270129", 80000, "0.5225", "3090", "-0.2503"),
    ("270129", 85000, "0.5088", "4785", "-0.3502"),
    ("270326", 75000, "0.5418", "4120", "-0.2250"),
]

_MONTHS = {"12": "DEC", "01": "JAN", "03": "MAR"}


def deribit_name(expiry: str, strike: int, kind: str = "P") -> str:
    """Return Deribit's instrument name (BTC-29JAN27-75000-P)."""
    return f"BTC-{int(expiry[4:])}{_MONTHS[expiry[2:4]]}{expiry[:2]}-{strike}-{kind}"


@dataclass
class DeribitOptionsBook:
    """Deribit's BTC options (coin-settled, marks in BTC, mark_iv in percent)."""

    chain: list[tuple[str, int, str, str, str, str]] = field(default_factory=lambda: list(COIN_CHAIN))
    ticker_requests: list[str] = field(default_factory=list)

    def _instrument(self, expiry: str, strike: int, kind: str) -> dict[str, Any]:
        return {
            "tick_size": 0.0001, "taker_commission": 0.0003, "strike": float(strike), "settlement_period": "month",
            "settlement_currency": "BTC", "rfq": False, "quote_currency": "BTC", "price_index": "btc_usd",
            "option_type": "put" if kind == "P" else "call", "min_trade_amount": 0.1, "maker_commission": 0.0003,
            "kind": "option", "is_active": True, "instrument_name": deribit_name(expiry, strike, kind),
            "instrument_id": 100000 + strike // 1000, "expiration_timestamp": EXPIRIES[expiry],
            "creation_timestamp": NOW_MS - 86_400_000 * 60, "counter_currency": "USD", "contract_size": 1.0,
            "block_trade_tick_size": 0.0001, "block_trade_min_trade_amount": 25, "block_trade_commission": 0.0003,
            "base_currency": "BTC",
        }

    def _summary(self, row: tuple[str, int, str, str, str, str]) -> dict[str, Any]:
        expiry, strike, forward, iv, mark, _ = row
        return {
            "volume_usd": 0.0, "volume": 0.0, "quote_currency": "BTC", "price_change": None, "open_interest": 12.5,
            "mid_price": None, "mark_price": float(mark), "mark_iv": round(float(iv) * 100, 2), "low": None,
            "last": None, "interest_rate": 0.0, "instrument_name": deribit_name(expiry, strike),
            "high": None, "estimated_delivery_price": float(INDEX), "creation_timestamp": NOW_MS,
            "bid_price": None, "base_currency": "BTC", "ask_price": None,
            "underlying_price": float(forward), "underlying_index": f"BTC-{deribit_name(expiry, strike).split('-')[1]}",
        }

    def _rpc(self, result: Any) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "result": result, "usIn": NOW_MS * 1000, "usOut": NOW_MS * 1000 + 200, "usDiff": 200, "testnet": False}

    def routes(self) -> dict[tuple[str, str], Any]:
        """Return the public endpoints ccxt asks for the chain."""

        def instruments(request: RecordedRequest) -> Any:
            rows = [self._instrument(e, k, "P") for e, k, *_ in self.chain]
            rows.append(self._instrument("270129", 75000, "C"))  # calls are listed too; the planner leaves them out
            return self._rpc(rows)

        def summary(request: RecordedRequest) -> Any:
            assert request.query.get("kind") == "option", request.query
            return self._rpc([self._summary(row) for row in self.chain if request.query.get("currency") == "BTC"])

        def ticker(request: RecordedRequest) -> Any:
            name = request.query["instrument_name"]
            self.ticker_requests.append(name)
            row = next(r for r in self.chain if deribit_name(r[0], r[1]) == name)
            summary_row = self._summary(row)
            return self._rpc({
                "timestamp": NOW_MS, "state": "open", "instrument_name": name, "index_price": float(INDEX),
                "underlying_price": summary_row["underlying_price"], "underlying_index": summary_row["underlying_index"],
                "mark_price": summary_row["mark_price"], "mark_iv": summary_row["mark_iv"], "interest_rate": 0.0,
                "best_bid_price": 0.0, "best_ask_price": 0.0, "bid_iv": 0.0, "ask_iv": 0.0,
                "best_bid_amount": 0.0, "best_ask_amount": 0.0, "open_interest": 12.5, "last_price": None,
                "settlement_price": summary_row["mark_price"], "min_price": 0.0001, "max_price": 0.2,
                "estimated_delivery_price": float(INDEX),
                "greeks": {"delta": float(row[5]), "gamma": 0.00001, "vega": 120.5, "theta": -60.2, "rho": -20.1},
                "stats": {"volume_usd": 0.0, "volume": 0.0, "price_change": None, "low": None, "high": None},
            })

        currencies = self._rpc([
            {"currency": "BTC", "currency_long": "Bitcoin", "fee_precision": 4, "min_confirmations": 1,
             "min_withdrawal_fee": 0.0001, "withdrawal_fee": 0.0001, "coin_type": "BITCOIN", "withdrawal_priorities": []},
        ])
        return {
            ("GET", "/api/v2/public/get_currencies"): currencies,
            ("GET", "/api/v2/public/get_instruments"): instruments,
            ("GET", "/api/v2/public/get_book_summary_by_currency"): summary,
            ("GET", "/api/v2/public/ticker"): ticker,
        }


@dataclass
class BinanceOptionsBook:
    """Binance European options (USDT-settled, marks in USDT, markIV a fraction)."""

    chain: list[tuple[str, int, str, str, str]] = field(default_factory=lambda: list(USDT_CHAIN))

    def _symbol(self, expiry: str, strike: int, kind: str = "P") -> dict[str, Any]:
        return {
            "contractId": 2, "expiryDate": EXPIRIES[expiry],
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "5", "maxPrice": "100000", "tickSize": "5"},
                {"filterType": "LOT_SIZE", "minQty": "0.01", "maxQty": "100", "stepSize": "0.01"},
            ],
            "id": 100 + strike // 1000, "symbol": f"BTC-{expiry}-{strike}-{kind}", "side": "PUT" if kind == "P" else "CALL",
            "strikePrice": f"{strike}.00000000", "underlying": "BTCUSDT", "unit": 1, "makerFeeRate": "0.00020000",
            "takerFeeRate": "0.00020000", "minQty": "0.01", "maxQty": "100", "initialMargin": "0.15000000",
            "maintenanceMargin": "0.07500000", "minInitialMargin": "0.10000000", "minMaintenanceMargin": "0.05000000",
            "priceScale": 0, "quantityScale": 2, "quoteAsset": "USDT", "status": "TRADING",
        }

    def routes(self) -> dict[tuple[str, str], Any]:
        """Return the public eapi endpoints ccxt asks for the chain."""
        info = {
            "timezone": "UTC", "serverTime": NOW_MS,
            "optionContracts": [{"id": 2, "baseAsset": "BTC", "quoteAsset": "USDT", "underlying": "BTCUSDT", "settleAsset": "USDT"}],
            "optionAssets": [{"id": 1, "name": "USDT"}],
            "optionSymbols": [self._symbol(e, k) for e, k, *_ in self.chain] + [self._symbol("270129", 75000, "C")],
            "rateLimits": [],
        }
        marks = [
            {"symbol": f"BTC-{e}-{k}-P", "markPrice": mark, "bidIV": "0", "askIV": "0", "markIV": iv, "delta": delta,
             "theta": "-50.1", "gamma": "0.00001", "vega": "110.2", "highPriceLimit": "20000", "lowPriceLimit": "5"}
            for e, k, iv, mark, delta in self.chain
        ]

        def index(request: RecordedRequest) -> Any:
            assert request.query.get("underlying") == "BTCUSDT", request.query
            return {"time": NOW_MS, "indexPrice": INDEX}

        return {
            ("GET", "/eapi/v1/exchangeInfo"): info,
            ("GET", "/eapi/v1/mark"): marks,
            ("GET", "/eapi/v1/index"): index,
        }


@dataclass
class OkxOptionsBook:
    """OKX BTC-USD options (coin-margined, 0.01 BTC a contract, marks in BTC, markVol a fraction)."""

    chain: list[tuple[str, int, str, str, str, str]] = field(default_factory=lambda: list(COIN_CHAIN))

    def _inst(self, expiry: str, strike: int, kind: str = "P") -> dict[str, Any]:
        return {
            "alias": "", "baseCcy": "", "category": "1", "ctMult": "1", "ctType": "", "ctVal": "0.01",
            "ctValCcy": "BTC", "expTime": str(EXPIRIES[expiry]), "instFamily": "BTC-USD",
            "instId": f"BTC-USD-{expiry}-{strike}-{kind}", "instType": "OPTION", "lever": "", "listTime": str(NOW_MS - 86_400_000 * 60),
            "lotSz": "1", "maxIcebergSz": "", "maxLmtAmt": "", "maxLmtSz": "10000", "maxMktAmt": "", "maxMktSz": "5000",
            "maxStopSz": "5000", "maxTriggerSz": "", "maxTwapSz": "", "minSz": "1", "optType": kind, "quoteCcy": "",
            "settleCcy": "BTC", "state": "live", "stk": str(strike), "tickSz": "0.0005", "uly": "BTC-USD",
        }

    def routes(self) -> dict[tuple[str, str], Any]:
        """Return the public v5 endpoints ccxt asks for the chain."""

        def instruments(request: RecordedRequest) -> Any:
            assert request.query.get("instType") == "OPTION", request.query
            if request.query.get("uly") != "BTC-USD":
                return {"code": "0", "msg": "", "data": []}  # this book lists BTC options only
            rows = [self._inst(e, k) for e, k, *_ in self.chain] + [self._inst("270129", 75000, "C")]
            return {"code": "0", "msg": "", "data": rows}

        def summary(request: RecordedRequest) -> Any:
            assert request.query.get("uly") == "BTC-USD", request.query
            return {"code": "0", "msg": "", "data": [
                {"askVol": "0", "bidVol": "0", "delta": str(float(delta) - float(mark)), "deltaBS": delta, "fwdPx": forward,
                 "gamma": "0.1", "gammaBS": "0.00001", "instId": f"BTC-USD-{e}-{k}-P", "instType": "OPTION",
                 "lever": "20", "markVol": iv, "realVol": "0", "theta": "-0.0004", "thetaBS": "-50.1",
                 "ts": str(NOW_MS), "uly": "BTC-USD", "vega": "0.002", "vegaBS": "110.2", "volLv": iv}
                for e, k, forward, iv, mark, delta in self.chain
            ]}

        def mark_price(request: RecordedRequest) -> Any:
            assert request.query.get("instType") == "OPTION", request.query
            return {"code": "0", "msg": "", "data": [
                {"instId": f"BTC-USD-{e}-{k}-P", "instType": "OPTION", "markPx": mark, "ts": str(NOW_MS)}
                for e, k, _, _, mark, _ in self.chain
            ]}

        def index(request: RecordedRequest) -> Any:
            return {"code": "0", "msg": "", "data": [
                {"instId": "BTC-USD", "idxPx": INDEX, "high24h": "91000", "low24h": "89000", "open24h": "89500",
                 "sodUtc0": "89600", "sodUtc8": "89700", "ts": str(NOW_MS)},
            ]}

        return {
            ("GET", "/api/v5/public/instruments"): instruments,
            ("GET", "/api/v5/public/opt-summary"): summary,
            ("GET", "/api/v5/public/mark-price"): mark_price,
            ("GET", "/api/v5/market/index-tickers"): index,
        }

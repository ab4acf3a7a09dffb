"""The Binance emulator's REST side: Binance's HTTP endpoints over the exchange, as unmodified ccxt calls them.

It owns the aiohttp application: the route table (USDⓈ-M `/fapi/`, COIN-M `/dapi/`, spot `/api/v3/`,
wallet `/sapi/`), the reading of each request's parameters and the refusals of malformed ones, Binance's
key, signature and timestamp checks, the request weight (`binance_limits`), the queue of injected
faults (what each does is `binance_faults`'), the request log, the shapes of Binance's answers and error bodies, and the test controls under `/_emulator/`.
What the exchange does with a request is `binance_exchange`'s: this module may NOT change the book but
through it. It imports neither the streams nor the options desk: they add their routes through
`route_installers`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from hedgebot.exchange.candles import MOST_PER_PAGE, TIMEFRAMES
from hedgebot.exchange.port import Candle
from hedgebot.testing.binance_answers import (
    BinanceError,
    bad_signature,
    decimal_param,
    duplicate_client_id,
    invalid_limit,
    invalid_order_type,
    invalid_side,
    invalid_symbol,
    key_refused,
    mandatory,
    no_such_order,
    plain,
    signed_by,
)
from hedgebot.testing.binance_book import Book, Position, SymbolSpec
from hedgebot.testing.binance_margin import leg_pnl
from hedgebot.testing.binance_exchange import Exchange
from hedgebot.testing.binance_faults import FAULT, FAULT_KINDS, Fault, fill_of, hold_or_drop, refusal_of, take_fault
from hedgebot.testing.binance_limits import WeightLimiter

D = Decimal
ZERO = D(0)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Emulator(Exchange):
    """The exchange served over HTTP: its book and clock (`Exchange`), faults, weights, and the aiohttp application.

    It extends the exchange rather than holding one because tests drive both through one object (they set
    its clock, its lookup lag and its book, and serve it): the exchange's concern stays in its own module.
    """

    def __init__(
        self,
        book: Book | None = None,
        *,
        state_path: Path | None = None,
        now: Callable[[], float] | None = None,
        clock_offset_seconds: float = 0.0,
    ) -> None:
        super().__init__(book, state_path=state_path, now=now, clock_offset_seconds=clock_offset_seconds)
        self.faults: list[Fault] = []
        # Requests answered "unknown" and carried out later: (due time, handler, request, params).
        self.deferred: list[tuple[float, Callable[..., Any], web.Request, dict[str, str]]] = []
        # Request weight per IP per minute, 429 past the limit, 418 for a client that does not back off.
        self.limiter = WeightLimiter()
        self.late_executions = 0  # requests answered "unknown" and carried out afterwards
        self.server_time_offset_ms = 0
        self.requests: list[tuple[str, str]] = []
        # Every request with the API key it came under and the exchange's time it arrived: who sent what, when.
        self.request_log: list[dict[str, Any]] = []
        # What adds routes to the application: the websocket side (hedgebot.testing.binance_streams), the options desk.
        self.route_installers: list[Callable[[web.UrlDispatcher], None]] = []

    def server_ms(self) -> int:
        """Return the server time that signed timestamps are checked against.

        ccxt stamps signed requests with the wall clock, so this is the wall clock plus the exchange's
        clock offset (and any injected skew), whatever clock drives the book.
        """
        return int((time.time() + self.clock_offset_seconds) * 1000) + self.server_time_offset_ms

    def inject(self, fault: Fault) -> None:
        """Queue a fault."""
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; one of {sorted(FAULT_KINDS)}")
        self.faults.append(fault)

    # ---- the application ------------------------------------------------------------

    def app(self) -> web.Application:
        """Return the aiohttp application."""
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        add_routes(r, {
            **self.clock_routes("/fapi/v1"), **self.clock_routes("/dapi/v1"), **self.clock_routes("/api/v3"),
            # COIN-M (/dapi/) on the same handlers as USDⓈ-M: one book, the contract saying linear or inverse.
            "GET /dapi/v1/exchangeInfo": self.futures_exchange_info,
            "GET /dapi/v1/premiumIndex": self.premium_index,
            "GET /dapi/v1/fundingRate": self.funding_rate_history,
            "GET /fapi/v1/fundingRate": self.funding_rate_history,
            "GET /dapi/v2/leverageBracket": self.signed(self.leverage_bracket),
            "GET /dapi/v1/positionSide/dual": self.signed(self.get_dual),
            "POST /dapi/v1/positionSide/dual": self.signed(self.post_dual),
            "POST /dapi/v1/marginType": self.signed(self.margin_type),
            "POST /dapi/v1/leverage": self.signed(self.leverage),
            "POST /dapi/v1/order": self.signed(self.futures_new_order),
            "GET /dapi/v1/order": self.signed(self.futures_get_order),
            "GET /dapi/v1/openOrders": self.signed(self.futures_open_orders),
            "GET /dapi/v1/allOrders": self.signed(self.futures_all_orders),
            "GET /dapi/v1/positionRisk": self.signed(self.position_risk),
            "GET /dapi/v1/account": self.signed(self.futures_account),
            "GET /dapi/v1/balance": self.signed(self.coinm_balance),
            "POST /dapi/v1/positionMargin": self.signed(self.position_margin),
            "GET /dapi/v1/positionMargin/history": self.signed(self.position_margin_history),
            "GET /dapi/v1/income": self.signed(self.income),
            "GET /fapi/v1/exchangeInfo": self.futures_exchange_info,
            "GET /fapi/v1/premiumIndex": self.premium_index,
            "GET /fapi/v1/klines": self.klines,
            "GET /fapi/v1/leverageBracket": self.signed(self.leverage_bracket),
            "GET /fapi/v1/positionSide/dual": self.signed(self.get_dual),
            "POST /fapi/v1/positionSide/dual": self.signed(self.post_dual),
            "GET /fapi/v1/multiAssetsMargin": self.signed(self.multi_assets),
            "GET /fapi/v1/symbolConfig": self.signed(self.symbol_config),
            "POST /fapi/v1/marginType": self.signed(self.margin_type),
            "POST /fapi/v1/leverage": self.signed(self.leverage),
            "POST /fapi/v1/order": self.signed(self.futures_new_order),
            "GET /fapi/v1/order": self.signed(self.futures_get_order),
            "GET /fapi/v1/openOrders": self.signed(self.futures_open_orders),
            "GET /fapi/v1/allOrders": self.signed(self.futures_all_orders),
            "GET /fapi/v3/positionRisk": self.signed(self.position_risk),
            "GET /fapi/v3/account": self.signed(self.futures_account),
            "POST /fapi/v1/positionMargin": self.signed(self.position_margin),
            "GET /fapi/v1/positionMargin/history": self.signed(self.position_margin_history),
            "GET /fapi/v1/income": self.signed(self.income),
            "GET /api/v3/exchangeInfo": self.spot_exchange_info,
            "GET /api/v3/account": self.signed(self.spot_account),
            "POST /api/v3/order": self.signed(self.spot_new_order),
            "GET /api/v3/order": self.signed(self.spot_get_order),
            "GET /api/v3/allOrders": self.signed(self.spot_all_orders),
            "POST /sapi/v1/asset/transfer": self.signed(self.new_transfer),
            "GET /sapi/v1/asset/transfer": self.signed(self.transfer_history),
            "GET /sapi/v1/account/apiRestrictions": self.signed(self.api_restrictions),
            "GET /sapi/v1/portfolio/account": self.signed(self.portfolio_account),
        })
        for install in self.route_installers:
            install(r)
        add_routes(r, {
            "GET /_emulator/state": self.control_state,
            "GET /_emulator/requests": self.control_requests,
            "POST /_emulator/mark": self.control_mark,
            "POST /_emulator/fault": self.control_fault,
            "GET /_emulator/faults": self.control_faults,
            "POST /_emulator/deposit": self.control_deposit,
            "POST /_emulator/account": self.control_account,
            "POST /_emulator/funding": self.control_funding,
            "POST /_emulator/adl": self.control_adl,
            "POST /_emulator/deliver": self.control_deliver,
        })
        return app

    def clock_routes(self, prefix: str) -> dict[str, Handler]:
        """Return the routes of the server time and the ping under an API's prefix (e.g. /fapi/v1)."""
        return {f"GET {prefix}/time": self.time, f"GET {prefix}/ping": self.ping}

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if not request.path.startswith("/_emulator/"):
            self.request_log.append({
                "method": request.method, "path": request.path, "key": request.headers.get("X-MBX-APIKEY"),
                "at": self.now_ms() / 1000,
            })
        await self.run_deferred()
        self.age_quarterlies()
        ip = request.remote or "unknown"
        verdict = self.limiter.judge(ip, request.method, request.path, "symbol" in request.query, self.now_ms() / 1000)
        if verdict.status != 200:
            return error_response(BinanceError(verdict.code, verdict.msg, verdict.status), headers=verdict.headers)
        response = await self._answer(request, handler)
        if not response.prepared:
            response.headers.update(verdict.headers)
        return response

    async def _answer(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        fault = take_fault(self.faults, request)
        request[FAULT] = fault
        if fault is not None:
            if fault.kind == "rate_limit":
                self.limiter.note_429(request.remote or "unknown", self.now_ms() / 1000, fault.retry_after)
                return error_response(BinanceError(-1003, "Too many requests; current limit is 2400 requests per minute.", 429),
                                       headers={"Retry-After": str(fault.retry_after)})
            if fault.kind == "server_error":
                return web.Response(status=503, text="Service Unavailable")
            refusal = refusal_of(fault)
            if refusal is not None:
                return error_response(refusal)
            if fault.kind in {"timeout_before", "drop_before"}:
                await hold_or_drop(request, fault)
        try:
            response = await handler(request)
        except BinanceError as exc:
            response = error_response(exc)
        if fault is not None and fault.kind in {"timeout_after", "drop_after"}:
            await hold_or_drop(request, fault)
        return response

    async def run_deferred(self) -> None:
        """Carry out the requests answered "unknown" whose time has come (errors are lost, as the client never hears)."""
        now = self._now()
        due = [d for d in self.deferred if d[0] <= now]
        self.deferred = [d for d in self.deferred if d[0] > now]
        clock = self._now
        for at, handler, request, params in sorted(due, key=lambda d: d[0]):
            # Carried out at its due time, not at the request that happens to notice it: its stamps and
            # its lookup lag count from then.
            self._now = lambda at=at: at
            self.late_executions += 1
            try:
                await handler(request, params)
            except BinanceError:
                pass
            finally:
                self._now = clock
            self.save()

    # ---- signing ----------------------------------------------------------------------

    def signed(self, handler: Callable[[web.Request, dict[str, str]], Any]) -> Callable[[web.Request], Any]:
        """Wrap a handler with Binance's key, signature and timestamp checks."""

        async def checked(request: web.Request) -> web.StreamResponse:
            api_key = request.headers.get("X-MBX-APIKEY")
            key = self.book.keys.get(api_key or "")
            if key is None or (not key.futures and request.path.startswith(("/fapi/", "/dapi/"))):
                raise key_refused()
            query = request.query_string
            body = (await request.text()) if request.can_read_body else ""
            total = query + body if not (query and body) else f"{query}{body}"
            payload, sep, signature = total.rpartition("&signature=")
            if not sep:
                raise BinanceError(-1102, mandatory("signature"))
            if not signed_by(key.secret, payload, signature):
                raise bad_signature()
            params = dict(parse_qsl(payload, keep_blank_values=True))
            try:
                stamp = int(params["timestamp"])
                window = int(params.get("recvWindow", "5000"))
            except (KeyError, ValueError):
                raise BinanceError(-1102, mandatory("timestamp")) from None
            if self.request_log and self.request_log[-1]["path"] == request.path:
                self.request_log[-1]["recv_window"] = window
                self.request_log[-1]["signed_at"] = stamp / 1000
            if window > 60_000:
                raise BinanceError(-1131, "recvWindow must be less than 60000")
            server = self.server_ms()
            if stamp > server + 1000 or server - stamp > window:
                raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
            fault = request.get(FAULT)
            if fault is not None and fault.kind == "execute_later":
                self.deferred.append((self._now() + fault.delay, handler, request, params))
                if fault.retry_after:
                    raise BinanceError(-1007, "Timeout waiting for response from backend server. Send status unknown; execution status unknown.")
                return web.Response(status=503, text="Service Unavailable")
            answer = await handler(request, params)
            if request.method != "GET":
                self.save()
            return web.json_response(answer, dumps=json.dumps)

        return checked

    # ---- public ---------------------------------------------------------------------------

    async def ping(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/ping, /api/v3/ping."""
        return web.json_response({})

    async def time(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/time, /api/v3/time."""
        return web.json_response({"serverTime": self.server_ms()})

    def _spec(self, symbol: str | None, request: web.Request | None = None) -> SymbolSpec:
        """Return a symbol's contract, refusing one the requested API does not list (USDⓈ-M's on /dapi/ and back)."""
        spec = self.book.symbols.get(symbol or "")
        if spec is None or (request is not None and spec.api != self._family(request) and not (
            self._family(request) == "api" and not spec.inverse
        )):
            raise invalid_symbol()
        return spec

    @staticmethod
    def _family(request: web.Request) -> str:
        """Return the API family a request went to: "fapi", "dapi", "api" (spot) or "sapi"."""
        return request.path.split("/", 2)[1]

    def _listed(self, request: web.Request) -> list[str]:
        """Return the symbols the requested futures API lists."""
        family = self._family(request)
        return [sym for sym, spec in self.book.symbols.items() if spec.api == family]

    @staticmethod
    def _decimals(step: str) -> int:
        return max(0, -D(step).normalize().as_tuple().exponent)  # type: ignore[operator]

    async def futures_exchange_info(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/exchangeInfo (and /dapi/v1/exchangeInfo, see `coinm_exchange_info`)."""
        if self._family(request) == "dapi":
            return self.coinm_exchange_info()
        symbols = []
        for sym in self._listed(request):
            spec = self.book.symbols[sym]
            symbols.append({
                "symbol": sym, "pair": sym.split("_")[0], "contractType": spec.contract_type, "deliveryDate": spec.delivery_ms,
                "onboardDate": 1569398400000, "status": spec.status, "maintMarginPercent": "2.5000",
                "requiredMarginPercent": "5.0000", "baseAsset": spec.base, "quoteAsset": spec.quote,
                "marginAsset": spec.quote, "pricePrecision": self._decimals(spec.tick),
                "quantityPrecision": self._decimals(spec.step), "baseAssetPrecision": 8, "quotePrecision": 8,
                "underlyingType": "COIN", "underlyingSubType": ["PoW"], "settlePlan": 0, "triggerProtect": "0.0500",
                "liquidationFee": "0.012500", "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": "556.80", "maxPrice": "4529764", "tickSize": spec.tick},
                    {"filterType": "LOT_SIZE", "stepSize": spec.step, "maxQty": "1000", "minQty": spec.min_qty},
                    {"filterType": "MARKET_LOT_SIZE", "stepSize": spec.step, "maxQty": "120", "minQty": spec.min_qty},
                    {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                    {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                    {"filterType": "MIN_NOTIONAL", "notional": spec.min_notional},
                    {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500", "multiplierDecimal": "4"},
                ],
                "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
                "permissionSets": ["GRID", "COPY"],
            })
        return web.json_response({
            "timezone": "UTC", "serverTime": self.server_ms(), "futuresType": "U_MARGINED",
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400}],
            "exchangeFilters": [], "assets": [], "symbols": symbols,
        })

    def coinm_exchange_info(self) -> web.Response:
        """Answer GET /dapi/v1/exchangeInfo: contracts of a face value in USD (contractSize), margined in the coin."""
        symbols = []
        for sym, spec in self.book.symbols.items():
            if not spec.inverse:
                continue
            symbols.append({
                "symbol": sym, "pair": sym.split("_")[0], "contractType": spec.contract_type, "deliveryDate": spec.delivery_ms,
                "onboardDate": 1597042800000, "contractStatus": spec.status, "contractSize": int(D(spec.contract_size)),
                "marginAsset": spec.settle, "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
                "baseAsset": spec.base, "quoteAsset": spec.quote, "pricePrecision": self._decimals(spec.tick),
                "quantityPrecision": self._decimals(spec.step), "baseAssetPrecision": 8, "quotePrecision": 8,
                "equalQtyPrecision": 4, "maxMoveOrderLimit": 10000, "triggerProtect": "0.0500",
                "underlyingType": "COIN", "underlyingSubType": [], "liquidationFee": "0.015000", "marketTakeBound": "0.05",
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": "1000", "maxPrice": "4529764", "tickSize": spec.tick},
                    {"filterType": "LOT_SIZE", "minQty": spec.min_qty, "maxQty": "1000000", "stepSize": spec.step},
                    {"filterType": "MARKET_LOT_SIZE", "minQty": spec.min_qty, "maxQty": "60000", "stepSize": spec.step},
                    {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                    {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500", "multiplierDecimal": "4"},
                ],
                "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            })
        return web.json_response({
            "timezone": "UTC", "serverTime": self.server_ms(),
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
                           {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200}],
            "exchangeFilters": [], "symbols": symbols,
        })

    async def spot_exchange_info(self, request: web.Request) -> web.Response:
        """GET /api/v3/exchangeInfo (the spot pairs: the USDⓈ-M symbols' names)."""
        symbols = []
        for sym, spec in self.book.symbols.items():
            if spec.inverse:
                continue
            symbols.append({
                "symbol": sym, "status": "TRADING", "baseAsset": spec.base, "baseAssetPrecision": 8,
                "quoteAsset": spec.quote, "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
                "quoteCommissionPrecision": 8, "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
                "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True, "quoteOrderQtyMarketAllowed": True,
                "allowTrailingStop": True, "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
                    {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
                    {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
                     "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
                ],
                "permissions": [], "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
            })
        return web.json_response({"timezone": "UTC", "serverTime": self.server_ms(), "rateLimits": [], "exchangeFilters": [], "symbols": symbols})

    async def premium_index(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/premiumIndex (mark price and funding rate); /dapi/v1/premiumIndex answers a list, with the pair."""
        symbol = request.query.get("symbol")
        if self._family(request) == "dapi":
            wanted = [symbol] if symbol else self._listed(request)
            rows = []
            for sym in wanted:
                self._spec(sym, request)
                rows.append({**self.premium(sym), "pair": sym.split("_")[0]})
            return web.json_response(rows)
        if symbol:
            self._spec(symbol, request)
            return web.json_response(self.premium(symbol))
        return web.json_response([self.premium(s) for s in self._listed(request)])

    async def klines(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/klines: candles of the marks set, from startTime, the one still forming last (as Binance serves it)."""
        q = request.query
        symbol = q.get("symbol")
        self._spec(symbol, request)
        interval = q.get("interval", "")
        if interval not in TIMEFRAMES:
            raise BinanceError(-1120, "Invalid interval.")
        try:
            limit = int(q.get("limit", "500"))
            start = int(q["startTime"]) / 1000 if "startTime" in q else 0.0
        except ValueError:
            raise BinanceError(-1100, "Illegal characters found in a parameter.") from None
        if not 1 <= limit <= MOST_PER_PAGE:
            raise invalid_limit()
        now = self.now_ms() / 1000
        length = TIMEFRAMES[interval]
        # Closed candles, then the forming one (its close is the mark now): Binance hands both out.
        rows = self.candles.candles(str(symbol), interval, start, MOST_PER_PAGE, now)
        forming = now - now % length
        if forming >= start and (not rows or rows[-1].start < forming):
            mark = D(self.book.symbols[str(symbol)].mark)
            seen = self.candles.candles(str(symbol), "1m", forming, MOST_PER_PAGE, now + 60)
            rows.append(Candle(
                forming, seen[0].open if seen else mark, max([mark, *(c.high for c in seen)]),
                min([mark, *(c.low for c in seen)]), mark,
            ))
        out = [
            [int(c.start * 1000), plain(c.open), plain(c.high), plain(c.low), plain(c.close), "0", int((c.start + length) * 1000) - 1,
             "0", 0, "0", "0", "0"]
            for c in rows[:limit]
        ]
        return web.json_response(out)

    async def funding_rate_history(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/fundingRate and /dapi/v1/fundingRate: the funding rates settled, from the income the book paid."""
        q = request.query
        symbol = q.get("symbol")
        self._spec(symbol, request)
        try:
            limit = int(q.get("limit", "100"))
            start = int(q["startTime"]) if "startTime" in q else None
            end = int(q["endTime"]) if "endTime" in q else None
        except ValueError:
            raise BinanceError(-1100, "Illegal characters found in a parameter.") from None
        if not 1 <= limit <= 1000:
            raise invalid_limit()
        rows = [r for r in self.book.funding_history if r["symbol"] == symbol
                and (start is None or r["fundingTime"] >= start) and (end is None or r["fundingTime"] <= end)]
        # From startTime the first `limit` settlements; without it the most recent `limit` (Binance's fundingRate).
        return web.json_response(rows[:limit] if start is not None else rows[-limit:])

    # ---- futures account settings ------------------------------------------------------------

    async def leverage_bracket(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v1/leverageBracket; /dapi/v2/leverageBracket gives COIN-M's tiers in coins (qtyFloor, qtyCap)."""
        wanted = [p["symbol"]] if p.get("symbol") else self._listed(request)
        out = []
        for sym in wanted:
            spec = self._spec(sym, request)
            if spec.inverse:
                out.append({"symbol": sym, "notionalCoef": 1.0, "brackets": [
                    {"bracket": i + 1, "initialLeverage": lev, "qtyCap": cap, "qtyFloor": floor,
                     "maintMarginRatio": float(ratio), "cum": float(cum)}
                    for i, (floor, cap, ratio, cum, lev) in enumerate(spec.brackets)
                ]})
                continue
            out.append({
                "symbol": sym, "notionalCoef": 1.0,
                "brackets": [
                    {"bracket": i + 1, "initialLeverage": lev, "notionalCap": cap, "notionalFloor": floor,
                     "maintMarginRatio": float(ratio), "cum": float(cum)}
                    for i, (floor, cap, ratio, cum, lev) in enumerate(spec.brackets)
                ],
            })
        return out

    async def get_dual(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v1/positionSide/dual (and /dapi/: COIN-M keeps its own mode)."""
        return {"dualSidePosition": self.dual(self._family(request))}

    async def post_dual(self, request: web.Request, p: dict[str, str]) -> Any:
        """POST /fapi/v1/positionSide/dual."""
        wanted = p.get("dualSidePosition", "").lower() == "true"
        self.set_dual(self._family(request), wanted)
        return {"code": 200, "msg": "success"}

    async def multi_assets(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v1/multiAssetsMargin."""
        return {"multiAssetsMargin": self.book.multi_assets}

    async def symbol_config(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v1/symbolConfig."""
        wanted = [p["symbol"]] if p.get("symbol") else self._listed(request)
        return [
            {"symbol": s, "marginType": self._spec(s, request).margin_type, "isAutoAddMargin": False,
             "leverage": self._spec(s, request).leverage, "maxNotionalValue": str(self._max_notional(self._spec(s, request)))}
            for s in wanted
        ]

    @staticmethod
    def _max_notional(spec: SymbolSpec) -> int:
        allowed = [cap for _, cap, _, _, lev in spec.brackets if lev >= spec.leverage]
        return max(allowed) if allowed else 0

    async def margin_type(self, request: web.Request, p: dict[str, str]) -> Any:
        """POST /fapi/v1/marginType."""
        spec = self._spec(p.get("symbol"), request)
        wanted = p.get("marginType", "").upper()
        if wanted not in {"ISOLATED", "CROSSED"}:
            raise BinanceError(-1116, "Invalid marginType.")
        self.set_margin_type(spec, p["symbol"], wanted)
        return {"code": 200, "msg": "success"}

    async def leverage(self, request: web.Request, p: dict[str, str]) -> Any:
        """POST /fapi/v1/leverage."""
        spec = self._spec(p.get("symbol"), request)
        try:
            value = int(p["leverage"])
        except (KeyError, ValueError):
            raise BinanceError(-1102, mandatory("leverage")) from None
        self.set_leverage(spec, value)
        cap = "maxQty" if spec.inverse else "maxNotionalValue"  # COIN-M's cap is in coins
        return {"leverage": value, cap: str(self._max_notional(spec)), "symbol": p["symbol"]}

    # ---- futures trading ----------------------------------------------------------------------

    async def futures_new_order(self, request: web.Request, p: dict[str, str]) -> Any:
        """POST /fapi/v1/order and /dapi/v1/order (MARKET only, filled at once at the mark; COIN-M quantities in contracts)."""
        sym = p.get("symbol", "")
        spec = self._spec(sym, request)
        dual = self.dual(spec.api)
        side = p.get("side", "").upper()
        if side not in {"BUY", "SELL"}:
            raise invalid_side()
        if p.get("type", "").upper() != "MARKET":
            raise invalid_order_type()
        if spec.status != "TRADING":
            # Binance: a contract pending trading, or in pre-delivery, delivery or delivered, takes no order.
            raise BinanceError(-4108, "Symbol is on delivering or delivered or settling or closed or pre-trading.")
        position_side = p.get("positionSide", "BOTH").upper()
        if "reduceOnly" in p and dual:
            raise BinanceError(-1106, "Parameter 'reduceonly' sent when not required.")
        if dual != (position_side in {"LONG", "SHORT"}):
            raise BinanceError(-4061, "Order's position side does not match user's setting.")
        cid = p.get("newClientOrderId") or f"emu{self.next_id()}"
        key = f"futures|{sym}|{cid}"
        if self.is_open(key):
            # Binance keeps newClientOrderId unique among open orders only: a filled one's id is free again.
            raise duplicate_client_id()
        (qty,) = decimal_param(p, "quantity")
        step = D(spec.step)
        if qty <= 0 or qty % step != 0:
            raise BinanceError(-1111, "Precision is over the maximum defined for this asset.")
        if qty < D(spec.min_qty):
            raise BinanceError(-1013, "Filter failure: LOT_SIZE")
        reduce_only = p.get("reduceOnly", "false").lower() == "true"
        return _as_placed(self.place_futures_market(sym, cid, side, position_side, qty, reduce_only, fill_of(request)))

    async def futures_get_order(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v1/order (by origClientOrderId or orderId)."""
        sym = p.get("symbol", "")
        self._spec(sym, request)
        found = self.find_futures_order(sym, p.get("origClientOrderId"), p.get("orderId"))
        if found is None:
            raise no_such_order()
        return _as_queried(found)

    def _history(self, request: web.Request, market: str, p: dict[str, str], max_window_ms: int) -> list[dict[str, Any]]:
        """Return the visible orders of one symbol in [startTime, endTime], oldest first, at most `limit` (Binance allOrders)."""
        sym = p.get("symbol", "")
        self._spec(sym, request)
        now = self.now_ms()
        end = int(p.get("endTime") or now)
        start = int(p.get("startTime") or end - max_window_ms)
        if end - start > max_window_ms:
            raise BinanceError(-1127, "More than 24 hours between startTime and endTime." if market == "spot" else "The time between startTime and endTime cannot be longer than 7 days.")
        limit = int(p.get("limit") or 500)
        if not 1 <= limit <= 1000:
            raise invalid_limit()
        return self.orders_between(market, sym, start, end)[:limit]

    async def futures_all_orders(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v1/allOrders (symbol, startTime/endTime at most 7 days apart, limit <= 1000)."""
        return self._history(request, "futures", p, 7 * 24 * 3_600_000)

    async def spot_all_orders(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /api/v3/allOrders (symbol, startTime/endTime at most 24 hours apart, limit <= 1000)."""
        return [self._spot_view(o) for o in self._history(request, "spot", p, 24 * 3_600_000)]

    async def futures_open_orders(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v1/openOrders."""
        return list(self.book.open_orders)

    def _risk_row(self, sym: str, side: str, pos: Position) -> dict[str, Any]:
        """Return one leg as positionRisk shows it (USDⓈ-M v3; COIN-M v1 in contracts, with its value in coins)."""
        spec = self.book.symbols[sym]
        amount = D(pos.amount)
        mark = D(spec.mark)
        signed = -amount if side == "SHORT" else amount
        pnl = leg_pnl(spec, side, pos, mark)
        value = spec.value(abs(amount), mark)
        notional = value if signed >= 0 else -value
        isolated = spec.margin_type == "ISOLATED"
        initial = value / spec.leverage
        liquidation = plain(self.liquidation_price(sym, side))
        if spec.inverse:
            return {
                "symbol": sym, "positionAmt": plain(signed), "entryPrice": pos.entry, "breakEvenPrice": pos.entry,
                "markPrice": spec.mark, "unRealizedProfit": plain(pnl), "liquidationPrice": liquidation,
                "leverage": str(spec.leverage), "maxQty": str(self._max_notional(spec)),
                "marginType": "isolated" if isolated else "cross",
                "isolatedMargin": plain(D(pos.isolated_wallet) + pnl) if isolated else "0",
                "isAutoAddMargin": "false", "positionSide": side, "notionalValue": plain(notional),
                "isolatedWallet": pos.isolated_wallet if isolated else "0", "updateTime": pos.update_time,
            }
        return {
            "symbol": sym, "positionSide": side, "positionAmt": plain(signed), "entryPrice": pos.entry,
            "breakEvenPrice": pos.entry, "markPrice": spec.mark, "unRealizedProfit": plain(pnl),
            "liquidationPrice": liquidation, "isolatedMargin": plain(D(pos.isolated_wallet) + pnl) if isolated else "0",
            "notional": plain(notional), "marginAsset": spec.settle,
            "isolatedWallet": pos.isolated_wallet if isolated else "0", "initialMargin": plain(initial),
            "maintMargin": plain(value * D(spec.brackets[0][2])), "positionInitialMargin": plain(initial),
            "openOrderInitialMargin": "0", "adl": 1, "bidNotional": "0", "askNotional": "0",
            "updateTime": pos.update_time,
        }

    def _risk_rows(self, api: str = "fapi") -> list[dict[str, Any]]:
        """Return the legs with a position of one API family (USDⓈ-M's v3 lists only those)."""
        rows = []
        for key, pos in self.book.positions.items():
            sym, _, side = key.partition("|")
            if D(pos.amount) != 0 and self.book.symbols[sym].api == api:
                rows.append(self._risk_row(sym, side, pos))
        return rows

    async def position_risk(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v3/positionRisk (only legs with a position, as v3 does); /dapi/v1/positionRisk (every leg of every contract)."""
        if self._family(request) == "dapi":
            sides = ("LONG", "SHORT") if self.book.coinm_dual_side else ("BOTH",)
            # COIN-M filters by pair and margin asset (it has no symbol parameter).
            wanted = [sym for sym in self._listed(request)
                      if (not p.get("pair") or sym.split("_")[0] == p["pair"])
                      and (not p.get("marginAsset") or self.book.symbols[sym].settle == p["marginAsset"])]
            return [self._risk_row(sym, side, self.position(sym, side)) for sym in wanted for side in sides]
        rows = self._risk_rows()
        if p.get("symbol"):
            rows = [r for r in rows if r["symbol"] == p["symbol"]]
        return rows

    def _assets(self, api: str) -> list[dict[str, Any]]:
        """Return the wallet's assets as the account endpoints show them: wallet with isolated margin, PnL, free."""
        assets = []
        now = self.now_ms()
        rows = self._risk_rows(api)
        for asset, cash in self.wallet(api).items():
            isolated = sum(
                (D(pos.isolated_wallet) for key, pos in self.book.positions.items()
                 for spec in [self.book.symbols[key.partition("|")[0]]] if spec.api == api and spec.settle == asset),
                ZERO,
            )
            wallet = D(cash) + isolated
            available = self.available(api, asset)
            pnl = sum((D(r["unRealizedProfit"]) for r in rows if self.book.symbols[r["symbol"]].settle == asset), ZERO)
            assets.append({
                "asset": asset, "walletBalance": plain(wallet), "unrealizedProfit": plain(pnl), "marginBalance": plain(wallet + pnl),
                "maintMargin": "0", "initialMargin": plain(self.cross_used(api, asset)), "positionInitialMargin": "0",
                "openOrderInitialMargin": "0", "crossWalletBalance": cash, "crossUnPnl": "0",
                "availableBalance": plain(available), "maxWithdrawAmount": plain(available), "updateTime": now,
            })
        return assets

    async def futures_account(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v3/account; GET /dapi/v1/account (the COIN-M wallet's coins, each its own margin)."""
        if self._family(request) == "dapi":
            return {
                "assets": self._assets("dapi"), "canDeposit": True, "canTrade": True, "canWithdraw": True, "feeTier": 0,
                "updateTime": self.now_ms(),
                "positions": [{k: r[k] for k in ("symbol", "positionAmt", "unRealizedProfit", "isolatedWallet",
                                                 "positionSide", "leverage", "entryPrice", "updateTime")}
                              | {"initialMargin": "0", "maintMargin": "0", "positionInitialMargin": "0",
                                 "openOrderInitialMargin": "0", "isolated": r["marginType"] == "isolated", "maxQty": r["maxQty"]}
                              for r in self._risk_rows("dapi")],
            }
        assets = self._assets("fapi")
        usdt = next((a for a in assets if a["asset"] == "USDT"), None)
        total = usdt or {"walletBalance": "0", "unrealizedProfit": "0", "marginBalance": "0", "availableBalance": "0"}
        return {
            "totalInitialMargin": "0", "totalMaintMargin": "0", "totalWalletBalance": total["walletBalance"],
            "totalUnrealizedProfit": total["unrealizedProfit"], "totalMarginBalance": total["marginBalance"],
            "totalPositionInitialMargin": "0", "totalOpenOrderInitialMargin": "0",
            "totalCrossWalletBalance": total["walletBalance"], "totalCrossUnPnl": "0",
            "availableBalance": total["availableBalance"], "maxWithdrawAmount": total["availableBalance"],
            "assets": assets,
            "positions": [{"symbol": r["symbol"], "positionSide": r["positionSide"], "positionAmt": r["positionAmt"],
                           "unrealizedProfit": r["unRealizedProfit"], "isolatedMargin": r["isolatedMargin"],
                           "notional": r["notional"], "isolatedWallet": r["isolatedWallet"],
                           "initialMargin": r["initialMargin"], "maintMargin": r["maintMargin"],
                           "updateTime": r["updateTime"]} for r in self._risk_rows()],
        }

    async def coinm_balance(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /dapi/v1/balance: each coin of the COIN-M wallet."""
        return [
            {"accountAlias": "SgsR", "asset": a["asset"], "balance": a["walletBalance"], "withdrawAvailable": a["maxWithdrawAmount"],
             "crossWalletBalance": a["crossWalletBalance"], "crossUnPnl": a["unrealizedProfit"],
             "availableBalance": a["availableBalance"], "updateTime": a["updateTime"]}
            for a in self._assets("dapi")
        ]

    async def position_margin(self, request: web.Request, p: dict[str, str]) -> Any:
        """POST /fapi/v1/positionMargin (type 1 add, 2 reduce; isolated legs only)."""
        sym = p.get("symbol", "")
        spec = self._spec(sym, request)
        side = p.get("positionSide", "BOTH").upper()
        if self.dual(spec.api) != (side in {"LONG", "SHORT"}):
            raise BinanceError(-4061, "Order's position side does not match user's setting.")
        try:
            amount = D(p["amount"])
            kind = int(p["type"])
        except (KeyError, ValueError, ArithmeticError):
            raise BinanceError(-1102, mandatory("amount")) from None
        self.adjust_isolated_margin(sym, side, amount, kind)
        return {"amount": float(amount), "code": 200, "msg": "Successfully modify position margin.", "type": kind}

    async def position_margin_history(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v1/positionMargin/history."""
        sym = p.get("symbol")
        self._spec(sym, request)
        start = int(p.get("startTime", "0"))
        end = int(p.get("endTime", str(2**62)))
        rows = [
            r for r in self.book.margin_history
            if r["symbol"] == sym and start <= r["time"] <= end and (not p.get("type") or str(r["type"]) == p["type"])
        ]
        return rows[: int(p.get("limit", "500"))]

    async def income(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v1/income and /dapi/v1/income (each its own family's contracts; COIN-M's in coins)."""
        start = int(p.get("startTime", "0"))
        end = int(p.get("endTime", str(2**62)))
        listed = set(self._listed(request))
        return [
            r for r in self.book.income
            if r["symbol"] in listed and (not p.get("symbol") or r["symbol"] == p["symbol"])
            and (not p.get("incomeType") or r["incomeType"] == p["incomeType"])
            and start <= r["time"] <= end
        ][: int(p.get("limit", "100"))]

    # ---- spot --------------------------------------------------------------------------------

    async def spot_account(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /api/v3/account."""
        return {
            "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000", "seller": "0.00000000"},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": self.now_ms(), "accountType": "SPOT",
            "balances": [{"asset": a, "free": v, "locked": "0"} for a, v in self.book.spot.items()],
            "permissions": ["SPOT"], "uid": 354937868,
        }

    async def spot_new_order(self, request: web.Request, p: dict[str, str]) -> Any:
        """POST /api/v3/order (MARKET only, filled at the mark less the spot fee)."""
        sym = p.get("symbol", "")
        spec = self._spec(sym, request)
        side = p.get("side", "").upper()
        if p.get("type", "").upper() != "MARKET" or side not in {"BUY", "SELL"}:
            raise invalid_order_type()
        cid = p.get("newClientOrderId") or f"emu{self.next_id()}"
        key = f"spot|{sym}|{cid}"
        if self.is_open(key):
            # Spot accepts a reused newClientOrderId once the earlier order is no longer open.
            raise BinanceError(-2010, "Duplicate order sent.")
        (qty,) = decimal_param(p, "quantity")
        return self.place_spot_market(sym, cid, side, qty, fill_of(request))

    async def spot_get_order(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /api/v3/order."""
        sym = p.get("symbol", "")
        self._spec(sym, request)
        found = self.find_spot_order(sym, p.get("origClientOrderId"))
        if found is None:
            raise no_such_order()
        return self._spot_view(found)

    @staticmethod
    def _spot_view(found: dict[str, Any]) -> dict[str, Any]:
        """Return a spot order as GET /api/v3/order and allOrders show it."""
        return {
            **{k: found[k] for k in ("symbol", "orderId", "orderListId", "clientOrderId", "price", "origQty",
                                     "executedQty", "cummulativeQuoteQty", "status", "timeInForce", "type", "side")},
            "stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": found["time"], "updateTime": found["updateTime"],
            "isWorking": True, "workingTime": found["time"], "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    # ---- wallet -------------------------------------------------------------------------------

    async def new_transfer(self, request: web.Request, p: dict[str, str]) -> Any:
        """POST /sapi/v1/asset/transfer (MAIN_UMFUTURE, UMFUTURE_MAIN, and COIN-M's MAIN_CMFUTURE, CMFUTURE_MAIN)."""
        kind = p.get("type")
        asset = p.get("asset", "")
        (amount,) = decimal_param(p, "amount")
        if amount <= 0:
            raise BinanceError(-1102, mandatory("amount"))
        return {"tranId": self.transfer(kind, asset, amount)}

    async def transfer_history(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /sapi/v1/asset/transfer."""
        start = int(p.get("startTime", "0"))
        end = int(p.get("endTime", str(2**62)))
        rows = [r for r in self.book.transfers if r["type"] == p.get("type") and start <= r["timestamp"] <= end]
        rows.sort(key=lambda r: r["timestamp"], reverse=True)
        return {"total": len(rows), "rows": rows[: int(p.get("size", "10"))]}

    async def api_restrictions(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /sapi/v1/account/apiRestrictions."""
        key = self.book.keys[request.headers["X-MBX-APIKEY"]]
        return {
            "ipRestrict": key.ip_restrict, "createTime": 1623840271000, "enableInternalTransfer": False,
            "enableFutures": key.futures, "enablePortfolioMarginTrading": False, "enableVanillaOptions": False,
            "permitsUniversalTransfer": True, "enableReading": True, "enableSpotAndMarginTrading": True,
            "enableWithdrawals": key.can_withdraw, "enableMargin": False,
        }

    async def portfolio_account(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /sapi/v1/portfolio/account (answers only for portfolio-margin accounts)."""
        if not self.book.portfolio_margin:
            raise BinanceError(-21001, "Request ID is not a Portfolio Margin Account.")
        return {"uniMMR": "5167.92171923", "accountEquity": "122607.35137903", "actualEquity": "73.47428058",
                "accountMaintMargin": "23.72469206", "accountStatus": "NORMAL", "accountType": "PM_1"}

    # ---- control ---------------------------------------------------------------------------------

    async def control_state(self, request: web.Request) -> web.Response:
        """GET /_emulator/state: the whole book."""
        return web.json_response(self.book.to_json())

    async def control_requests(self, request: web.Request) -> web.Response:
        """GET /_emulator/requests: every request (method, path, API key, arrival time) and every order carried out."""
        return web.json_response({"requests": self.request_log, "executions": self.executions})

    async def control_mark(self, request: web.Request) -> web.Response:
        """POST /_emulator/mark {"symbol": "BTCUSDT", "price": "51000"}."""
        data = await request.json()
        self.set_mark(data["symbol"], D(str(data["price"])))
        return web.json_response({"ok": True})

    async def control_faults(self, request: web.Request) -> web.Response:
        """GET /_emulator/faults: the injected faults not yet taken, each with the requests it still waits for."""
        return web.json_response({"faults": [dataclasses.asdict(f) for f in self.faults]})

    async def control_fault(self, request: web.Request) -> web.Response:
        """POST /_emulator/fault {"kind": ..., "path": ..., "method": ..., "count": ..., "delay": ...}."""
        data = await request.json()
        try:
            self.inject(Fault(**data))
        except (TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def control_deposit(self, request: web.Request) -> web.Response:
        """POST /_emulator/deposit {"wallet": "spot"|"futures"|"coinm", "asset": "BTC", "amount": "1"}."""
        data = await request.json()
        self.deposit(data["wallet"], data["asset"], D(str(data["amount"])))
        return web.json_response({"ok": True})

    async def control_account(self, request: web.Request) -> web.Response:
        """POST /_emulator/account {"dual_side", "coinm_dual_side", "multi_assets", "portfolio_margin": bool, "server_time_offset_ms": int}."""
        data = await request.json()
        for name in ("dual_side", "coinm_dual_side", "multi_assets", "portfolio_margin"):
            if name in data:
                setattr(self.book, name, bool(data[name]))
        if "server_time_offset_ms" in data:
            self.server_time_offset_ms = int(data["server_time_offset_ms"])
        self.save()
        return web.json_response({"ok": True})

    async def control_funding(self, request: web.Request) -> web.Response:
        """POST /_emulator/funding {"symbol": "BTCUSDT", "rate": "0.0001"}: settle funding now."""
        data = await request.json()
        self.settle_funding(data["symbol"], D(str(data["rate"])) if "rate" in data else None)
        return web.json_response({"ok": True})


    async def control_deliver(self, request: web.Request) -> web.Response:
        """POST /_emulator/deliver {"symbol": "BTCUSD_260925", "price": "61000"}: settle a delivery contract now."""
        data = await request.json()
        try:
            settled = self.deliver(data["symbol"], D(str(data["price"])) if "price" in data else None)
        except (KeyError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"settled": [plain(p) for p in settled]})

    async def control_adl(self, request: web.Request) -> web.Response:
        """POST /_emulator/adl {"symbol": "BTCUSDT", "side": "SHORT", "amount": "0.1"}: auto-deleverage a profitable leg."""
        data = await request.json()
        try:
            order = self.auto_deleverage(data["symbol"], data["side"], D(str(data["amount"])) if "amount" in data else None)
        except (KeyError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(order)


def _as_placed(order: dict[str, Any]) -> dict[str, Any]:
    """Return a futures order as POST /fapi/v1/order answers it: no `time` (the query answer has it)."""
    return {k: v for k, v in order.items() if k != "time"}


def _as_queried(order: dict[str, Any]) -> dict[str, Any]:
    """Return a futures order as GET /fapi/v1/order answers it: no `cumQty` (only the placing answer has it)."""
    return {k: v for k, v in order.items() if k != "cumQty"}


def error_response(exc: BinanceError, headers: dict[str, str] | None = None) -> web.Response:
    """Answer a refusal as Binance does: its JSON body under its HTTP status."""
    return web.json_response(exc.body, status=exc.status, headers=headers)

def add_routes(router: web.UrlDispatcher, routes: dict[str, Handler]) -> None:
    """Add each "METHOD /path" of `routes` to `router` (a GET route answers HEAD too, as aiohttp's add_get)."""
    for route, handler in routes.items():
        method, path = route.split(" ", 1)
        if method == "GET":
            router.add_get(path, handler)
        else:
            router.add_route(method, path, handler)


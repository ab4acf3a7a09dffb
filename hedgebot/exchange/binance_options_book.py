"""A live account's puts on Binance options (`/eapi/v1/`), through unmodified ccxt, for the put leg.

Each tick the leg asks `refresh()` first: it reads the listed options (exchangeInfo), their marks
and deltas (`mark`), best bid and ask (`ticker`), the index, and the longs held (`position`), and
answers the leg's questions from that snapshot until the next refresh. Orders are LIMIT,
immediate-or-cancel, under the leg's client id (`clientOrderId`), a sale reduce-only: an order
never rests on the book to fill later at a price the leg did not see, and a sale never writes a
put.

An order whose answer is lost is looked up by its client id (`GET /eapi/v1/order`). Binance does
not find a cancelled order that never traded, and its lookups may lag; so a miss is not proof:
past `settle_seconds` the symbol's `historyOrders` since the order was sent is read too, and
only a miss there settles it as never executed. Binance's "execution status unknown" codes
(-1000, -1001, -1006, -1007) and 5xx answers leave the outcome unknown, never a refusal, though
ccxt files some of them under its plain ExchangeError for options.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from hedgebot.exchange.paper_options import Lookup, OptionFill, OptionQuoteBook, PutSeries, Settlement
from hedgebot.exchange.port import (
    AuthenticationFailed,
    BadData,
    ExchangeError,
    InsufficientFunds,
    InvalidOrder,
    RequestTimeout,
    VenueUnavailable,
)

ZERO = Decimal(0)
_CODE = re.compile(r'"code"\s*:\s*(-?\d+)')
# Binance's codes for "the request may or may not have been carried out" (its error-code list: -1000 UNKNOWN,
# -1001 DISCONNECTED, -1006 UNEXPECTED_RESP and -1007 TIMEOUT "execution status unknown").
_UNKNOWN_OUTCOME = {"-1000", "-1001", "-1006", "-1007"}


class OptionsDataError(BadData):
    """The options venue answered with something the leg cannot read (named field and value)."""


def _dec(row: dict[str, Any], key: str, what: str) -> Decimal:
    try:
        value = Decimal(str(row[key]))
    except (KeyError, InvalidOperation, ValueError):
        raise OptionsDataError(f"binance options {what}: field {key!r} is {row.get(key)!r}, not a number") from None
    if not value.is_finite():
        raise OptionsDataError(f"binance options {what}: field {key!r} is {row.get(key)!r}, not a number")
    return value


def translate(exc: Exception) -> ExchangeError:
    """Return the port's error for a ccxt exception raised by an options request."""
    import ccxt

    message = str(exc)
    match = _CODE.search(message)
    code = match.group(1) if match else None
    if code in _UNKNOWN_OUTCOME:
        return VenueUnavailable(f"binance options {code}: execution status unknown ({message})")
    # By the options API's own codes: ccxt files some of them by the futures meaning, or under its plain ExchangeError.
    if code in ("-2018", "-2027"):  # BALANCE_NOT_SUFFICIENT, OPTION_MARGIN_NOT_SUFFICIENT
        return InsufficientFunds(f"the options wallet cannot pay: {message}")
    if code in ("-2014", "-2015"):
        return AuthenticationFailed(
            f"the key cannot trade Binance options (open the options account and allow options on the key): {message}"
        )
    if isinstance(exc, ccxt.RequestTimeout):
        return RequestTimeout(message)
    if isinstance(exc, ccxt.NetworkError | ccxt.OperationFailed):
        return VenueUnavailable(message)
    if isinstance(exc, ccxt.InsufficientFunds):
        return InsufficientFunds(f"the options wallet cannot pay: {message}")
    if isinstance(exc, ccxt.AuthenticationError | ccxt.PermissionDenied):
        return AuthenticationFailed(
            f"the key cannot trade Binance options (open the options account and allow options on the key): {message}"
        )
    return InvalidOrder(message)


class BinanceOptionsBook:
    """The puts of one asset on a live Binance account, read and traded through ccxt (see the module's docstring)."""

    settle_seconds = 30.0

    def __init__(self, client: Any, asset: str, clock: Any) -> None:
        self.client, self.asset, self.clock = client, asset, clock
        self.held: dict[PutSeries, Decimal] = {}
        self.amount_step = Decimal("0.01")
        self.tick = Decimal("5")
        self._symbols: dict[PutSeries, str] = {}
        self._quotes: dict[PutSeries, OptionQuoteBook] = {}
        self._index = ZERO
        self._gone: dict[PutSeries, Decimal] = {}  # held at the last refresh and past expiry: exercised since

    @classmethod
    def connect(cls, asset: str, clock: Any, *, api_key: str, secret: str, api_base_url: str | None = None,
                timeout_ms: int = 10_000, rate_limit: bool = True) -> BinanceOptionsBook:
        """Return the book on an unmodified ccxt binance client limited to option markets."""
        from hedgebot.exchange.ccxt_venue import rewrite_api_urls
        from hedgebot.exchange.option_chains import client_for

        client = client_for("binance", {"apiKey": api_key, "secret": secret, "timeout": timeout_ms, "enableRateLimit": rate_limit})
        if api_base_url:
            rewrite_api_urls(client, api_base_url)
        return cls(client, asset, clock)

    async def close(self) -> None:
        """Close the client's HTTP session."""
        await self.client.close()

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        import ccxt

        try:
            return await getattr(self.client, method)(params)
        except ccxt.BaseError as exc:
            raise translate(exc) from exc

    async def wallet(self) -> Decimal:
        """Return the USDT the options wallet has available for premiums."""
        account = await self._call("eapiPrivateGetMarginAccount", {})
        for row in account.get("asset") or []:
            if row.get("asset") == "USDT":
                return _dec(row, "available", "marginAccount")
        return ZERO

    # ---- the snapshot -------------------------------------------------------------

    async def refresh(self) -> None:
        """Read the chain, its quotes, the index and the longs held; note the longs gone at expiry."""
        import ccxt

        try:
            await self.client.load_markets(True)
        except ccxt.BaseError as exc:
            raise translate(exc) from exc
        puts = {
            m["id"]: m for m in self.client.markets.values()
            if m.get("option") and m.get("optionType") == "put" and m.get("base") == self.asset and m.get("settle") == "USDT"
        }
        index = await self._call("eapiPublicGetIndex", {"underlying": f"{self.asset}USDT"})
        self._index = _dec(index, "indexPrice", "index")
        marks = {row["symbol"]: row for row in await self._call("eapiPublicGetMark", {}) if row.get("symbol") in puts}
        books = {row["symbol"]: row for row in await self._call("eapiPublicGetTicker", {}) if row.get("symbol") in puts}
        symbols: dict[PutSeries, str] = {}
        quotes: dict[PutSeries, OptionQuoteBook] = {}
        for market_id, market in puts.items():
            series = PutSeries(Decimal(str(market["strike"])), float(market["expiry"]) / 1000)
            symbols[series] = market_id
            info = market.get("info") or {}
            for item in info.get("filters") or []:
                if item.get("filterType") == "LOT_SIZE":
                    self.amount_step = _dec(item, "stepSize", f"{market_id} LOT_SIZE")
                if item.get("filterType") == "PRICE_FILTER":
                    self.tick = _dec(item, "tickSize", f"{market_id} PRICE_FILTER")
            mark, book = marks.get(market_id), books.get(market_id)
            if mark is None or book is None:
                continue  # no quote: the leg waits for one
            quotes[series] = OptionQuoteBook(
                series, _dec(mark, "markPrice", market_id), _dec(book, "bidPrice", market_id), _dec(book, "askPrice", market_id),
                float(_dec(mark, "markIV", market_id)), float(_dec(mark, "delta", market_id)), self._index,
            )
        held: dict[PutSeries, Decimal] = {}
        by_symbol = {symbol: series for series, symbol in symbols.items()}
        for row in await self._call("eapiPrivateGetPosition", {}):
            if not str(row.get("symbol", "")).startswith(f"{self.asset}-") or not str(row.get("symbol", "")).endswith("-P"):
                continue
            strike = _dec(row, "strikePrice", "position")
            strike = strike.quantize(Decimal(1)) if strike == strike.to_integral_value() else strike.normalize()
            series = by_symbol.get(str(row["symbol"])) or PutSeries(strike, float(_dec(row, "expiryDate", "position")) / 1000)
            quantity = _dec(row, "quantity", "position")
            if row.get("side") == "LONG" and quantity > 0:
                held[series] = quantity
                symbols.setdefault(series, str(row["symbol"]))
        now = self.clock.now()
        for series, amount in self.held.items():
            if series not in held and series.expiry <= now:
                self._gone[series] = amount
        self.held, self._symbols, self._quotes = held, symbols, quotes

    def expect(self, held: dict[PutSeries, Decimal]) -> None:
        """Take what the journal says is held as the last snapshot: what is gone at the first refresh was exercised."""
        if not self.held:
            self.held = dict(held)

    def listed(self) -> list[PutSeries]:
        """Return the puts listed at the last refresh."""
        return [s for s in self._symbols if s.expiry > self.clock.now()]

    def quote_of(self, series: PutSeries) -> OptionQuoteBook | None:
        """Return a put's mark, best bid and ask and delta at the last refresh, or None without one."""
        return self._quotes.get(series)

    def symbol_of(self, series: PutSeries) -> str:
        """Return Binance's symbol of a series (BTC-270129-75000-P)."""
        found = self._symbols.get(series)
        if found is not None:
            return found
        from datetime import UTC, datetime

        day = datetime.fromtimestamp(series.expiry, UTC).strftime("%y%m%d")
        return f"{self.asset}-{day}-{series.strike.normalize():f}-P"

    # ---- orders -------------------------------------------------------------------

    def _fill(self, order: dict[str, Any], series: PutSeries) -> OptionFill | None:
        executed = _dec(order, "executedQty", "order")
        if executed <= 0:
            return None
        side = str(order.get("side", "")).lower()
        return OptionFill(
            str(order.get("clientOrderId")), series.strike, series.expiry, side, executed, _dec(order, "avgPrice", "order"),
            _dec(order, "fee", "order"), float(order.get("updateTime") or order.get("createTime") or 0) / 1000,
        )

    async def place_limit(self, client_id: str, series: PutSeries, side: str, amount: Decimal, limit: Decimal) -> OptionFill | None:
        """Send a LIMIT IOC order under `client_id`; return what executed of it, or None when nothing did."""
        params: dict[str, Any] = {
            "symbol": self.symbol_of(series), "side": side.upper(), "type": "LIMIT", "quantity": f"{amount.normalize():f}",
            "price": f"{limit.normalize():f}", "timeInForce": "IOC", "clientOrderId": client_id,
        }
        if side == "sell":
            params["reduceOnly"] = "true"
        order = await self._call("eapiPrivatePostOrder", params)
        try:
            fill = self._fill(order, series)
        except OptionsDataError as exc:
            # The order reached the exchange; an answer that cannot be read says nothing of what executed.
            raise VenueUnavailable(f"the answer to order {client_id} could not be read, its outcome is unknown: {exc}") from exc
        if fill is not None:
            change = fill.amount if side == "buy" else -fill.amount
            self.held[series] = self.held.get(series, ZERO) + change
            if self.held[series] <= 0:
                del self.held[series]
        return fill

    async def lookup(self, client_id: str, series: PutSeries, sent_at: float, settled: bool) -> Lookup:
        """Look an order up by client id; past its settle delay (`settled`), in the symbol's order history as well."""
        import ccxt

        symbol = self.symbol_of(series)
        try:
            order = await self.client.eapiPrivateGetOrder({"symbol": symbol, "clientOrderId": client_id})
        except ccxt.OrderNotFound:
            order = None
        except ccxt.BaseError as exc:
            raise translate(exc) from exc
        if order is None and settled:
            rows = await self._call("eapiPrivateGetHistoryOrders", {"symbol": symbol, "startTime": int(sent_at * 1000) - 60_000})
            order = next((row for row in rows if row.get("clientOrderId") == client_id), None)
            if order is None:
                return Lookup(True, None)  # neither found nor in the history since it was sent: never executed
        if order is None or (order.get("status") in ("ACCEPTED", "PARTIALLY_FILLED") and order.get("timeInForce") != "IOC"):
            return Lookup(False, None)  # not found yet (lookups lag), or still working (an IOC order never is)
        return Lookup(True, self._fill(order, series))

    async def settle_expired(self) -> list[Settlement]:
        """Return the longs Binance exercised since the last look, at the exercise price it published."""
        if not self._gone:
            return []
        rows = await self._call("eapiPublicGetExerciseHistory", {"underlying": f"{self.asset}USDT"})
        prices = {str(r.get("symbol")): r for r in rows}
        done: list[Settlement] = []
        for series, amount in sorted(self._gone.items(), key=lambda item: (item[0].expiry, item[0].strike)):
            row = prices.get(self.symbol_of(series))
            if row is None:
                continue  # not published yet: asked again next tick
            price = _dec(row, "realStrikePrice", "exercise history")
            done.append(Settlement(series, amount, price, max(series.strike - price, ZERO) * amount, self.clock.now()))
            del self._gone[series]
        return done

"""Real exchanges through ccxt's async clients, behind the `ExchangePort`.

Everything that is the same on every exchange lives here: market rules and
maintenance brackets (cached, refreshed daily), market orders carrying the
journaled client id, lookup by client id (ccxt's `OrderNotFound` is the
port's "never seen"), mark price stamped with the exchange's own time,
funding, and the mapping of ccxt's exceptions onto the port's two families:
`NetworkError` and its subclasses are transient, everything else permanent,
with exchange codes the dialect knows taking precedence over ccxt's class.
What differs between exchanges is asked of the dialect
(`hedgebot.exchange.dialects`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ccxt
import ccxt.async_support as ccxt_async

from hedgebot.clock import Clock
from hedgebot.domain.model import (
    MarginMode,
    Market,
    OrderSide,
    PositionMode,
    PositionSide,
    Wallet,
)
from hedgebot.domain.margin import rule_for
from hedgebot.domain.roll import Contract
from hedgebot.exchange.dialects.base import Dialect, decimal_value, symbol_parts
from hedgebot.exchange.candles import MOST_PER_PAGE, timeframe_seconds
from hedgebot.exchange.ratelimit import Pacer, RateGates, gates_for
from hedgebot.exchange.streaming import StreamSpec
from hedgebot.exchange.port import (
    AccountFacts,
    AuthenticationFailed,
    BadData,
    Candle,
    ClockSkew,
    ExchangeError,
    Fenced,
    FundingPayment,
    FundingQuote,
    FundsMovement,
    FundsQuery,
    FuturesBalance,
    InsufficientFunds,
    InvalidOrder,
    Legs,
    OrderHistory,
    OrderRequest,
    OrderResult,
    OrderStatus,
    PermanentError,
    PriceQuote,
    RateLimited,
    RequestTimeout,
    VenueUnavailable,
)
from hedgebot.exchange.withdrawals import Withdrawal, WithdrawalRequest

T = TypeVar("T")

BRACKETS_TTL_SECONDS = 24 * 3600.0
DEFAULT_MAX_CLOCK_OFFSET = 10.0
# Pages of funding-rate history read at most (Binance: 100 a page unless asked; 30 days hourly is 720).
FUNDING_PAGES = 12
_NOT_FOUND_CODES = {"-2013"}


def rewrite_api_urls(client: Any, base_url: str) -> None:
    """Point every REST and websocket URL of a ccxt client at `base_url`, keeping the paths (emulator or proxy)."""
    base = base_url.rstrip("/")
    ws_base = "ws" + base[len("http"):] if base.startswith("http") else base

    def rewrite(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: rewrite(v) for k, v in value.items()}
        if isinstance(value, str) and value.startswith(("http://", "https://", "ws://", "wss://")):
            parts = urlsplit(value)
            root = ws_base if parts.scheme in ("ws", "wss") else base
            return root + parts.path + (f"?{parts.query}" if parts.query else "")
        return value

    client.urls["api"] = rewrite(client.urls["api"])


_dec = decimal_value


def _round(value: Decimal, step: Decimal, up: bool) -> Decimal:
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR) * step


class CcxtVenue:
    """One exchange account (futures and spot wallets) through ccxt, in the dialect of its exchange."""

    def __init__(self, dialect: Dialect, futures: Any, spot: Any, clock: Clock) -> None:
        self.dialect = dialect
        self.futures = futures
        self.spot = spot
        self.clock = clock
        self.name = dialect.futures_id
        self.settle_seconds = dialect.settle_seconds
        # Seconds the exchange's clock runs ahead of ours (negative: behind); None until measured.
        self.clock_offset: float | None = None
        # Beyond this offset the keepers add no risk (account option max_clock_offset_seconds).
        self.max_clock_offset = DEFAULT_MAX_CLOCK_OFFSET
        self._markets: dict[str, tuple[Market, float]] = {}
        self._event_listeners: list[Callable[[Any], None]] = []
        self._tapped = False
        self._pacers: list[tuple[Pacer, Any]] = []  # each client's pacing, with the client whose rateLimit it keeps

    @classmethod
    def connect(
        cls,
        dialect: Dialect,
        clock: Clock,
        *,
        api_key: str | None = None,
        secret: str | None = None,
        password: str | None = None,
        api_base_url: str | None = None,
        timeout_ms: int = 10_000,
        rate_limit: bool = True,
        session: Any | None = None,
        gates: RateGates | None = None,
        account: str = "",
        weight_share: float = 1.0,
    ) -> CcxtVenue:
        """Build the futures and spot clients of `dialect` (without keys: public data only).

        Every request goes through `gates` (by default the gates every venue on `clock` shares): one
        weight budget and one back-off per exchange host, across all accounts (see hedgebot.exchange.ratelimit),
        counted as `account`'s, whose reads keep to `weight_share` of that budget.
        """
        gates = gates if gates is not None else gates_for(clock)
        pacers: list[tuple[Pacer, Any]] = []

        def client(exchange_id: str, futures: bool) -> Any:
            config: dict[str, Any] = {
                "enableRateLimit": rate_limit,
                "timeout": timeout_ms,
                **dialect.credentials(api_key, secret, password),
            }
            if session is not None:
                config["session"] = session  # an HTTP session of the caller's (tests record requests with one)
            config["options"] = {**dialect.client_options(futures=futures), **config.get("options", {})}
            instance = _client_class(exchange_id)(config)
            dialect.configure(instance)
            if api_base_url:
                rewrite_api_urls(instance, api_base_url)
            pacers.append((gates.attach(instance, dialect.weight_families, dialect.request_weight, account, weight_share), instance))
            return instance

        futures = client(dialect.futures_id, True)
        spot = futures if dialect.spot_id == dialect.futures_id else client(dialect.spot_id, False)
        venue = cls(dialect, futures, spot, clock)
        venue._pacers = pacers
        return venue

    def warm_in(self) -> float:
        """Return the seconds until every client has regained its pacing burst (a takeover's requests go at once)."""
        return max(
            (pacer.ready_in(float(getattr(client, "rateLimit", 50) or 50)) for pacer, client in self._pacers
             if getattr(client, "enableRateLimit", True)),  # a client that paces nothing is always warm
            default=0.0,
        )

    def bound_by_lease(self, remaining: Callable[[], float]) -> None:
        """Sign each request only while `remaining()` seconds of lease are left, valid on the exchange for no longer.

        Checked as the request is signed (after any wait at the rate-limit gate), so a request held
        past the lease is refused here, and one delayed in the network past it is refused by the
        exchange itself: its `recvWindow` is cut to what is left of the lease.
        """
        for client in {id(self.futures): self.futures, id(self.spot): self.spot}.values():
            default = (client.options or {}).get("recvWindow")
            original_sign = client.sign

            def sign(*args: Any, _sign: Any = original_sign, _client: Any = client, _default: Any = default, **kwargs: Any) -> Any:
                left = remaining()
                if left <= 0:
                    raise Fenced(f"{self.name}: this daemon's lease has lapsed; the request was not signed nor sent")
                if _default is not None:
                    _client.options["recvWindow"] = max(1, min(int(_default), int(left * 1000)))
                return _sign(*args, **kwargs)

            client.sign = sign

    # ---- errors -------------------------------------------------------------------

    def _translate(self, exc: Exception) -> Exception:
        """Return the port's error for a ccxt exception."""
        message = str(exc)
        code = self.dialect.error_code(exc)
        if code is not None:
            known = self.dialect.error_for_code(code, message)
            if known is not None:
                return known
        if isinstance(exc, ccxt.RequestTimeout):
            return RequestTimeout(message)
        if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
            return RateLimited(message)
        if isinstance(exc, ccxt.InvalidNonce):
            return ClockSkew(message)
        if isinstance(exc, ccxt.NetworkError):
            cause = exc.__cause__ or exc.__context__
            # ccxt says only which request failed; the socket's own error says why (refused, reset, DNS, TLS).
            return VenueUnavailable(f"{message}: {cause}" if cause is not None and str(cause) not in message else message)
        if isinstance(exc, ccxt.OperationFailed):
            # ccxt's "the operation failed and may be retried" (Binance -1000, -1006, ...): the exchange could not
            # say whether it executed the request, so its outcome is unknown, never a refusal.
            return VenueUnavailable(message)
        if isinstance(exc, ccxt.AuthenticationError):
            return AuthenticationFailed(message)
        if isinstance(exc, ccxt.InsufficientFunds):
            return InsufficientFunds(message)
        if isinstance(exc, ccxt.InvalidOrder | ccxt.BadSymbol):
            return InvalidOrder(message)
        if isinstance(exc, ccxt.BadResponse):
            return BadData(message)
        return PermanentError(message)

    async def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        try:
            return await make()
        except ExchangeError:
            raise
        except ccxt.BaseError as exc:
            translated = self._translate(exc)
            if isinstance(translated, ClockSkew):
                await self._resync_clocks()
            raise translated from exc

    async def _resync_clocks(self) -> None:
        """Measure the exchange's clock again, so the next signed request is stamped in its window."""
        try:
            await self.measure_clock()
        except ExchangeError:
            pass  # the next request will say so again

    async def measure_clock(self) -> float:
        """Measure how far the exchange's clock runs ahead of ours; signed requests are stamped in its time from now on.

        ccxt reads the exchange's server time (`load_time_difference`: its time minus the moment the answer
        arrived, on the same clock hedgebot's real clock reads). An exchange ccxt cannot ask is taken as in step.
        """
        offsets: list[float] = []
        for client in {id(self.futures): self.futures, id(self.spot): self.spot}.values():
            try:
                await client.load_time_difference()
            except ccxt.NotSupported:
                continue
            except ccxt.BaseError as exc:
                raise self._translate(exc) from exc
            difference = (client.options or {}).get("timeDifference")
            if difference is not None:
                offsets.append(-float(difference) / 1000)
        self.clock_offset = offsets[0] if offsets else 0.0
        return self.clock_offset

    def exchange_now(self) -> float:
        """Return the time on the exchange's clock, as far as it has been measured."""
        return self.clock.now() + (self.clock_offset or 0.0)

    def _client(self, symbol: str) -> Any:
        return self.futures if ":" in symbol else self.spot

    # ---- markets --------------------------------------------------------------------

    async def load_market(self, symbol: str) -> Market:
        """Return the contract's rules with maintenance brackets from fetch_leverage_tiers (cached for a day)."""
        cached = self._markets.get(symbol)
        if cached is not None and self.clock.now() - cached[1] < BRACKETS_TTL_SECONDS:
            return cached[0]
        await self._call(self.futures.load_markets)
        if symbol not in self.futures.markets:
            raise InvalidOrder(f"{self.name} lists no market {symbol!r}: check the hedge's symbol")
        raw = self.futures.market(symbol)
        if not (raw.get("swap") or raw.get("future")):
            raise InvalidOrder(f"{symbol} on {self.name} is neither a perpetual swap nor a delivery future")
        expiry = self.dialect.delivery_contract(raw).expiry if raw.get("future") else None
        mark = (await self.fetch_mark_price(symbol)).price if self.dialect.tiers_need_mark else None
        brackets = await self._call(lambda: self.dialect.fetch_brackets(self.futures, symbol, mark))
        if not brackets:
            raise BadData(f"{self.name} sent no maintenance brackets for {symbol}")
        precision = raw.get("precision") or {}
        limits = raw.get("limits") or {}
        # ccxt counts contract amounts in contracts; the domain counts base units.
        contract_size = self.dialect.contract_size(raw)
        step = _dec(precision.get("amount"), f"{symbol} amount step") * contract_size
        min_contracts = (limits.get("amount") or {}).get("min")
        market = Market(
            symbol=symbol,
            base=raw["base"],
            quote=raw["quote"],
            amount_step=step,
            min_amount=_dec(min_contracts, f"{symbol} minimum amount") * contract_size if min_contracts else step,
            min_notional=_dec((limits.get("cost") or {}).get("min") or 0, f"{symbol} minimum notional"),
            brackets=brackets,
            contract_size=contract_size,
            # ccxt rounds a margin amount to the market's amount precision, unless the dialect knows better
            margin_step=self.dialect.margin_step_for(raw) or step,
            taker_fee=_dec(raw.get("taker") or "0.0005", f"{symbol} taker fee"),
            price_step=_dec(precision.get("price") or "0.01", f"{symbol} price step"),
            # A coin-margined contract: amounts are face value in the quote, margin and PnL in the coin.
            inverse=bool(raw.get("inverse")),
            expiry=expiry,
        )
        self._markets[symbol] = (market, self.clock.now())
        return market

    async def fetch_delivery_contracts(self, symbol: str) -> list[Contract]:
        """Return the delivery contracts of the market named without expiry ('BTC/USDT:USDT'), nearest first.

        A contract is one of the same base, quote and settlement asset as `symbol`; its delivery time and
        status are read from the exchange's own listing fields (the dialect names them). One already
        past delivery on the exchange's clock is left out.
        """
        base, quote, settle, tag = symbol_parts(symbol)
        if tag is not None or not settle:
            raise InvalidOrder(
                f"{symbol!r} is not a market named without expiry: name the hedge's market as 'BTC/USDT:USDT' "
                "and let the venue list its delivery contracts"
            )
        # Read the listing again: ccxt keeps the markets it loaded once, and a status goes stale (a contract
        # that was TRADING turns PRE_DELIVERING before delivery).
        await self._call(lambda: self.futures.load_markets(True))
        now = self.exchange_now()
        contracts = [
            self.dialect.delivery_contract(raw)
            for raw in self.futures.markets.values()
            if raw.get("future") and (raw.get("base"), raw.get("quote"), raw.get("settle")) == (base, quote, settle)
        ]
        return sorted((c for c in contracts if c.expiry > now), key=lambda c: c.expiry)

    # ---- reads ----------------------------------------------------------------------

    async def fetch_spot_balances(self) -> dict[str, Decimal]:
        """Return the spot wallet's totals."""
        # The asset the futures wallet reports (a coin-margined contract's coin): unified wallets leave it out here.
        settle = next((market.margin_asset for market, _ in self._markets.values()), "USDT")
        return await self._call(lambda: self.dialect.fetch_spot_balances(self.spot, settle))

    async def fetch_futures_balance(self, asset: str) -> FuturesBalance:
        """Return the futures wallet of `asset`."""
        return await self._call(lambda: self.dialect.fetch_futures_balance(self.futures, asset))

    async def fetch_legs(self, symbol: str) -> Legs:
        """Return both legs of the contract."""
        return await self._call(lambda: self.dialect.fetch_legs(self.futures, symbol))

    async def fetch_mark_price(self, symbol: str) -> PriceQuote:
        """Return the mark price with the exchange's own timestamp."""
        return await self._call(lambda: self.dialect.fetch_mark_price(self.futures, symbol))

    async def fetch_ohlcv(self, symbol: str, timeframe: str, since: float, limit: int) -> list[Candle]:
        """Return the contract's closed last-trade candles from `since` through ccxt's fetch_ohlcv (one page).

        The exchange hands out the candle still forming as the last row: it is dropped, its close is not settled.
        """
        length = timeframe_seconds(timeframe)
        if not 1 <= limit <= MOST_PER_PAGE:
            raise PermanentError(f"klines limit {limit} is outside 1..{MOST_PER_PAGE} (the exchange refuses it)")
        rows = await self._call(lambda: self.futures.fetch_ohlcv(symbol, timeframe, int(since * 1000), limit))
        now = self.exchange_now()
        candles: list[Candle] = []
        for row in rows or []:
            if not isinstance(row, (list, tuple)) or len(row) < 5 or not isinstance(row[0], (int, float)):
                raise BadData(f"{symbol} {timeframe} candles: a row that is not [time, open, high, low, close, ...]: {row!r}"[:300])
            start = row[0] / 1000
            if start + length > now or start < since:
                continue
            where = f"{symbol} {timeframe} candle at {row[0]}"
            prices = [_dec(value, where) for value in row[1:5]]
            if min(prices) <= 0:
                raise BadData(f"{where}: a price that is not positive: {row!r}"[:300])
            candles.append(Candle(start, *prices))
        return sorted(candles, key=lambda candle: candle.start)

    async def fetch_funding_rate(self, symbol: str) -> FundingQuote:
        """Return the current funding rate and the next settlement time."""
        answer = await self._call(lambda: self.futures.fetch_funding_rate(symbol))
        rate = _dec(answer.get("fundingRate"), f"{symbol} funding rate")
        nxt = answer.get("fundingTimestamp") or answer.get("nextFundingTimestamp")
        stamp = answer.get("timestamp")
        return FundingQuote(rate, nxt / 1000 if nxt else None, stamp / 1000 if stamp else self.clock.now())

    async def fetch_funding_rates(self, symbol: str, since: float) -> list[tuple[float, Decimal]]:
        """Return the market's settled funding rates since `since` through ccxt's public rate history, page by page.

        Binance answers from startTime with the first `limit` settlements (100 unless asked), the oldest: a market
        settling every hour has 720 in 30 days. Each next page starts after the last settlement seen, until a page
        brings nothing new (or FUNDING_PAGES were read).
        """
        rates: dict[float, Decimal] = {}
        start = since
        for _ in range(FUNDING_PAGES):
            answer = await self._call(lambda at=start: self.futures.fetch_funding_rate_history(symbol, int(at * 1000)))
            page: dict[float, Decimal] = {}
            for row in answer or []:
                stamp = row.get("timestamp")
                if stamp is None:
                    raise BadData(f"{symbol} funding rate history: a row without a timestamp: {row!r}"[:300])
                page[stamp / 1000] = _dec(row.get("fundingRate"), f"{symbol} funding rate history")
            fresh = {t: r for t, r in page.items() if t >= since and t not in rates}
            if not fresh:
                break
            rates.update(fresh)
            start = max(fresh) + 0.001
        return sorted(rates.items())

    async def fetch_funding_history(self, symbol: str, since: float) -> list[FundingPayment]:
        """Return the account's funding payments on the contract."""
        return await self._call(lambda: self.dialect.fetch_funding_history(self.futures, symbol, since))

    # ---- orders -----------------------------------------------------------------------

    def _result(self, order: dict[str, Any], request_symbol: str, market: Market | None) -> OrderResult:
        info = order.get("info") or {}
        size = market.contract_size if market else Decimal(1)
        amount = _dec(order.get("amount"), "order amount") * size
        filled = _dec(order.get("filled") or 0, "order filled") * size
        average = order.get("average")
        if average is None and filled > 0 and order.get("cost"):
            average = Decimal(str(order["cost"])) / filled
        price = _dec(average, "order average price") if average is not None else Decimal(0)
        fee_info = order.get("fee") or {}
        if fee_info.get("cost") is not None:
            fee = _dec(fee_info["cost"], "order fee")
        else:
            # Futures order answers carry no fee; estimate it from the market's taker rate.
            notional = rule_for(market).notional(filled, price) if market else filled * price  # in the margin asset
            fee = notional * (market.taker_fee if market else Decimal("0.0005"))
        ended = order.get("status") not in (None, "open")
        if not ended and not (order.get("status") is None and filled >= amount > 0):
            # Accepted and still working (or answered with an id only): what it will fill is not known yet.
            status = OrderStatus.PENDING
        elif filled == 0:
            status = OrderStatus.REJECTED
        elif filled < amount:
            status = OrderStatus.PARTIAL
        else:
            status = OrderStatus.FILLED
        position_side = self.dialect.order_position_side(info)
        stamp = order.get("lastUpdateTimestamp") or order.get("timestamp")
        return OrderResult(
            client_id=str(order.get("clientOrderId") or info.get("clientOrderId")),
            order_id=str(order.get("id")),
            symbol=request_symbol,
            side=OrderSide(str(order.get("side")).lower()),
            position_side=position_side,
            amount=amount,
            filled=filled,
            average_price=price,
            fee=fee,
            status=status,
            timestamp=int(stamp) / 1000 if stamp else self.clock.now(),
        )

    async def place_order(self, request: OrderRequest) -> OrderResult:
        """Send a market order carrying the journaled client id (the close form in hedge mode)."""
        if request.amount <= 0 or not request.amount.is_finite():
            raise InvalidOrder(f"order amount must be positive, got {request.amount}")
        client = self._client(request.symbol)
        market = self._markets.get(request.symbol, (None, 0))[0] if ":" in request.symbol else None
        params = self.dialect.order_params(request)
        # ccxt takes contract amounts in contracts (OKX: 0.01 BTC each); the step is a whole number of them.
        units = request.amount / market.contract_size if market else request.amount
        order = await self._call(
            lambda: client.create_order(request.symbol, "market", request.side.value, float(units), None, params)
        )
        # From here on the exchange has accepted the order: nothing may raise, or the caller would take an
        # executed order for one refused before execution (and send it again). What cannot be read is pending.
        try:
            if order.get("status") not in _ENDED or order.get("filled") is None:
                # Accepted but not reported filled (Bybit and OKX answer with ids only, and fill afterwards):
                # read its state; an order the lookup cannot see yet, or one still working, is pending.
                found = await self.fetch_order(request.symbol, request.client_id)
                if found is not None:
                    return found
                return self._pending(request, order)
            return self._result(order, request.symbol, market)
        except ExchangeError:
            return self._pending(request, order)

    def _pending(self, request: OrderRequest, order: dict[str, Any]) -> OrderResult:
        """Return the result of an accepted order that no lookup shows yet: pending, nothing known filled."""
        return OrderResult(
            client_id=request.client_id,
            order_id=str(order.get("id") or ""),
            symbol=request.symbol,
            side=request.side,
            position_side=request.position_side,
            amount=request.amount,
            filled=Decimal(0),
            average_price=Decimal(0),
            fee=Decimal(0),
            status=OrderStatus.PENDING,
            timestamp=self.clock.now(),
        )

    async def fetch_order(self, symbol: str, client_id: str) -> OrderResult | None:
        """Look the order up by client id; None when the exchange never saw it."""
        client = self._client(symbol)
        market = self._markets.get(symbol, (None, 0))[0] if ":" in symbol else None
        try:
            order = await self.dialect.fetch_order(client, symbol, client_id)
        except ccxt.OrderNotFound:
            return None
        except ccxt.BaseError as exc:
            if self.dialect.error_code(exc) in _NOT_FOUND_CODES:
                return None
            return await self._call(lambda: _reraise(exc))
        return None if order is None else self._result(order, symbol, market)

    async def fetch_order_history(self, symbol: str, since: float, until: float) -> OrderHistory:
        """Return the orders on `symbol` created inside [since, until] from the exchange's order history."""
        client = self._client(symbol)
        market = self._markets.get(symbol, (None, 0))[0] if ":" in symbol else None
        rows, complete = await self._call(
            lambda: self.dialect.fetch_order_history(client, symbol, int(since * 1000), int(until * 1000))
        )
        return OrderHistory(tuple(self._result(row, symbol, market) for row in rows), complete)

    def streamed_orders(self, symbol: str, update: Any) -> list[OrderResult]:
        """Return the orders a user-data stream update (ccxt's watch_orders) reports on `symbol`, as results.

        A streamed update carries the fee of its last trade only, so the fee is estimated from the
        market's taker rate, as for a futures REST answer; rows that cannot be read are skipped.
        """
        market = self._markets.get(symbol, (None, 0))[0] if ":" in symbol else None
        rows = update if isinstance(update, list) else [update]
        results: list[OrderResult] = []
        for row in rows:
            if not isinstance(row, dict) or row.get("symbol") not in (None, symbol):
                continue
            try:
                results.append(self._result({**row, "fee": None}, symbol, market))
            except (ExchangeError, ValueError, ArithmeticError):
                continue
        return results

    # ---- account settings ----------------------------------------------------------------

    async def fetch_position_mode(self) -> PositionMode:
        """Return hedge or one-way."""
        await self._call(self.futures.load_markets)
        return await self._call(lambda: self.dialect.fetch_position_mode(self.futures, list(self._markets)))

    async def _setting(self, make: Callable[[], Awaitable[Any]]) -> None:
        try:
            await self._call(make)
        except PermanentError as exc:
            code = self.dialect.error_code(exc)
            if code in self.dialect.already_set_codes:
                return
            raise

    async def set_position_mode(self, mode: PositionMode) -> None:
        """Switch hedge mode on or off (the exchange refuses while positions or open orders exist)."""
        await self._call(self.futures.load_markets)
        await self._setting(lambda: self.dialect.set_position_mode(self.futures, mode))

    async def fetch_margin_mode(self, symbol: str) -> MarginMode:
        """Return the contract's margin mode."""
        await self._call(self.futures.load_markets)
        return await self._call(lambda: self.dialect.fetch_margin_mode(self.futures, symbol))

    async def set_margin_mode(self, symbol: str, mode: MarginMode) -> None:
        """Set the contract's margin mode."""
        await self._call(self.futures.load_markets)
        await self._setting(lambda: self.dialect.set_margin_mode(self.futures, symbol, mode))

    async def fetch_leverage(self, symbol: str) -> int:
        """Return the contract's leverage."""
        await self._call(self.futures.load_markets)
        return await self._call(lambda: self.dialect.fetch_leverage(self.futures, symbol))

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        """Set the contract's leverage."""
        await self._call(self.futures.load_markets)
        await self._setting(lambda: self.dialect.set_leverage(self.futures, symbol, leverage))

    async def fetch_account_facts(self) -> AccountFacts:
        """Return the key's permissions and the account's modes."""
        return await self._call(lambda: self.dialect.fetch_account_facts(self.spot, self.futures))

    # ---- funds -----------------------------------------------------------------------------

    async def adjust_margin(self, symbol: str, side: PositionSide, amount: Decimal) -> FundsMovement:
        """Add or remove isolated margin on a leg, rounded to the step ccxt sends (up when adding)."""
        market = await self.load_market(symbol)
        rounded = _round(abs(amount), market.margin_step, up=amount > 0)
        if rounded <= 0:
            raise InvalidOrder(f"margin change of {amount} rounds to nothing at step {market.margin_step}")
        signed = rounded if amount > 0 else -rounded
        await self._call(lambda: self.dialect.adjust_margin(self.futures, symbol, side, signed))
        # The answer carries no id: read it back from the history, newest first, so the journal can claim it.
        now = self.exchange_now()  # the history is stamped on the exchange's clock
        query = FundsQuery("margin", market.margin_asset, signed, now - 120, now + 120, symbol=symbol, side=side)
        try:
            found = await self._latest_margin_change(query)
        except ExchangeError:
            found = None
        return found or FundsMovement("", "margin", market.margin_asset, signed, now)

    async def _latest_margin_change(self, query: FundsQuery) -> FundsMovement | None:
        latest: FundsMovement | None = None
        claimed: set[str] = set()
        while True:
            found = await self._call(
                lambda: self.dialect.find_margin_change(
                    self.futures, FundsQuery(**{**query.__dict__, "claimed": frozenset(claimed)})
                )
            )
            if found is None:
                return latest
            latest = found if latest is None or found.timestamp >= latest.timestamp else latest
            claimed.add(found.venue_id)

    async def transfer(self, asset: str, amount: Decimal, source: Wallet, destination: Wallet) -> FundsMovement:
        """Move an asset between the spot and futures wallets."""
        if amount <= 0 or source is destination:
            raise InvalidOrder(f"bad transfer of {amount} {asset} from {source.value} to {destination.value}")
        if self.dialect.unified_wallet:
            raise InvalidOrder(
                f"{self.name} holds spot coins and futures margin in one unified account: there is nothing to transfer"
            )
        entry = await self._call(
            lambda: self.spot.transfer(
                asset, float(amount), self.dialect.wallet_name(source), self.dialect.wallet_name(destination)
            )
        )
        stamp = entry.get("timestamp")
        return FundsMovement(
            str(entry.get("id") or ""), "transfer", asset, amount, stamp / 1000 if stamp else self.exchange_now()
        )

    async def find_funds_movement(self, query: FundsQuery) -> FundsMovement | None:
        """Search the exchange's margin or transfer history."""
        if query.kind == "margin":
            return await self._call(lambda: self.dialect.find_margin_change(self.futures, query))
        return await self._call(lambda: self.dialect.find_transfer(self.spot, self.futures, query))

    # ---- withdrawals (a holdings account the buffer refills from) -----------------------

    @property
    def withdrawals_supported(self) -> bool:
        """Tell whether hedgebot can send withdrawals on this exchange."""
        return self.dialect.withdrawals_supported

    async def withdrawal_whitelisted(self, asset: str, address: str, network: str | None) -> bool:
        """Tell whether the exchange's withdrawal whitelist holds `address` for `asset`."""
        return await self._call(lambda: self.dialect.withdrawal_whitelisted(self.spot, asset, address, network))

    async def free_spot_balance(self, asset: str) -> Decimal:
        """Return how much of `asset` the spot wallet holds free."""
        return await self._call(lambda: self.dialect.free_spot_balance(self.spot, asset))

    async def fetch_deposit_address(self, asset: str, network: str | None) -> str | None:
        """Return the account's deposit address for `asset` on `network` (None: the exchange cannot say here)."""
        return await self._call(lambda: self.dialect.deposit_address(self.spot, asset, network))

    async def withdraw(self, request: WithdrawalRequest) -> Withdrawal:
        """Send a withdrawal under the request's client id."""
        return await self._call(lambda: self.dialect.withdraw(self.spot, request, self.exchange_now()))

    async def find_withdrawal(self, client_id: str, since: float) -> Withdrawal | None:
        """Find a withdrawal by its client id in the exchange's withdrawal history."""
        return await self._call(lambda: self.dialect.find_withdrawal(self.spot, client_id, since))

    # ---- streams ----------------------------------------------------------------------

    def stream_specs(self, symbols: list[str], stale_after: float) -> list[StreamSpec]:
        """Return what this venue can stream for `symbols` (ccxt's websocket methods); empty when nothing."""
        self._tap_user_stream()
        specs = self.dialect.stream_specs(self.futures, symbols, stale_after)
        if not specs or self.spot is self.futures:
            return specs  # a dialect that streams none of its futures feeds (COIN-M) keeps its spot wallet on REST too
        return specs + self.dialect.spot_stream_specs(self.spot)

    def subscribe_account(self, listener: Callable[[Any], None]) -> None:
        """Call `listener` with each `AccountPush` the user-data streams carry (legs and balances as the exchange pushes them)."""
        symbol_of = lambda market_id: self.futures.safe_symbol(market_id, None, None, "contract")  # noqa: E731
        for client in {id(self.futures): self.futures, id(self.spot): self.spot}.values():
            original = client.handle_message

            def tapped(ws: Any, message: Any, _original: Any = original) -> Any:
                try:
                    push = self.dialect.account_push(message, symbol_of)
                except BadData:
                    push = None  # an unreadable push changes nothing cached; the reconciliation reads REST
                if push is not None:
                    listener(push)
                return _original(ws, message)

            client.handle_message = tapped

    def subscribe(self, listener: Callable[[Any], None]) -> None:
        """Call `listener` with each event the exchange pushes on its own (funding, liquidation, ADL, margin moves)."""
        self._tap_user_stream()
        self._event_listeners.append(listener)

    def _tap_user_stream(self) -> None:
        if not self._tapped:
            self._tapped = True
            self.dialect.tap_user_stream(self.futures, self._venue_event)

    def _venue_event(self, event: Any) -> None:
        for listener in list(self._event_listeners):
            listener(event)

    async def close(self) -> None:
        """Close the clients' HTTP sessions."""
        for client in {id(self.futures): self.futures, id(self.spot): self.spot}.values():
            await client.close()


# ccxt's order statuses that say the order is over: what its answer says filled is final
# (a Binance MARKET order out of liquidity ends EXPIRED with part of it executed).
_ENDED = frozenset({"closed", "expired", "canceled", "rejected"})


def _client_class(exchange_id: str) -> Any:
    """Return ccxt's client class with websocket support (ccxt.pro) when it has one, else the REST-only one."""
    try:
        import ccxt.pro as ccxt_pro
    except ImportError:  # pragma: no cover - ccxt ships pro since 1.95
        return getattr(ccxt_async, exchange_id)
    return getattr(ccxt_pro, exchange_id, None) or getattr(ccxt_async, exchange_id)


async def _reraise(exc: BaseException) -> Any:
    raise exc

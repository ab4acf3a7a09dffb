"""What a ccxt exchange must tell the venue: the dialect interface.

`CcxtVenue` speaks ccxt's unified API and does everything that is the same
on every exchange: market rules, orders by client id, mark price, funding,
error families. A dialect supplies what differs: how the short leg and the
client id are named in an order, how an exchange code maps to the port's
errors, how both legs and the futures wallet are read from the exchange's
raw answers, where margin and transfer history live, and what the account
and its key allow. Adding an exchange means writing one of these, not
copying the venue.
"""

from __future__ import annotations

import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from hedgebot.domain.model import Bracket, Leg, MarginMode, PositionMode, PositionSide, Wallet
from hedgebot.domain.instrument import InstrumentKind
from hedgebot.domain.roll import Contract
from hedgebot.exchange.port import (
    AccountFacts,
    BadData,
    ExchangeError,
    FundingPayment,
    FundsMovement,
    FundsQuery,
    FuturesBalance,
    Legs,
    ModeError,
    OrderRequest,
    PriceQuote,
)
from hedgebot.exchange.ratelimit import WeightFamily
from hedgebot.exchange.streaming import StreamSpec
from hedgebot.exchange.withdrawals import Withdrawal, WithdrawalRequest

_CODE = re.compile(r'"code"\s*:\s*"?(-?\d+)')


class Dialect(ABC):
    """One exchange's way of saying what the port asks, over ccxt's async clients."""

    #: ccxt id of the client that trades the perpetuals
    futures_id: str
    #: ccxt id of the client that holds the spot wallet (the same id when one client does both)
    spot_id: str
    #: the exchange's own name for the request field that carries our client order id
    client_id_field: str
    #: codes that mean "already so" when setting the position or margin mode
    already_set_codes: frozenset[str] = frozenset()
    #: how messages name the exchange
    label: str = "exchange"
    #: seconds after sending within which a lookup that misses an order proves nothing: the exchanges
    #: document that reads may lag and that a request answered "unknown" may still execute
    #: (docs/exchanges.md, "Orders of unknown outcome")
    settle_seconds: float = 30.0
    #: exchange codes hedgebot acts on: code -> (port error, what the user should know)
    codes: Mapping[str, tuple[type[ExchangeError], str]] = {}
    #: a generic parameter code that means "position side mismatch" when its message names this parameter
    side_mismatch: tuple[str, str] | None = None
    #: what to change on the exchange when the account is not in hedge mode
    hedge_mode_hint: str = "switch the account to hedge mode"
    #: one wallet holds the coins and the futures margin (unified accounts): no transfers
    unified_wallet: bool = False
    #: hedgebot can send withdrawals on this exchange (the buffer's refill)
    withdrawals_supported: bool = False
    #: maintenance tiers are bounded by size, so loading them needs the mark price
    tiers_need_mark: bool = False
    #: the step of a margin amount, when it is not the market's amount step
    margin_step: Decimal | None = None
    #: the exchange's per-IP request-weight limits and the headers that report their use (none known: only
    #: Retry-After on 429/418 is obeyed)
    weight_families: tuple[WeightFamily, ...] = ()
    #: the futures user-data stream pushes legs and balances the port may serve between REST reads (`account_push`)
    pushes_account: bool = False

    #: the instruments whose legs this exchange's accounts keep apart in hedge mode; a live hedge on another
    #: is refused by `check` and `run`
    instruments: frozenset[InstrumentKind] = frozenset({InstrumentKind.USDM_PERP, InstrumentKind.USDM_QUARTERLY})
    #: why an instrument the exchange lists cannot hold a hedge here (shown with the refusal)
    unhedgeable: Mapping[InstrumentKind, str] = {}
    #: the field of a delivery contract's raw listing (ccxt's market `info`) that holds its delivery time, in ms
    delivery_time_field: str = "deliveryDate"
    #: the field that holds the contract's status, and the statuses in which it takes new orders
    status_field: str = "status"
    tradable_statuses: frozenset[str] = frozenset({"TRADING"})

    def delivery_contract(self, market: Mapping[str, Any]) -> Contract:
        """Return a delivery contract's symbol, delivery time and tradability from its raw listing."""
        info = market.get("info") or {}
        symbol = str(market.get("symbol"))
        stamp = decimal_value(info.get(self.delivery_time_field), f"{self.label} {symbol} {self.delivery_time_field}")
        if stamp <= 0:
            raise BadData(f"{self.label} {symbol}: {self.delivery_time_field} {stamp} is not a delivery time")
        status = info.get(self.status_field)
        if status in (None, ""):
            raise BadData(f"the exchange sent no {self.label} {symbol} {self.status_field}")
        return Contract(symbol, float(stamp) / 1000, str(status) in self.tradable_statuses)

    def request_weight(self, method: str, path: str, query: Mapping[str, str]) -> int:
        """Return the weight the exchange counts for a request (1 unless the dialect knows better)."""
        return 1

    def client_options(self, *, futures: bool) -> dict[str, Any]:
        """Return ccxt options for the futures (or spot) client."""
        return {}

    def configure(self, client: Any) -> None:
        """Adjust a freshly built ccxt client (capabilities ccxt reads from `has`, not from options)."""

    def credentials(self, api_key: str | None, secret: str | None, password: str | None) -> dict[str, Any]:
        """Return the ccxt config entries that carry the account's credentials."""
        config: dict[str, Any] = {}
        if api_key:
            config.update(apiKey=api_key, secret=secret)
        if password:
            config["password"] = password
        return config

    def error_code(self, exc: Exception) -> str | None:
        """Return the exchange's error code carried by a ccxt exception, if any."""
        match = _CODE.search(str(exc))
        return match.group(1) if match else None

    def error_for_code(self, code: str, message: str) -> ExchangeError | None:
        """Return the port error an exchange code stands for, or None to fall back on ccxt's class."""
        if self.side_mismatch is not None and code == self.side_mismatch[0] and self.side_mismatch[1] in message.lower():
            return ModeError(
                f"{self.label} {code}: the order's position side does not match the account's position mode: "
                f"{self.hedge_mode_hint} ({message})"
            )
        known = self.codes.get(code)
        if known is None:
            return None
        cls, meaning = known
        return cls(f"{self.label} {code}: {meaning} ({message})")

    async def free_spot_balance(self, spot: Any, asset: str) -> Decimal:
        """Return how much of `asset` the spot wallet holds free (not held by orders)."""
        balance = await spot.fetch_balance()
        free = (balance.get("free") or {}).get(asset)
        return decimal_value(free, f"spot free {asset}") if free is not None else Decimal(0)

    async def deposit_address(self, spot: Any, asset: str, network: str | None) -> str | None:
        """Return the account's deposit address for `asset` on `network` (None: the exchange cannot say here)."""
        return None

    async def withdrawal_whitelisted(self, spot: Any, asset: str, address: str, network: str | None) -> bool:
        """Tell whether the exchange's withdrawal whitelist holds `address` for `asset` (and network)."""
        raise ExchangeError(f"withdrawals on {self.label} are not built: set allow_withdraw = false and deposit by hand")

    async def withdraw(self, spot: Any, request: WithdrawalRequest, now: float) -> Withdrawal:
        """Send a withdrawal under the request's client id."""
        raise ExchangeError(f"withdrawals on {self.label} are not built: set allow_withdraw = false and deposit by hand")

    async def find_withdrawal(self, spot: Any, client_id: str, since: float) -> Withdrawal | None:
        """Find a withdrawal by its client id in the exchange's withdrawal history."""
        raise ExchangeError(f"withdrawals on {self.label} are not built: nothing was withdrawn there by hedgebot")

    @abstractmethod
    def order_params(self, request: OrderRequest) -> dict[str, Any]:
        """Return the params that carry the client id and the position side (the close form in hedge mode)."""

    @abstractmethod
    def margin_params(self, side: PositionSide) -> dict[str, Any]:
        """Return the params that name the leg for add_margin / reduce_margin."""

    @abstractmethod
    def wallet_name(self, wallet: Wallet) -> str:
        """Return ccxt's account name of a wallet for `transfer`."""

    @abstractmethod
    async def fetch_legs(self, futures: Any, symbol: str) -> Legs:
        """Read both legs of a contract."""

    @abstractmethod
    async def fetch_futures_balance(self, futures: Any, asset: str) -> FuturesBalance:
        """Read the futures wallet of the settlement asset."""

    @abstractmethod
    async def fetch_margin_mode(self, futures: Any, symbol: str) -> MarginMode:
        """Read the contract's margin mode."""

    @abstractmethod
    async def fetch_leverage(self, futures: Any, symbol: str) -> int:
        """Read the contract's leverage."""

    @abstractmethod
    async def find_margin_change(self, futures: Any, query: FundsQuery) -> FundsMovement | None:
        """Search the exchange's position-margin history."""

    @abstractmethod
    async def find_transfer(self, spot: Any, futures: Any, query: FundsQuery) -> FundsMovement | None:
        """Search the exchange's transfer history."""

    @abstractmethod
    async def fetch_account_facts(self, spot: Any, futures: Any) -> AccountFacts:
        """Read the key's permissions and the account modes the start-up checks refuse."""


    # ---- what most exchanges do through ccxt's unified methods; a dialect overrides what differs ----

    def margin_step_for(self, market: Mapping[str, Any]) -> Decimal | None:
        """Return the step of a margin amount on `market` (None: the market's amount step)."""
        return self.margin_step

    def contract_size(self, market: Mapping[str, Any]) -> Decimal:
        """Return the base units in one contract of a ccxt market (1 where amounts are in base units)."""
        size = decimal_value(market.get("contractSize") or 1, f"{market.get('symbol')} contract size")
        if size <= 0:
            raise BadData(f"{market.get('symbol')} contract size {size} is not positive")
        return Decimal(int(size)) if size == size.to_integral_value() else size

    def order_position_side(self, info: Mapping[str, Any]) -> PositionSide | None:
        """Return the leg an order's raw answer names (Binance-style `positionSide`)."""
        text = str(info.get("positionSide") or "").upper()
        return PositionSide(text.lower()) if text in {"LONG", "SHORT"} else None

    async def fetch_spot_balances(self, spot: Any, settle: str) -> dict[str, Decimal]:
        """Return the spot wallet's totals (`settle` matters only to unified wallets)."""
        balance = await spot.fetch_balance()
        totals = balance.get("total") or {}
        return {asset: decimal_value(amount, f"spot {asset}") for asset, amount in totals.items() if amount}

    async def fetch_position_mode(self, futures: Any, symbols: list[str]) -> PositionMode:
        """Return hedge or one-way (`symbols`: the contracts loaded so far, for exchanges that keep it per contract)."""
        answer = await futures.fetch_position_mode()
        return PositionMode.HEDGE if answer.get("hedged") else PositionMode.ONE_WAY

    async def set_position_mode(self, futures: Any, mode: PositionMode) -> None:
        """Switch hedge mode on or off."""
        await futures.set_position_mode(mode is PositionMode.HEDGE)

    async def set_margin_mode(self, futures: Any, symbol: str, mode: MarginMode) -> None:
        """Set the contract's margin mode."""
        await futures.set_margin_mode(mode.value, symbol)

    async def set_leverage(self, futures: Any, symbol: str, leverage: int) -> None:
        """Set the contract's leverage."""
        await futures.set_leverage(leverage, symbol)

    async def adjust_margin(self, futures: Any, symbol: str, side: PositionSide, amount: Decimal) -> None:
        """Add (positive) or remove (negative) isolated margin on the leg."""
        method = futures.add_margin if amount > 0 else futures.reduce_margin
        await method(symbol, float(abs(amount)), self.margin_params(side))

    async def fetch_order(self, client: Any, symbol: str, client_id: str) -> dict[str, Any] | None:
        """Return ccxt's order found by client id, or None when the exchange never saw it."""
        import ccxt

        try:
            return dict(await client.fetch_order(None, symbol, {"clientOrderId": client_id}))
        except ccxt.OrderNotFound:
            return None

    #: the most orders one history page holds (Binance allOrders: 1000)
    history_limit: int = 1000

    async def fetch_order_history(self, client: Any, symbol: str, since_ms: int, until_ms: int) -> tuple[list[dict[str, Any]], bool]:
        """Return ccxt's orders on `symbol` created in [since_ms, until_ms] (Binance allOrders), and whether the list is whole.

        A full page may have cut orders off: it is reported incomplete, and proves no order absent.
        """
        orders = await client.fetch_orders(symbol, since_ms, self.history_limit, {"until": until_ms})
        return [dict(o) for o in orders], len(orders) < self.history_limit

    async def fetch_mark_price(self, futures: Any, symbol: str) -> PriceQuote:
        """Return the mark price stamped with the exchange's own time (infinitely old without one)."""
        ticker = await futures.fetch_mark_price(symbol)
        info = ticker.get("info") or {}
        price = decimal_value(info.get("markPrice", ticker.get("markPrice")), f"{symbol} mark price")
        stamp = info.get("time") or ticker.get("timestamp")
        return PriceQuote(price, int(stamp) / 1000 if stamp else -math.inf)

    async def fetch_brackets(self, futures: Any, symbol: str, mark: Decimal | None) -> tuple[Bracket, ...]:
        """Return the maintenance brackets from ccxt's leverage tiers (`mark` converts size-bounded tiers)."""
        tiers = await futures.fetch_leverage_tiers([symbol])
        return tuple(
            Bracket(
                decimal_value(t.get("minNotional"), "minNotional"),
                decimal_value(t.get("maxNotional"), "maxNotional"),
                decimal_value(t.get("maintenanceMarginRate"), "maintenanceMarginRate"),
                decimal_value((t.get("info") or {}).get("cum", 0), "cum"),
                int(t["maxLeverage"]) if t.get("maxLeverage") else None,
            )
            for t in tiers.get(symbol, [])
        )

    # ---- streams --------------------------------------------------------------------

    def stream_specs(self, futures: Any, symbols: list[str], stale_after: float) -> list[StreamSpec]:
        """Return the websocket feeds ccxt offers for `symbols`: mark price, positions, orders and balance.

        Mark prices speak every second or so, so silence beyond `stale_after` is staleness;
        the account feeds speak only on change, so only a failure takes them down.
        """
        has = getattr(futures, "has", {}) or {}
        specs: list[StreamSpec] = []
        for symbol in symbols:
            if has.get("watchMarkPrice"):
                specs.append(StreamSpec(f"mark {symbol}", _watch(futures.watch_mark_price, symbol), stale_after, self.streamed_mark, symbol))
            if has.get("watchPositions"):
                carries = frozenset({"futures"}) if self.pushes_account else frozenset()
                specs.append(StreamSpec(f"positions {symbol}", _watch(futures.watch_positions, [symbol]), symbol=symbol, carries=carries))
            if has.get("watchOrders"):
                specs.append(StreamSpec(f"orders {symbol}", _watch(futures.watch_orders, symbol), symbol=symbol))
        if has.get("watchBalance"):
            specs.append(StreamSpec("balance", futures.watch_balance))
        return specs

    def streamed_mark(self, update: Mapping[str, Any]) -> PriceQuote:
        """Return the mark price of a streamed ticker, stamped with the exchange's event time."""
        info = update.get("info") or {}
        price = info.get("p") if isinstance(info, Mapping) and info.get("p") is not None else update.get("markPrice")
        stamp = update.get("timestamp")
        return PriceQuote(decimal_value(price, "streamed mark price"), int(stamp) / 1000 if stamp else -math.inf)

    def tap_user_stream(self, futures: Any, on_event: Callable[[Any], None]) -> None:
        """Watch the raw user-data messages ccxt receives, for events ccxt drops (default: nothing to watch)."""

    def spot_stream_specs(self, spot: Any) -> list[StreamSpec]:
        """Return the spot wallet's user-data feed, when the exchange pushes it in a shape `account_push` reads (default: none)."""
        return []

    def account_push(self, message: Any, symbol_of: Callable[[str], str]) -> Any:
        """Return the `AccountPush` a raw user-data message carries, or None (default: the port reads REST only)."""
        return None

    def spot_stream_specs(self, spot: Any) -> list[StreamSpec]:
        """Return the spot wallet's user-data feed, when the exchange pushes it in a shape `account_push` reads (default: none)."""
        return []

    def account_push(self, message: Any, symbol_of: Callable[[str], str]) -> Any:
        """Return the `AccountPush` a raw user-data message carries, or None (default: the port reads REST only)."""
        return None

    async def fetch_funding_history(self, futures: Any, symbol: str, since: float) -> list[FundingPayment]:
        """Return the account's funding payments on the contract since `since`."""
        rows = await futures.fetch_funding_history(symbol, int(since * 1000))
        return [
            FundingPayment(symbol, str(r.get("code")), decimal_value(r.get("amount"), "funding amount"), int(r["timestamp"]) / 1000)
            for r in rows
        ]


def _watch(method: Callable[..., Awaitable[Any]], argument: Any) -> Callable[[], Awaitable[Any]]:
    """Return a no-argument watcher calling `method(argument)`."""

    def watch() -> Awaitable[Any]:
        return method(argument)

    return watch


def decimal_value(value: Any, where: str) -> Decimal:
    """Return an exchange's number as a finite Decimal, or raise BadData naming `where`."""
    if value is None or value == "":
        raise BadData(f"the exchange sent no {where}")
    try:
        number = Decimal(str(value))
    except ArithmeticError as exc:
        raise BadData(f"{where}: {value!r} is not a number") from exc
    if not number.is_finite():
        raise BadData(f"{where}: {value!r} is not finite")
    return number


def decimal_field(row: Mapping[str, Any], key: str, where: str, default: str | None = None) -> Decimal:
    """Return `row[key]` as a Decimal (an empty or missing value is `default`, else BadData)."""
    value = row.get(key)
    if (value is None or value == "") and default is not None:
        value = default
    return decimal_value(value, f"{where} {key}")


def error_body(exc: Exception) -> dict[str, Any] | None:
    """Return the JSON body ccxt quotes after the exchange id in its exception message."""
    text = str(exc)
    start = text.find("{")
    if start < 0:
        return None
    try:
        body = json.loads(text[start:])
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def tiers_with_maintenance_amounts(rows: Iterable[tuple[Decimal | None, Decimal, Decimal, Any]]) -> tuple[Bracket, ...]:
    """Return brackets from (floor or None, cap, rate, max leverage) tiers in ascending order.

    Exchanges that publish no maintenance amount get Binance's: the amount that
    keeps maintenance margin continuous across a tier boundary,
    cum_i = cum_{i-1} + floor_i * (rate_i - rate_{i-1}). A missing floor is the
    previous tier's cap, so the tiers leave no gap.
    """
    out: list[Bracket] = []
    previous_cap, previous_rate, cum = Decimal(0), Decimal(0), Decimal(0)
    for floor, cap, rate, leverage in rows:
        start = previous_cap if out else (floor or Decimal(0))
        cum += start * (rate - previous_rate)
        out.append(Bracket(start, cap, rate, cum, int(Decimal(str(leverage))) if leverage else None))
        previous_cap, previous_rate = cap, rate
    if not out:
        raise BadData("the exchange sent no maintenance tiers")
    return tuple(out)


def leg_from(side: PositionSide, size: Decimal, entry: Decimal, margin: Decimal) -> Leg:
    """Return a leg, empty when the size is zero."""
    if size == 0:
        return Leg(side)
    return Leg(side, abs(size), entry, margin)


def symbol_parts(symbol: str) -> tuple[str, str, str, str | None]:
    """Split a ccxt contract symbol ('BTC/USD:BTC-260327') into base, quote, settle and expiry tag (None: perpetual)."""
    pair, _, settle_part = symbol.partition(":")
    base, _, quote = pair.partition("/")
    settle, _, expiry = settle_part.partition("-")
    return base, quote, settle, expiry or None

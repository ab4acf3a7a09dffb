"""The one protocol the engine uses to talk to any venue, and the errors it understands.

Errors come in two families. `TransientError` (timeouts, rate limits, 5xx)
may be retried; after one on a write, the outcome is unknown and must be
looked up by client id before anything is sent again. `PermanentError`
(rejections, insufficient funds, bad symbol, wrong mode) must not be retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from hedgebot.domain.model import Leg, MarginMode, Market, OrderSide, PositionMode, PositionSide, Wallet
from hedgebot.domain.roll import Contract


class ExchangeError(Exception):
    """Anything a venue reports as a failure."""


class TransientError(ExchangeError):
    """A failure that may pass: the request may or may not have been executed."""


class RequestTimeout(TransientError):
    """No answer in time."""


class RateLimited(TransientError):
    """The venue asked us to slow down (or the venue's own throttle held the request back): it was not executed."""


class IpBanned(RateLimited):
    """The exchange banned this IP (Binance HTTP 418) until `until` (seconds since the epoch, local clock)."""

    def __init__(self, message: str, until: float) -> None:
        super().__init__(message)
        self.until = until


class ExchangeBusy(TransientError):
    """The exchange refused the request for now (a throttle, price protection); it was not executed."""


class Fenced(TransientError):
    """This daemon's lease on the account has lapsed (or was taken over): the request was not sent, and none will be."""


class VenueUnavailable(TransientError):
    """The venue answered with a server error or maintenance."""


class ServerStruggling(RequestTimeout):
    """The exchange could not process the request for now (Binance -1001): the outcome is unknown, and it is busy."""


class PermanentError(ExchangeError):
    """A definite refusal: retrying the same request cannot help."""


class InsufficientFunds(PermanentError):
    """Not enough balance or margin for the request."""


class InvalidOrder(PermanentError):
    """The order breaks a market rule or the account's mode."""


class DuplicateClientId(InvalidOrder):
    """An order or operation with this client id already exists."""


class AuthenticationFailed(PermanentError):
    """The key, secret, signature or the key's permissions were refused."""


class ModeError(PermanentError):
    """Position mode, margin mode or leverage cannot be what was asked."""


class BadData(PermanentError):
    """The venue's answer cannot be trusted (absurd or malformed)."""


class OrderStatus(StrEnum):
    FILLED = "filled"
    PARTIAL = "partial"  # closed with part of the amount unfilled (market IOC)
    REJECTED = "rejected"  # ended with nothing filled
    PENDING = "pending"  # accepted and still working (Bybit "New", OKX "live"): its outcome is not known yet


@dataclass(frozen=True)
class OrderRequest:
    """A market order, identified by a client id the caller chose and journaled."""

    client_id: str
    symbol: str
    side: OrderSide
    amount: Decimal
    position_side: PositionSide | None
    reduce_only: bool = False


@dataclass(frozen=True)
class OrderResult:
    """What the venue did with an order."""

    client_id: str
    order_id: str
    symbol: str
    side: OrderSide
    position_side: PositionSide | None
    amount: Decimal
    filled: Decimal
    average_price: Decimal
    fee: Decimal
    status: OrderStatus
    timestamp: float


@dataclass(frozen=True)
class OrderHistory:
    """A venue's orders on one symbol over a time window, as its order history shows them.

    `complete` is False when the venue cut the list short (its page limit was reached):
    an order missing from an incomplete history proves nothing.
    """

    orders: tuple[OrderResult, ...]
    complete: bool

    def find(self, client_id: str) -> OrderResult | None:
        """Return the order carrying `client_id`, or None when the history holds none."""
        return next((o for o in self.orders if o.client_id == client_id), None)


class ClockSkew(TransientError):
    """The venue refused the request's timestamp (Binance -1021); it was not executed."""


@dataclass(frozen=True)
class FundsMovement:
    """A margin change or a wallet transfer as the venue recorded it.

    Venues give these no client id (Binance keeps none), so a movement is
    known by the venue's own id and found again by what it moved and when.
    """

    venue_id: str
    kind: str  # "margin" or "transfer"
    asset: str
    amount: Decimal  # margin: positive added, negative removed; transfer: positive
    timestamp: float


@dataclass(frozen=True)
class FundsQuery:
    """What to look for in the venue's history to settle an ambiguous margin change or transfer.

    A match has the same kind, asset and amount, happened inside
    [since, until] (seconds on the exchange's clock, which stamps its history), and is not one of the `claimed` venue ids (movements
    already owned by other journaled intents). Two identical movements
    inside the window cannot be told apart; see docs/exchanges.md.
    """

    kind: str
    asset: str
    amount: Decimal
    since: float
    until: float
    symbol: str | None = None
    side: PositionSide | None = None
    source: Wallet | None = None
    destination: Wallet | None = None
    claimed: frozenset[str] = frozenset()

    def matches(self, movement: FundsMovement) -> bool:
        """Tell whether `movement` answers this query (symbol, side and wallets are the caller's to check)."""
        return (
            movement.kind == self.kind
            and movement.asset == self.asset
            and movement.amount == self.amount
            and self.since <= movement.timestamp <= self.until
            and movement.venue_id not in self.claimed
        )


@dataclass(frozen=True)
class AccountFacts:
    """What the venue says about the account and its key, for the start-up checks."""

    can_withdraw: bool = False
    ip_restricted: bool = True
    multi_assets_margin: bool = False
    portfolio_margin: bool = False
    # None: the venue does not say (then nothing is concluded from it).
    can_trade_futures: bool | None = None
    can_transfer: bool | None = None  # between the spot and futures wallets
    can_trade_spot: bool | None = None


@dataclass(frozen=True)
class FundingQuote:
    """The contract's current funding rate and when it next settles."""

    rate: Decimal
    next_funding_time: float | None
    timestamp: float


@dataclass(frozen=True)
class FundingPayment:
    """One funding settlement paid (negative) or received (positive) by the account."""

    symbol: str
    asset: str
    amount: Decimal
    timestamp: float


@dataclass(frozen=True)
class PriceQuote:
    """A mark price and when the venue produced it."""

    price: Decimal
    timestamp: float


@dataclass(frozen=True)
class Candle:
    """One closed candle of a market's last-trade price: its start (seconds) and its prices."""

    start: float
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


@dataclass(frozen=True)
class FuturesBalance:
    """The futures wallet in the settlement asset."""

    wallet: Decimal  # cash plus isolated margin posted
    free: Decimal  # what may be used for a new order, margin or transfer
    cross_wallet: Decimal | None = None  # the wallet without isolated margin: what backs cross positions


@dataclass(frozen=True)
class Legs:
    """Both legs of one contract in hedge mode."""

    long: Leg
    short: Leg

    def of(self, side: PositionSide) -> Leg:
        """Return the leg of `side`."""
        return self.short if side is PositionSide.SHORT else self.long


class ExchangePort(Protocol):
    """What the keeper and the daemon need from a venue, paper or real."""

    name: str
    # Seconds within which a lookup that misses an order proves nothing (lookups may lag, and a request
    # answered "unknown" may still execute); past it, a miss proves the order absent.
    settle_seconds: float

    async def load_market(self, symbol: str) -> Market:
        """Return the trading rules of a perpetual contract, with the maintenance brackets the venue serves now."""
        ...

    async def fetch_spot_balances(self) -> dict[str, Decimal]:
        """Return the spot wallet's total balance by asset."""
        ...

    async def fetch_futures_balance(self, asset: str) -> FuturesBalance:
        """Return the futures wallet balance of the settlement asset."""
        ...

    async def fetch_delivery_contracts(self, symbol: str) -> list[Contract]:
        """Return the delivery contracts listed now for a market named without expiry ('BTC/USDT:USDT').

        Each carries its own symbol ('BTC/USDT:USDT-260327'), its delivery time and whether the exchange's
        contract status lets it trade; a contract past delivery is not listed.
        """
        ...

    async def fetch_legs(self, symbol: str) -> Legs:
        """Return both legs of the contract (size 0 where there is no position)."""
        ...

    async def fetch_mark_price(self, symbol: str) -> PriceQuote:
        """Return the contract's mark price."""
        ...

    async def fetch_ohlcv(self, symbol: str, timeframe: str, since: float, limit: int) -> list[Candle]:
        """Return the market's closed candles of `timeframe` starting at or after `since`, oldest first, at most `limit`."""
        ...

    async def place_order(self, request: OrderRequest) -> OrderResult:
        """Send a market order; the perpetual when position_side is set or the symbol has ':'."""
        ...

    async def fetch_order(self, symbol: str, client_id: str) -> OrderResult | None:
        """Look an order up by client id; None when the venue never saw it (ccxt's OrderNotFound)."""
        ...

    async def fetch_order_history(self, symbol: str, since: float, until: float) -> OrderHistory:
        """Return every order on `symbol` created inside [since, until] (seconds, the venue's time), open or ended.

        The keeper proves an order of unknown outcome absent only from this (Binance allOrders,
        Bybit order/history, OKX orders-history), asked after the venue's settle delay.
        """
        ...

    async def fetch_position_mode(self) -> PositionMode:
        """Return the account's position mode."""
        ...

    async def set_position_mode(self, mode: PositionMode) -> None:
        """Change the position mode (refused while positions or open orders exist)."""
        ...

    async def fetch_margin_mode(self, symbol: str) -> MarginMode:
        """Return the contract's margin mode."""
        ...

    async def set_margin_mode(self, symbol: str, mode: MarginMode) -> None:
        """Change the contract's margin mode (refused while it has positions)."""
        ...

    async def fetch_leverage(self, symbol: str) -> int:
        """Return the contract's leverage."""
        ...

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        """Change the contract's leverage."""
        ...

    async def adjust_margin(self, symbol: str, side: PositionSide, amount: Decimal) -> FundsMovement:
        """Add (positive) or remove (negative) isolated margin on a leg (no client id: venues keep none)."""
        ...

    async def transfer(self, asset: str, amount: Decimal, source: Wallet, destination: Wallet) -> FundsMovement:
        """Move an asset between the spot and futures wallets (no client id: venues keep none)."""
        ...

    async def find_funds_movement(self, query: FundsQuery) -> FundsMovement | None:
        """Search the venue's own margin or transfer history; None when nothing matches."""
        ...

    async def fetch_funding_rate(self, symbol: str) -> FundingQuote:
        """Return the contract's current funding rate."""
        ...

    async def fetch_funding_rates(self, symbol: str, since: float) -> list[tuple[float, Decimal]]:
        """Return the market's settled funding rates since `since`, oldest first, as (time, rate).

        Public market history, not the account's payments; every page from `since` (an exchange may hold fewer).
        """
        ...

    async def fetch_funding_history(self, symbol: str, since: float) -> list[FundingPayment]:
        """Return the account's funding payments on the contract since `since`."""
        ...

    async def fetch_account_facts(self) -> AccountFacts:
        """Return the key's permissions and the account modes the start-up checks refuse."""
        ...

    def warm_in(self) -> float:
        """Return the seconds until the venue can send a start-up's requests without pacing them (0: now).

        A standby consults it before taking a lease over, so that a warm standby goes before a cold one.
        """
        ...

    async def close(self) -> None:
        """Release network sessions."""
        ...

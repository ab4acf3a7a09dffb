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

import re
from abc import ABC, abstractmethod
from decimal import Decimal
from typing import Any

from hedgebot.domain.model import Leg, MarginMode, PositionSide, Wallet
from hedgebot.exchange.port import (
    AccountFacts,
    ExchangeError,
    FundsMovement,
    FundsQuery,
    FuturesBalance,
    Legs,
    OrderRequest,
)

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

    def client_options(self, *, futures: bool) -> dict[str, Any]:
        """Return ccxt options for the futures (or spot) client."""
        return {}

    def error_code(self, exc: Exception) -> str | None:
        """Return the exchange's error code carried by a ccxt exception, if any."""
        match = _CODE.search(str(exc))
        return match.group(1) if match else None

    @abstractmethod
    def error_for_code(self, code: str, message: str) -> ExchangeError | None:
        """Return the port error an exchange code stands for, or None to fall back on ccxt's class."""

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


def leg_from(side: PositionSide, size: Decimal, entry: Decimal, margin: Decimal) -> Leg:
    """Return a leg, empty when the size is zero."""
    if size == 0:
        return Leg(side)
    return Leg(side, abs(size), entry, margin)

"""A seeded fault injector that wraps any `ExchangePort`.

It makes the venue behave as a bad day on a real exchange does: requests
that time out before reaching it, requests it executed but whose answer was
lost, rate limits, server errors, duplicate-client-id rejections of requests
it already executed, and stale or absurd mark prices. Partial fills come from
the paper venue's own fill model.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from hedgebot.exchange.port import (
    DuplicateClientId,
    ExchangePort,
    PriceQuote,
    RateLimited,
    RequestTimeout,
    VenueUnavailable,
)

T = TypeVar("T")


@dataclass(frozen=True)
class FaultRates:
    """Probability of each fault per call."""

    timeout_before: float = 0.04
    timeout_after: float = 0.04
    rate_limited: float = 0.03
    server_error: float = 0.03
    duplicate_after: float = 0.02
    stale_price: float = 0.03
    absurd_price: float = 0.02


class FaultyPort:
    """Wraps a port and injects faults drawn from a seeded generator."""

    def __init__(self, inner: ExchangePort, seed: int, rates: FaultRates | None = None) -> None:
        self.inner = inner
        self.name = f"faulty({inner.name})"
        self.rates = rates or FaultRates()
        self.rng = random.Random(seed)
        self.enabled = True
        self.injected: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _roll(self, kind: str) -> bool:
        if self.enabled and self.rng.random() < getattr(self.rates, kind):
            self.injected[kind] += 1
            return True
        return False

    def _before(self) -> None:
        if self._roll("timeout_before"):
            raise RequestTimeout("injected: timed out before reaching the venue")
        if self._roll("rate_limited"):
            raise RateLimited("injected: 429 too many requests")
        if self._roll("server_error"):
            raise VenueUnavailable("injected: 503 service unavailable")

    async def _read(self, call: Callable[[], Awaitable[T]]) -> T:
        self._before()
        return await call()

    async def _write(self, call: Callable[[], Awaitable[T]]) -> T:
        self._before()
        result = await call()
        if self._roll("timeout_after"):
            raise RequestTimeout("injected: timed out after the venue executed it")
        if self._roll("duplicate_after"):
            raise DuplicateClientId("injected: duplicate client id (the venue already executed it)")
        return result

    # ---- reads ------------------------------------------------------------------

    async def load_market(self, symbol: str) -> Any:
        """Pass through, with faults."""
        return await self._read(lambda: self.inner.load_market(symbol))

    async def fetch_spot_balances(self) -> Any:
        """Pass through, with faults."""
        return await self._read(self.inner.fetch_spot_balances)

    async def fetch_futures_balance(self, asset: str) -> Any:
        """Pass through, with faults."""
        return await self._read(lambda: self.inner.fetch_futures_balance(asset))

    async def fetch_legs(self, symbol: str) -> Any:
        """Pass through, with faults."""
        return await self._read(lambda: self.inner.fetch_legs(symbol))

    async def fetch_mark_price(self, symbol: str) -> PriceQuote:
        """Pass through, sometimes stale or absurd."""
        quote = await self._read(lambda: self.inner.fetch_mark_price(symbol))
        if self._roll("stale_price"):
            return PriceQuote(quote.price, quote.timestamp - 3600)
        if self._roll("absurd_price"):
            return PriceQuote(self.rng.choice([Decimal(0), Decimal(-1), quote.price * 40, Decimal("NaN")]), quote.timestamp)
        return quote

    async def fetch_order(self, symbol: str, client_id: str) -> Any:
        """Pass through, with faults."""
        return await self._read(lambda: self.inner.fetch_order(symbol, client_id))

    async def fetch_order_history(self, symbol: str, since: float, until: float) -> Any:
        """Pass through, with faults."""
        return await self._read(lambda: self.inner.fetch_order_history(symbol, since, until))

    async def find_funds_movement(self, query: Any) -> Any:
        """Pass through, with faults."""
        return await self._read(lambda: self.inner.find_funds_movement(query))

    # ---- writes -----------------------------------------------------------------

    async def place_order(self, request: Any) -> Any:
        """Pass through, with faults before and after execution."""
        return await self._write(lambda: self.inner.place_order(request))

    async def adjust_margin(self, symbol: str, side: Any, amount: Decimal) -> Any:
        """Pass through, with faults before and after execution."""
        return await self._write(lambda: self.inner.adjust_margin(symbol, side, amount))

    async def transfer(self, asset: str, amount: Decimal, source: Any, destination: Any) -> Any:
        """Pass through, with faults before and after execution."""
        return await self._write(lambda: self.inner.transfer(asset, amount, source, destination))

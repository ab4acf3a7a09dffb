"""The options book as the put leg sees it: the protocols it needs of a venue's options and of the account.

Owns the OptionsBook and PriceAndCoins protocols, the adapter that lets the (synchronous) paper options book answer
through the asynchronous one, and finding the book a venue offers. It may not decide what to buy or sell, nor
journal anything: that is the put leg's (`engine.put_leg`).
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any, Protocol

from hedgebot.domain.model import Market
from hedgebot.exchange.paper_options import Lookup, OptionFill, OptionQuoteBook, PutSeries, Settlement


class OptionsBook(Protocol):
    """What the put leg needs of a venue's options: a snapshot of its chain, quotes and holdings, orders, lookups."""

    held: dict[PutSeries, Decimal]
    amount_step: Decimal
    tick: Decimal  # the price step of its orders
    settle_seconds: float  # how long a lookup may miss an order that did reach the book

    async def refresh(self) -> None: ...

    def listed(self) -> list[PutSeries]: ...

    def quote_of(self, series: PutSeries) -> OptionQuoteBook | None: ...

    async def place_limit(self, client_id: str, series: PutSeries, side: str, amount: Decimal, limit: Decimal) -> OptionFill | None: ...

    async def lookup(self, client_id: str, series: PutSeries, sent_at: float, settled: bool) -> Lookup: ...

    async def settle_expired(self) -> list[Settlement]: ...

    def expect(self, held: dict[PutSeries, Decimal]) -> None: ...


class PaperBook:
    """The paper options book seen through the put leg's asynchronous protocol.

    The paper book answers at once and never executes an order later, so a lookup that misses proves the order absent.
    """

    settle_seconds = 0.0

    def __init__(self, book: Any) -> None:
        self._book = book

    @property
    def held(self) -> dict[PutSeries, Decimal]:
        return self._book.held  # type: ignore[no-any-return]

    @property
    def amount_step(self) -> Decimal:
        return self._book.amount_step  # type: ignore[no-any-return]

    @property
    def tick(self) -> Decimal:
        return self._book.tick  # type: ignore[no-any-return]

    async def refresh(self) -> None:
        """Nothing to read: the paper book is in memory."""

    def listed(self) -> list[PutSeries]:
        return self._book.listed()  # type: ignore[no-any-return]

    def quote_of(self, series: PutSeries) -> OptionQuoteBook | None:
        return self._book.quote_of(series)  # type: ignore[no-any-return]

    async def place_limit(self, client_id: str, series: PutSeries, side: str, amount: Decimal, limit: Decimal) -> OptionFill | None:
        return self._book.place_limit(client_id, series, side, amount, limit)  # type: ignore[no-any-return]

    async def lookup(self, client_id: str, series: PutSeries, sent_at: float, settled: bool) -> Lookup:
        return Lookup(True, self._book.find_fill(client_id))

    async def settle_expired(self) -> list[Settlement]:
        return self._book.settle_expired()  # type: ignore[no-any-return]

    def expect(self, held: dict[PutSeries, Decimal]) -> None:
        """Nothing to do: the paper book is saved with the account and settles what expired itself."""


class PriceAndCoins(Protocol):
    """What the put leg reads of the account: the asset's price and the coins held."""

    async def fetch_mark_price(self, symbol: str) -> Any: ...

    async def fetch_spot_balances(self) -> dict[str, Decimal]: ...

    async def load_market(self, symbol: str) -> Market: ...


def options_book_of(venue: Any) -> OptionsBook | None:
    """Return the options book a venue offers (the paper venue's `options`), or None when it has none."""
    with contextlib.suppress(AttributeError):
        return venue.options  # type: ignore[no-any-return]
    return None

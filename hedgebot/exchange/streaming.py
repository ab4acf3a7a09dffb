"""What a venue can stream: named watchers over ccxt's websocket methods, and the account figures they push.

A `StreamSpec` names one feed and the coroutine that returns its next
update. The engine's stream supervisor runs them (`hedgebot.engine.streams`).
Mark-price feeds also say how to read a quote from an update, so the port can
answer from the stream instead of polling while the stream is live.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hedgebot.domain.model import Leg, PositionSide
from hedgebot.exchange.port import PriceQuote

Watch = Callable[[], Awaitable[Any]]


@dataclass(frozen=True)
class StreamSpec:
    """One feed a venue can stream."""

    name: str
    watch: Watch
    #: quiet longer than this (seconds) and the stream is stale; None for feeds that speak only on change
    stale_after: float | None = None
    #: turns an update into a mark price the port may serve instead of polling (mark-price feeds only)
    quote: Callable[[Any], PriceQuote] | None = None
    symbol: str | None = None
    #: the account figures ("futures", "spot") a cache may take from this feed's pushes while it is live
    carries: frozenset[str] = frozenset()


class SubscribedFeed:
    """A watcher that first reports that its subscription stands, then returns each update; after a failure, both again.

    A feed that speaks only on change says nothing while the account is quiet: its subscription's answer is what
    tells that its pushes will arrive.
    """

    SUBSCRIBED: dict[str, bool] = {"subscribed": True}

    def __init__(self, subscribe: Watch, watch: Watch) -> None:
        self.subscribe = subscribe
        self.watch = watch
        self.subscribed = False

    async def __call__(self) -> Any:
        """Return the subscription's confirmation the first time (and after a failure), else the next update."""
        try:
            if not self.subscribed:
                await self.subscribe()
                self.subscribed = True
                return self.SUBSCRIBED
            return await self.watch()
        except BaseException:
            self.subscribed = False
            raise


@dataclass(frozen=True)
class AccountPush:
    """What one user-data message says the account holds now (only what it names; the rest is unchanged).

    Read from the exchange's own push (Binance: ACCOUNT_UPDATE on the futures stream, outboundAccountPosition on
    the spot stream), never from a library's parsed view, so the figures are the exchange's.
    """

    at: float
    #: (symbol, leg) -> the leg as pushed; only the legs that changed
    legs: dict[tuple[str, PositionSide], Leg] = field(default_factory=dict)
    #: futures asset -> (wallet balance incl. isolated margin, cross wallet balance)
    futures: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    #: spot asset -> total (free + locked)
    spot: dict[str, Decimal] = field(default_factory=dict)
    #: symbols with a trade of ours or the exchange's: their legs and the balances are read again over REST, because
    #: the balance push for the same fill may lag or be lost
    fills: frozenset[str] = frozenset()
    #: the spot wallet moved by an amount only (a deposit's balanceUpdate): it is read again over REST
    spot_moved: bool = False
    #: symbols whose legs the push names without saying which changed how: read again over REST
    reread: frozenset[str] = frozenset()

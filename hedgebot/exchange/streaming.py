"""What a venue can stream: named watchers over ccxt's websocket methods, and the events they carry.

A `StreamSpec` names one feed and the coroutine that returns its next
update. The engine's stream supervisor runs them (`hedgebot.engine.streams`).
Mark-price feeds also say how to read a quote from an update, so the port can
answer from the stream instead of polling while the stream is live.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

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

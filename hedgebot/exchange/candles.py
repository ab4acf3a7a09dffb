"""Candles as an exchange serves them: closed ones only, in pages, from a record of the prices a venue has seen.

The paper venue keeps one minute of prices per bucket (open, high, low, close) for
as long as `KEPT_MINUTES`, and answers an OHLCV request the way Binance's
`GET /fapi/v1/klines` does at its harshest: a page holds at most `MOST_PER_PAGE`
candles, a larger `limit` is refused, the candle still forming is not handed
out (this venue hands out only closed candles, so a caller never mistakes a
forming close for a settled one), and nothing older than what it has seen
exists (a paper account started now has no history to backfill from).
"""

from __future__ import annotations

from bisect import bisect_left
from decimal import Decimal
from typing import Any

from hedgebot.exchange.port import Candle, PermanentError

TIMEFRAMES: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14_400, "1d": 86_400}
MOST_PER_PAGE = 1500  # Binance USDⓈ-M klines: "limit: Default 500; max 1500"
KEPT_MINUTES = 60 * 24 * 45  # 45 days of one-minute buckets per market


def timeframe_seconds(timeframe: str) -> int:
    """Return a timeframe's length in seconds; refuse one this project does not speak."""
    try:
        return TIMEFRAMES[timeframe]
    except KeyError:
        raise PermanentError(f"timeframe {timeframe!r} is not one of {sorted(TIMEFRAMES, key=TIMEFRAMES.get)}") from None


class CandleBook:
    """The prices a venue has seen, per market, in one-minute buckets (start, open, high, low, close)."""

    def __init__(self, kept_minutes: int = KEPT_MINUTES) -> None:
        # Oldest first, trimmed to `kept_minutes` by a tenth at a time; a list, so a request bisects to its start.
        self._closed: dict[str, list[tuple[float, Decimal, Decimal, Decimal, Decimal]]] = {}
        self._forming: dict[str, list[Any]] = {}
        self._kept = kept_minutes

    def record(self, symbol: str, at: float, close: Decimal, high: Decimal | None = None, low: Decimal | None = None,
               open_: Decimal | None = None) -> None:
        """Add a price (or a candle's extremes) seen at `at` to its minute."""
        # Called on every price a venue takes (a backtest's every candle): tuples and lists, no objects, no sorting.
        start = at - at % 60
        forming = self._forming.get(symbol)
        top = close if high is None or high < close else high
        bottom = close if low is None or low > close else low
        if forming is None or start > forming[0]:
            if forming is not None:
                closed = self._closed.setdefault(symbol, [])
                closed.append(tuple(forming))  # type: ignore[arg-type]
                if len(closed) > self._kept + self._kept // 10:
                    del closed[: len(closed) - self._kept]
            first = close if open_ is None else open_
            self._forming[symbol] = [start, first, top if top > first else first, bottom if bottom < first else first, close]
            return
        # A late price (at or before the forming minute) lands in the forming minute: time never runs back here.
        if top > forming[2]:
            forming[2] = top
        if bottom < forming[3]:
            forming[3] = bottom
        forming[4] = close

    def candles(self, symbol: str, timeframe: str, since: float, limit: int, now: float) -> list[Candle]:
        """Return the closed candles of `timeframe` starting at or after `since`, oldest first, at most `limit`."""
        if not 1 <= limit <= MOST_PER_PAGE:
            raise PermanentError(f"klines limit {limit} is outside 1..{MOST_PER_PAGE} (the exchange refuses it)")
        length = timeframe_seconds(timeframe)
        closed = self._closed.get(symbol, [])
        minutes: list[Any] = closed[bisect_left(closed, since - length, key=lambda m: m[0]):]
        forming = self._forming.get(symbol)
        if forming is not None:
            minutes.append(tuple(forming))
        out: list[Candle] = []
        current: Candle | None = None
        for minute_start, open_, high, low, close in minutes:
            start = minute_start - minute_start % length
            if start + length > now:
                break  # the candle still forming at `now`, and anything after it
            if start < since:
                continue
            if current is None or start != current.start:
                if current is not None:
                    out.append(current)
                    if len(out) == limit:
                        return out
                current = Candle(start, open_, high, low, close)
            else:
                current = Candle(start, current.open, max(current.high, high), min(current.low, low), close)
        if current is not None:
            out.append(current)
        return out[:limit]

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

from collections import deque
from decimal import Decimal

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
    """The prices a venue has seen, per market, in one-minute buckets."""

    def __init__(self, kept_minutes: int = KEPT_MINUTES) -> None:
        self._closed: dict[str, deque[Candle]] = {}
        self._forming: dict[str, Candle] = {}
        self._kept = kept_minutes

    def record(self, symbol: str, at: float, close: Decimal, high: Decimal | None = None, low: Decimal | None = None,
               open_: Decimal | None = None) -> None:
        """Add a price (or a candle's extremes) seen at `at` to its minute."""
        start = at - at % 60
        forming = self._forming.get(symbol)
        top = max(close, high) if high is not None else close
        bottom = min(close, low) if low is not None else close
        if forming is None or start > forming.start:
            if forming is not None:
                self._closed.setdefault(symbol, deque(maxlen=self._kept)).append(forming)
            first = open_ if open_ is not None else close
            self._forming[symbol] = Candle(start, first, max(top, first), min(bottom, first), close)
            return
        # A late price (at or before the forming minute) lands in the forming minute: time never runs back here.
        self._forming[symbol] = Candle(forming.start, forming.open, max(forming.high, top), min(forming.low, bottom), close)

    def candles(self, symbol: str, timeframe: str, since: float, limit: int, now: float) -> list[Candle]:
        """Return the closed candles of `timeframe` starting at or after `since`, oldest first, at most `limit`."""
        if not 1 <= limit <= MOST_PER_PAGE:
            raise PermanentError(f"klines limit {limit} is outside 1..{MOST_PER_PAGE} (the exchange refuses it)")
        length = timeframe_seconds(timeframe)
        minutes = list(self._closed.get(symbol, ()))
        forming = self._forming.get(symbol)
        if forming is not None:
            minutes.append(forming)
        out: list[Candle] = []
        current: Candle | None = None
        for minute in minutes:
            start = minute.start - minute.start % length
            if start + length > now:
                break  # the candle still forming at `now`, and anything after it
            if start < since:
                continue
            if current is None or start != current.start:
                if current is not None:
                    out.append(current)
                current = Candle(start, minute.open, minute.high, minute.low, minute.close)
            else:
                current = Candle(start, current.open, max(current.high, minute.high), min(current.low, minute.low), minute.close)
        if current is not None:
            out.append(current)
        return out[:limit]

"""Where funding rates come from: a constant, or a replayed settlement file."""

from __future__ import annotations

import bisect
import csv
import io
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from hedgebot.exchange.feeds import read_utf8

HOUR = 3600.0


class FundingSource(Protocol):
    """Funding settlements of one contract."""

    def settlements(self, after: float, until: float) -> list[tuple[float, Decimal]]:
        """Return (time, rate) of every settlement in (after, until]."""
        ...

    def next_settlement(self, after: float) -> float | None:
        """Return the earliest time after `after` at which a settlement may fall (None: never)."""
        ...


@dataclass(frozen=True)
class NoFunding:
    """A delivery contract's funding: none (its carry is its basis to spot)."""

    def settlements(self, after: float, until: float) -> list[tuple[float, Decimal]]:
        """Return no settlement."""
        return []

    def next_settlement(self, after: float) -> float | None:
        """Return None: a delivery contract never settles funding."""
        return None


@dataclass(frozen=True)
class ConstantFunding:
    """The same rate at every interval boundary (00:00, 08:00, 16:00 UTC for 8 h)."""

    rate: Decimal
    interval_hours: float = 8.0

    def settlements(self, after: float, until: float) -> list[tuple[float, Decimal]]:
        """Return the interval boundaries crossed, each with the constant rate."""
        interval = self.interval_hours * HOUR
        first = (after // interval + 1) * interval
        out: list[tuple[float, Decimal]] = []
        t = first
        while t <= until:
            out.append((t, self.rate))
            t += interval
        return out

    def next_settlement(self, after: float) -> float | None:
        """Return the first interval boundary after `after`."""
        interval = self.interval_hours * HOUR
        return (after // interval + 1) * interval


class ReplayFunding:
    """Settlements read from Binance's public fundingRate CSV layout.

    Header `calc_time,funding_interval_hours,last_funding_rate`, calc_time in
    Unix milliseconds with a few ms of jitter, floored here to the hour.
    """

    def __init__(self, rows: Sequence[tuple[float, Decimal]]) -> None:
        self._times = [t for t, _ in rows]
        self._rates = [r for _, r in rows]

    @classmethod
    def from_csv(cls, path: Path) -> ReplayFunding:
        """Read a funding-rate file."""
        rows: list[tuple[float, Decimal]] = []
        with io.StringIO(read_utf8(path), newline="") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            if columns and not {"calc_time", "last_funding_rate"} <= set(columns):
                hint = "; this looks like a candle file (give it as --prices)" if {"open", "close"} <= {c.lower() for c in columns} else ""
                raise ValueError(
                    f"{path}:1: expected a Binance fundingRate CSV with the header "
                    f"calc_time,funding_interval_hours,last_funding_rate, got {','.join(columns)!r}{hint}"
                )
            for line_no, row in enumerate(reader, start=2):
                rows.append(((_millis(row, path, line_no) // 3_600_000) * HOUR, _rate(row, path, line_no)))
        rows.sort()
        return cls(rows)

    def settlements(self, after: float, until: float) -> list[tuple[float, Decimal]]:
        """Return the recorded settlements in (after, until]."""
        lo = bisect.bisect_right(self._times, after)
        hi = bisect.bisect_right(self._times, until)
        return list(zip(self._times[lo:hi], self._rates[lo:hi], strict=True))

    def next_settlement(self, after: float) -> float | None:
        """Return the first recorded settlement after `after`."""
        index = bisect.bisect_right(self._times, after)
        return self._times[index] if index < len(self._times) else None

    def span(self) -> tuple[float | None, float | None]:
        """Return the first and last settlement times (None when the file had none)."""
        return (self._times[0], self._times[-1]) if self._times else (None, None)

    def holes(self, start: float, end: float) -> list[tuple[float, float]]:
        """Return (last settlement before, first after) of every missing stretch inside [start, end].

        A hole is a step longer than 1.5 times the file's usual interval between settlements.
        """
        times = self._times
        steps = [b - a for a, b in zip(times, times[1:], strict=False) if b > a]
        if not steps:
            return []
        usual = statistics.mode(steps)
        return [(a, b) for a, b in zip(times, times[1:], strict=False) if b - a > 1.5 * usual and b > start and a < end]

    def covers(self, start: float, end: float) -> bool:
        """Return whether the file's settlements span [start, end] (no longer than one interval short at either end)."""
        if not self._times:
            return False
        return self._times[0] <= start + 8 * HOUR and self._times[-1] >= end - 8 * HOUR


class LiveFunding:
    """The exchange's current funding rate, polled through ccxt, settled at each interval boundary.

    Between polls the last rate seen is used; until the first poll, nothing is
    settled (no rate is invented).
    """

    def __init__(self, exchange_id: str, symbol: str, interval_hours: float = 8.0, exchange: Any | None = None) -> None:
        self.symbol = symbol
        self.interval_hours = interval_hours
        self.rate: Decimal | None = None
        if exchange is None:
            import ccxt.async_support as ccxt_async

            # One request per poll, paced by our own loop on the monotonic clock: ccxt's throttle counts on
            # the wall clock and would hold the poll for the length of a step back.
            exchange = getattr(ccxt_async, exchange_id)({"enableRateLimit": False})
        self._exchange = exchange

    async def refresh(self) -> Decimal:
        """Fetch the current funding rate; raise VenueUnavailable or BadData when it cannot be had."""
        import ccxt

        from hedgebot.exchange.port import BadData, VenueUnavailable

        try:
            answer = await self._exchange.fetch_funding_rate(self.symbol)
        except ccxt.NetworkError as exc:
            raise VenueUnavailable(f"funding rate for {self.symbol}: {exc}") from exc
        except ccxt.ExchangeError as exc:
            raise BadData(f"funding rate for {self.symbol}: {exc}") from exc
        raw = answer.get("fundingRate")
        try:
            rate = Decimal(str(raw))
        except ArithmeticError as exc:
            raise BadData(f"funding rate for {self.symbol}: {raw!r} is not a number") from exc
        if not rate.is_finite() or abs(rate) >= 1:
            raise BadData(f"funding rate for {self.symbol}: {raw!r} is absurd")
        self.rate = rate
        return rate

    def settlements(self, after: float, until: float) -> list[tuple[float, Decimal]]:
        """Return the interval boundaries crossed, each with the last rate fetched."""
        if self.rate is None:
            return []
        return ConstantFunding(self.rate, self.interval_hours).settlements(after, until)

    def next_settlement(self, after: float) -> float | None:
        """Return the first interval boundary after `after` (settled there if a rate is known by then)."""
        return ConstantFunding(Decimal(0), self.interval_hours).next_settlement(after)

    async def close(self) -> None:
        """Close the exchange session."""
        await self._exchange.close()


def _millis(row: dict[str, str], path: Path, line_no: int) -> int:
    text = (row.get("calc_time") or "").strip()
    if not text.isdigit():
        raise ValueError(f"{path}:{line_no}: bad funding row: calc_time {text!r} is not a Unix time in milliseconds")
    return int(text)


def _rate(row: dict[str, str], path: Path, line_no: int) -> Decimal:
    text = (row.get("last_funding_rate") or "").strip()
    try:
        rate = Decimal(text)
    except ArithmeticError:
        rate = Decimal("NaN")
    if not rate.is_finite():
        raise ValueError(f"{path}:{line_no}: bad funding row: last_funding_rate {text!r} is not a number")
    return rate

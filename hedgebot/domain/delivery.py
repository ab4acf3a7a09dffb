"""When quarterly contracts deliver, and how their symbols carry the delivery date.

Binance's quarterly futures deliver on the last Friday of March, June,
September and December at 08:00 UTC (docs/exchanges.md, "Quarterly
futures"). ccxt names such a contract by its perpetual's symbol with the
delivery date appended as YYMMDD: `BTC/USDT:USDT-260327`, `BTC/USD:BTC-260327`.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta

DELIVERY_MONTHS = (3, 6, 9, 12)
DELIVERY_HOUR = 8
_SUFFIX = re.compile(r"^(?P<perp>[A-Z0-9]+/[A-Z0-9]+:[A-Z0-9]+)-(?P<date>\d{6})$")


def last_friday_delivery(year: int, month: int) -> float:
    """Return the delivery time (epoch seconds) of the quarterly of `month`: its last Friday, 08:00 UTC."""
    last_day = calendar.monthrange(year, month)[1]
    day = datetime(year, month, last_day, DELIVERY_HOUR, tzinfo=UTC)
    day -= timedelta(days=(day.weekday() - calendar.FRIDAY) % 7)
    return day.timestamp()


def quarterly_expiries(after: float, count: int) -> list[float]:
    """Return the first `count` quarterly delivery times strictly after `after`."""
    start = datetime.fromtimestamp(after, UTC)
    out: list[float] = []
    year, month = start.year, start.month
    while len(out) < count:
        if month in DELIVERY_MONTHS:
            expiry = last_friday_delivery(year, month)
            if expiry > after:
                out.append(expiry)
        month += 1
        if month > 12:
            year, month = year + 1, 1
    return out


def is_quarterly_expiry(expiry: float) -> bool:
    """Tell whether `expiry` is a quarterly delivery time by Binance's rule."""
    moment = datetime.fromtimestamp(expiry, UTC)
    return moment.month in DELIVERY_MONTHS and last_friday_delivery(moment.year, moment.month) == expiry


def delivery_symbol(perpetual: str, expiry: float) -> str:
    """Return the ccxt symbol of the contract of `perpetual`'s market delivering at `expiry`."""
    return f"{perpetual}-{datetime.fromtimestamp(expiry, UTC):%y%m%d}"


def parse_delivery_symbol(symbol: str) -> tuple[str, float] | None:
    """Return (the market named without expiry, the delivery time) of a delivery symbol, or None for any other symbol."""
    match = _SUFFIX.match(symbol)
    if match is None:
        return None
    try:
        day = datetime.strptime(match["date"], "%y%m%d").replace(hour=DELIVERY_HOUR, tzinfo=UTC)
    except ValueError:
        return None
    return match["perp"], day.timestamp()

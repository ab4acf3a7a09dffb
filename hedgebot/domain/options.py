"""European option prices and sensitivities (Black-Scholes), and the volatility a quoted price implies.

Used to price the put leg on the paper venue and in backtests (on an implied
volatility from the config or a recorded surface), and to read a chain's
quotes back into volatilities. Crypto options (Deribit, Binance, OKX) are
European. Deribit quotes and settles in the coin: `in_coin` converts.

The arithmetic is done in floats (the normal distribution needs them) and
handed to the domain as Decimals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

_SQRT2 = math.sqrt(2.0)


class OptionKind(StrEnum):
    """A call or a put."""

    CALL = "call"
    PUT = "put"


@dataclass(frozen=True)
class OptionQuote:
    """A European option's price and sensitivities at one spot, time and volatility."""

    price: float  # in the quote currency, per unit of the underlying
    delta: float
    vega: float  # price change per 1.00 (100 points) of volatility


def _cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / _SQRT2))


def _pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def black_scholes(kind: OptionKind, spot: float, strike: float, years: float, volatility: float, rate: float = 0.0) -> OptionQuote:
    """Return the price, delta and vega of a European option (no dividends; `rate` continuously compounded)."""
    for name, value in (("spot", spot), ("strike", strike)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not (math.isfinite(years) and years >= 0):
        raise ValueError(f"years to expiry must be zero or more, got {years!r}")
    if not (math.isfinite(volatility) and volatility >= 0):
        raise ValueError(f"volatility must be zero or more, got {volatility!r}")
    discount = math.exp(-rate * years)
    if years == 0 or volatility == 0:
        forward_intrinsic = spot - strike * discount
        if kind is OptionKind.CALL:
            return OptionQuote(max(0.0, forward_intrinsic), 1.0 if forward_intrinsic > 0 else 0.0, 0.0)
        return OptionQuote(max(0.0, -forward_intrinsic), -1.0 if forward_intrinsic < 0 else 0.0, 0.0)
    root = math.sqrt(years)
    d1 = (math.log(spot / strike) + (rate + 0.5 * volatility * volatility) * years) / (volatility * root)
    d2 = d1 - volatility * root
    vega = spot * _pdf(d1) * root
    if kind is OptionKind.CALL:
        return OptionQuote(spot * _cdf(d1) - strike * discount * _cdf(d2), _cdf(d1), vega)
    return OptionQuote(strike * discount * _cdf(-d2) - spot * _cdf(-d1), _cdf(d1) - 1.0, vega)


def implied_volatility(
    kind: OptionKind, price: float, spot: float, strike: float, years: float, rate: float = 0.0,
) -> float | None:
    """Return the volatility at which the option is worth `price`, or None when no volatility gives it.

    Bisection on [0.0001, 10] (1,000 % a year): the price rises with volatility, so
    the root is unique where it exists; a price below intrinsic value or above
    its bound has none.
    """
    low, high = 1e-4, 10.0
    if not (black_scholes(kind, spot, strike, years, low, rate).price <= price <= black_scholes(kind, spot, strike, years, high, rate).price):
        return None
    for _ in range(200):
        middle = 0.5 * (low + high)
        if black_scholes(kind, spot, strike, years, middle, rate).price < price:
            low = middle
        else:
            high = middle
        if high - low < 1e-10:
            break
    return 0.5 * (low + high)


def in_coin(price_in_quote: float, spot: float) -> float:
    """Return a premium in the underlying coin, as coin-settled venues (Deribit) quote it."""
    return price_in_quote / spot


def as_money(value: float, places: int = 8) -> Decimal:
    """Return a float figure as a Decimal rounded to `places` decimals."""
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-places))

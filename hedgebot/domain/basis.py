"""What a hedge's instrument costs to carry: funding for a perpetual, basis for a delivery future.

No historical quarterly prices ship with the project, so backtests model a
quarterly's price from spot with a basis that decays linearly to zero at
delivery: F = S × (1 + b × T), T the years left and b the annual basis,
either configured or taken from the funding file (a perpetual's funding is the
market's price of the same carry). It is a model, not history: README says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from hedgebot.domain.model import ZERO, PositionSide

SECONDS_PER_YEAR = Decimal(365 * 86_400)


def years_left(now: float, expiry: float) -> Decimal:
    """Return the time to delivery in years (never negative)."""
    return max(ZERO, Decimal(str(expiry - now)) / SECONDS_PER_YEAR)


def modelled_future_price(spot: Decimal, now: float, expiry: float, annual_basis: Decimal) -> Decimal:
    """Return a delivery future's modelled price: spot plus a basis that reaches zero at delivery."""
    return spot * (1 + annual_basis * years_left(now, expiry))


def annual_basis(future: Decimal, spot: Decimal, now: float, expiry: float) -> Decimal | None:
    """Return the basis of a quoted future over spot, per year (None at or after delivery)."""
    left = years_left(now, expiry)
    if left <= 0 or spot <= 0:
        return None
    return (future / spot - 1) / left


def annual_basis_from_funding(rates: Sequence[Decimal], interval_hours: Decimal = Decimal(8)) -> Decimal:
    """Return the yearly carry that a run of funding rates (one per interval) amounts to."""
    if not rates:
        return ZERO
    per_interval = sum(rates, ZERO) / len(rates)
    return per_interval * (Decimal(24) / interval_hours) * 365


FUNDING_HISTORY_SECONDS = 30 * 86_400.0  # the recent funding a perpetual's carry is averaged over


def funding_annual_rate(settlements: Sequence[tuple[float, Decimal]]) -> Decimal | None:
    """Return the yearly carry a perpetual's recent (time, rate) settlements come to at their own pace, or None without any."""
    if not settlements:
        return None
    return annual_basis_from_funding([rate for _, rate in settlements], settlement_interval_hours(settlements))


def short_carry(notional: Decimal, annual_rate: Decimal, years: Decimal) -> Decimal:
    """Return what a short of `notional` earns (positive) or pays (negative) over `years` at `annual_rate`.

    A short receives positive funding, and sells a future above spot that converges to it: in both
    cases a positive rate is income for the hedger.
    """
    return notional * annual_rate * years


def settlement_interval_hours(settlements: Sequence[tuple[float, Decimal]], default: Decimal = Decimal(8)) -> Decimal:
    """Return the hours between a run of (time, rate) settlements: their mean spacing, else `default`.

    Exchanges settle every 8 h, 4 h or 1 h and change it, so a live history's own spacing is taken; a
    spacing under an hour is no interval any exchange settles at (settlements forced together), so it is
    not believed and `default` stands.
    """
    if len(settlements) > 1:
        spacing = (settlements[-1][0] - settlements[0][0]) / (len(settlements) - 1)
        if spacing >= 3600:
            return Decimal(str(round(spacing / 3600, 2))).normalize()
    return default


@dataclass(frozen=True)
class CarryingCost:
    """What a leg earns or pays to stay open, in its contract's margin asset (positive: the leg receives it)."""

    annual_rate: Decimal  # the carry a year as a fraction of the notional; positive: a short receives it
    notional: Decimal  # the leg's notional in the margin asset (coins for a coin-margined contract)
    per_year: Decimal  # received (+) or paid (-) by this leg a year
    over_horizon: Decimal | None  # the same until the hedge ends or its contract is delivered (None: no end known)
    horizon_years: Decimal | None
    source: str  # where the rate comes from, in words


def carrying_cost(
    notional: Decimal, annual_rate: Decimal, side: PositionSide, source: str, horizon_years: Decimal | None = None,
) -> CarryingCost:
    """Return a leg's carrying cost from its yearly rate: what a short receives a long pays."""
    per_year = short_carry(notional, annual_rate, Decimal(1))
    if side is PositionSide.LONG:
        per_year = -per_year
    over = per_year * horizon_years if horizon_years is not None and horizon_years > 0 else None
    return CarryingCost(annual_rate, notional, per_year, over, horizon_years if over is not None else None, source)

"""The put planner: which listed puts protect a holding below a floor for a horizon, and at what cost.

Pure: the shell reads a venue's chain into `PutQuote`s; this module checks
each quote is sensible, reprices it with our own Black-Scholes at the chain's
implied volatility (a check that the chain was read in the right units), and
picks the put nearest the floor among the first expiry that covers the horizon.
Beside it, `short_cost` says what the hedge's short costs over the same horizon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal

from hedgebot.domain.options import OptionKind, as_money, black_scholes

YEAR_SECONDS = 365 * 24 * 3600
# Beyond this a quoted implied volatility is no market: 1,000 % a year is where implied_volatility gives up too.
MAX_VOLATILITY = 10.0


@dataclass(frozen=True)
class PutQuote:
    """One listed put as the venue quotes it.

    `mark` is per unit of the underlying, in the coin when `coin_quoted`
    (Deribit, OKX inverse options) else in the quote currency (Binance).
    `underlying` is the price the venue prices the option on (Deribit's and
    OKX's forward, Binance's index); `iv` is a fraction (0.55 = 55 %).
    """

    symbol: str
    strike: Decimal
    expiry: float  # unix seconds
    mark: Decimal
    underlying: Decimal
    iv: float | None
    delta: float | None
    contract_size: Decimal
    amount_step: Decimal  # in contracts
    coin_quoted: bool


@dataclass(frozen=True)
class PutRow:
    """A sensible put with everything the planner prints about it."""

    quote: PutQuote
    days: float
    premium: Decimal  # quote currency per unit of the underlying
    premium_per_year: Decimal  # premium / spot, annualised (0.12 = 12 % of the holding's value a year)
    contracts: Decimal
    cost: Decimal  # premium for the whole protected quantity, quote currency
    protected: Decimal  # the value the puts guarantee at expiry: strike x protected quantity
    floor_ratio: Decimal  # strike / spot
    model_mark: Decimal  # our Black-Scholes at the chain's own volatility, in the chain's unit
    model_error: Decimal  # model_mark / mark - 1


@dataclass(frozen=True)
class PutPlan:
    """The puts at the chosen expiry around the floor, the pick, and what was left out."""

    spot: Decimal
    quantity: Decimal
    floor: Decimal
    horizon_days: float
    rows: tuple[PutRow, ...]
    pick: PutRow
    covers_horizon: bool  # False: no listed expiry reaches the horizon; the latest one is shown
    unquoted: tuple[str, ...]  # puts left out for want of a sensible quote


class NoSensibleQuote(ValueError):
    """No put of the chain has a quote worth acting on."""


def sensible(quote: PutQuote, spot: Decimal, now: float) -> str | None:
    """Return why a quote is not worth acting on, or None when it is."""
    if quote.expiry <= now:
        return "expired"
    if not quote.mark.is_finite() or quote.mark <= 0:
        return f"mark {quote.mark}"
    if quote.iv is None or not math.isfinite(quote.iv) or not 0 < quote.iv <= MAX_VOLATILITY:
        return f"implied volatility {quote.iv}"
    if not quote.underlying.is_finite() or quote.underlying <= 0:
        return f"underlying price {quote.underlying}"
    premium = quote.mark * spot if quote.coin_quoted else quote.mark
    if premium >= quote.strike:  # a put is never worth more than its strike
        return f"premium {premium} at or above the strike {quote.strike}"
    return None


def reprice(quote: PutQuote, now: float) -> Decimal:
    """Return our Black-Scholes price of the put at the chain's volatility, in the chain's own unit (rate zero)."""
    assert quote.iv is not None
    years = (quote.expiry - now) / YEAR_SECONDS
    price = black_scholes(OptionKind.PUT, float(quote.underlying), float(quote.strike), years, quote.iv).price
    return as_money(price / float(quote.underlying) if quote.coin_quoted else price)


def _row(quote: PutQuote, spot: Decimal, quantity: Decimal, now: float) -> PutRow:
    days = (quote.expiry - now) / 86400
    premium = quote.mark * spot if quote.coin_quoted else quote.mark
    # Whole contracts on the venue's step, rounded down: never insure more than is held.
    contracts = (quantity / quote.contract_size / quote.amount_step).to_integral_value(ROUND_DOWN) * quote.amount_step
    covered = contracts * quote.contract_size
    model = reprice(quote, now)
    return PutRow(
        quote=quote, days=days, premium=premium,
        premium_per_year=premium / spot * Decimal(365) / Decimal(repr(days)),
        contracts=contracts, cost=premium * covered, protected=quote.strike * covered,
        floor_ratio=quote.strike / spot, model_mark=model, model_error=model / quote.mark - 1,
    )


def plan_puts(
    quotes: list[PutQuote], spot: Decimal, quantity: Decimal, floor: Decimal, horizon_days: float, now: float,
    around: int = 3,
) -> PutPlan:
    """Return the puts of the first expiry covering the horizon, `around` strikes each side of the one nearest the floor.

    The first expiry at or after now + horizon covers the whole horizon at the
    least time value; when none is listed the latest expiry is used and the
    plan says so. Raises NoSensibleQuote when no put has a sensible quote.
    """
    usable = [q for q in quotes if sensible(q, spot, now) is None]
    unquoted = tuple(sorted(q.symbol for q in quotes if sensible(q, spot, now) is not None))
    if not usable:
        reasons = sorted({f"{q.symbol}: {sensible(q, spot, now)}" for q in quotes})[:3]
        raise NoSensibleQuote(
            f"none of the {len(quotes)} puts has a sensible quote" + (f" ({'; '.join(reasons)})" if reasons else "")
        )
    horizon = now + horizon_days * 86400
    expiries = sorted({q.expiry for q in usable})
    covering = [e for e in expiries if e >= horizon]
    expiry = covering[0] if covering else expiries[-1]
    target = floor * spot
    strikes = sorted((q for q in usable if q.expiry == expiry), key=lambda q: q.strike)
    best = min(range(len(strikes)), key=lambda i: (abs(strikes[i].strike - target), -strikes[i].strike))
    shown = strikes[max(0, best - around): best + around + 1]
    rows = tuple(_row(q, spot, quantity, now) for q in shown)
    pick = next(r for r in rows if r.quote is strikes[best])
    return PutPlan(spot, quantity, floor, horizon_days, rows, pick, bool(covering), unquoted)


@dataclass(frozen=True)
class ShortCost:
    """What keeping the hedge's short costs over the horizon."""

    size: Decimal
    notional: Decimal
    funding_rate: Decimal  # mean rate per settlement over the recent history (positive: the short is paid)
    settlements: Decimal  # settlements within the horizon
    expected_funding: Decimal  # received (positive) or paid (negative) over the horizon, quote currency
    margin_locked: Decimal
    runway: Decimal | None  # the mark up to which the guard's sources keep the short; None with no short


def short_cost(
    size: Decimal, price: Decimal, rates: list[Decimal], interval_hours: float, horizon_days: float,
    margin_locked: Decimal, runway: Decimal | None,
) -> ShortCost:
    """Return the short's expected funding over the horizon from recent rates, beside its margin and runway.

    Positive rates pay the short, so a positive expected funding is income.
    """
    mean = sum(rates, Decimal(0)) / len(rates) if rates else Decimal(0)
    settlements = Decimal(repr(horizon_days * 24 / interval_hours))
    notional = size * price
    return ShortCost(size, notional, mean, settlements, notional * mean * settlements, margin_locked, runway)


def limit_price(mark: Decimal, tick: Decimal, side: str, most: Decimal | None = None) -> Decimal | None:
    """Return the limit price of an option order at the mark, on the venue's tick; None when it would pay above `most`.

    A purchase rounds up (it may pay at most one tick over the mark, which is
    what lets it fill), a sale rounds down: both stay within a tick of the mark,
    so no order ever pays or accepts "any price".
    """
    if not mark.is_finite() or mark <= 0 or tick <= 0:
        return None
    rounding = ROUND_CEILING if side == "buy" else ROUND_FLOOR
    price = (mark / tick).to_integral_value(rounding) * tick
    if price <= 0 or (most is not None and side == "buy" and price > most):
        return None
    return price

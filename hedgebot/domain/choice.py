"""Which contract a hedge that chooses (instrument = "cheapest") holds: the best carry for its side.

Each contract's carry is a yearly rate on the leg's notional, positive when a
short receives it: a perpetual's funding over its recent settlements, a
quarterly's basis to the perpetual's mark until delivery (domain.basis). A
short earns the rate and a long pays it, so the leg's income is the rate for a
short and minus the rate for a long.

Moving a leg costs a taker fee on each contract and the price of two crossings,
and a past funding average promises nothing: the contract already held (or the
one a quarterly hedge would roll to anyway) stays unless another one earns more
than `threshold` a year above it. At opening nothing is held yet, so the
threshold is zero and the best carry wins; an unknown carry never wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from hedgebot.domain.model import PositionSide


@dataclass(frozen=True)
class Carry:
    """One contract's carry: a yearly rate on the notional (positive: a short receives it), None when unknown."""

    symbol: str
    annual_rate: Decimal | None
    source: str  # where the rate comes from, in words


@dataclass(frozen=True)
class Choice:
    """The contract to hold and why; `advantage` is the chosen one's yearly income over the default's (None: unknown)."""

    symbol: str
    reason: str
    advantage: Decimal | None


def income(rate: Decimal, side: PositionSide) -> Decimal:
    """Return what a leg on `side` earns a year at `rate`, as a fraction of its notional."""
    return rate if side is PositionSide.SHORT else -rate


def choose(carries: Sequence[Carry], default: str, side: PositionSide, threshold: Decimal) -> Choice:
    """Return the contract among `carries` to hold: another than `default` only when it earns more than `threshold` a year."""
    unknown = [c for c in carries if c.annual_rate is None]
    if unknown:
        names = ", ".join(f"{c.symbol} ({c.source})" for c in unknown)
        return Choice(default, f"the carry of {names} is unknown: {default} is kept", None)
    by_symbol = {c.symbol: c for c in carries}
    if default not in by_symbol:
        raise ValueError(f"the default contract {default} is not among the carries compared")

    def earned(c: Carry) -> Decimal:
        assert c.annual_rate is not None
        return income(c.annual_rate, side)

    # Ties go to the default: moving costs fees for nothing.
    best = max(carries, key=lambda c: (earned(c), c.symbol == default))
    kept = by_symbol[default]
    advantage = earned(best) - earned(kept)
    if best.symbol == default:
        return Choice(default, f"{default} earns the most: {_pct(earned(kept))} a year", Decimal(0))
    if advantage > threshold:
        return Choice(
            best.symbol,
            f"{best.symbol} earns {_pct(earned(best))} a year against {_pct(earned(kept))} on {default}: "
            f"{_pct(advantage)} more, above the {_pct(threshold)} asked",
            advantage,
        )
    return Choice(
        default,
        f"{best.symbol} earns {_pct(earned(best))} a year against {_pct(earned(kept))} on {default}: "
        f"{_pct(advantage)} more, not above the {_pct(threshold)} asked (switch_advantage), so {default} is kept",
        advantage,
    )


def _pct(value: Decimal) -> str:
    return f"{value * 100:.2f} %"

"""The size of a hedge on a correlated instrument: the holding's beta to it, and how well it hedges.

Holding SOL and shorting ETH, the short that removes the most variance is the
minimum-variance hedge ratio

    beta = Cov(r_holding, r_instrument) / Var(r_instrument)

in instrument notional per unit of the holding's value, estimated from the
two assets' returns over the same periods.

Two estimates run side by side:
- an exponentially weighted one (half-life in observations), smooth and slow;
- an ordinary least-squares one over the last half-life of observations, noisy
  but blind to anything older.
While they agree within `break_sigmas` standard errors of the OLS estimate, the
exponentially weighted one is used. When they disagree by more, the relation
has changed (a regime switch), and the OLS one, which sees only the new regime,
is used until they agree again. An exponentially weighted estimate alone would
still be halfway between the old and new beta one half-life after a switch.

Statistics are floats (they are estimates, not money); `beta` is handed to the
domain as a `Decimal`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class BetaReading:
    """What the estimator says now."""

    beta: float  # the one to hedge with
    ewma_beta: float
    ols_beta: float | None
    ols_standard_error: float | None
    correlation: float  # exponentially weighted
    regime_break: bool  # the two estimates disagree: the OLS one is in use
    observations: int

    def ratio(self, places: int = 6) -> Decimal:
        """Return the beta as a Decimal ratio, rounded to `places` decimals."""
        return Decimal(repr(self.beta)).quantize(Decimal(1).scaleb(-places))


class BetaEstimator:
    """Estimate a holding's beta to a hedge instrument from paired returns, one observation at a time."""

    def __init__(self, half_life: int, min_observations: int = 30, break_sigmas: float = 4.0) -> None:
        if half_life < 2:
            raise ValueError(f"half_life must be at least 2 observations, got {half_life}")
        if min_observations < 3:
            raise ValueError(f"min_observations must be at least 3, got {min_observations}")
        self.half_life = half_life
        self.min_observations = min_observations
        self.break_sigmas = break_sigmas
        self._decay = 0.5 ** (1.0 / half_life)
        self._weight = 0.0
        self._mean_h = self._mean_i = 0.0
        self._var_h = self._var_i = self._cov = 0.0
        self._window: deque[tuple[float, float]] = deque(maxlen=half_life)
        self.observations = 0

    def update(self, holding_return: float, instrument_return: float) -> None:
        """Add one period's returns of the holding and of the hedge instrument."""
        if not (math.isfinite(holding_return) and math.isfinite(instrument_return)):
            raise ValueError(f"returns must be finite, got {holding_return!r} and {instrument_return!r}")
        self.observations += 1
        self._window.append((holding_return, instrument_return))
        self._weight = self._decay * self._weight + 1.0
        alpha = 1.0 / self._weight
        dh = holding_return - self._mean_h
        di = instrument_return - self._mean_i
        self._mean_h += alpha * dh
        self._mean_i += alpha * di
        self._var_h = (1 - alpha) * (self._var_h + alpha * dh * dh)
        self._var_i = (1 - alpha) * (self._var_i + alpha * di * di)
        self._cov = (1 - alpha) * (self._cov + alpha * dh * di)

    def reading(self) -> BetaReading | None:
        """Return the current estimate, or None before `min_observations` (or with a flat instrument)."""
        if self.observations < self.min_observations or self._var_i <= 0:
            return None
        ewma = self._cov / self._var_i
        correlation = self._cov / math.sqrt(self._var_h * self._var_i) if self._var_h > 0 else 0.0
        ols, error = ols_beta(list(self._window))
        regime_break = (
            ols is not None and error is not None and len(self._window) == self.half_life
            and abs(ols - ewma) > self.break_sigmas * max(error, 1e-12)
        )
        beta = ols if regime_break and ols is not None else ewma
        return BetaReading(beta, ewma, ols, error, correlation, regime_break, self.observations)


def ols_beta(pairs: Sequence[tuple[float, float]]) -> tuple[float | None, float | None]:
    """Return the least-squares slope of holding on instrument returns and its standard error (None when undefined)."""
    n = len(pairs)
    if n < 3:
        return None, None
    mean_h = sum(h for h, _ in pairs) / n
    mean_i = sum(i for _, i in pairs) / n
    sxx = sum((i - mean_i) ** 2 for _, i in pairs)
    if sxx <= 0:
        return None, None
    sxy = sum((i - mean_i) * (h - mean_h) for h, i in pairs)
    slope = sxy / sxx
    residual = sum((h - mean_h - slope * (i - mean_i)) ** 2 for h, i in pairs)
    return slope, math.sqrt(residual / (n - 2) / sxx)


def hedge_effectiveness(holding: Sequence[float], instrument: Sequence[float], betas: Sequence[float | None]) -> float | None:
    """Return the variance removed by hedging each period with the beta known before it (out of sample).

    `betas[t]` must be estimated from periods before t; periods without a beta are left out.
    1 means all of the holding's variance was removed, 0 none, below 0 the hedge added variance.
    """
    raw: list[float] = []
    hedged: list[float] = []
    for h, i, b in zip(holding, instrument, betas, strict=True):
        if b is None:
            continue
        raw.append(h)
        hedged.append(h - b * i)
    if len(raw) < 3:
        return None
    variance_raw = _variance(raw)
    return None if variance_raw <= 0 else 1 - _variance(hedged) / variance_raw


def _variance(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)

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


class RollingCorrelation:
    """The plain correlation of the last `window` paired returns: quick to show a relation that broke."""

    def __init__(self, window: int) -> None:
        if window < 5:
            raise ValueError(f"correlation window must be at least 5 observations, got {window}")
        self._pairs: deque[tuple[float, float]] = deque(maxlen=window)

    def update(self, holding_return: float, instrument_return: float) -> None:
        """Add one period's paired returns."""
        self._pairs.append((holding_return, instrument_return))

    def value(self) -> float | None:
        """Return the correlation over the window, or None until it is full (or with a flat series)."""
        pairs = self._pairs
        if len(pairs) < (pairs.maxlen or 0):
            return None
        n = len(pairs)
        mean_h = sum(h for h, _ in pairs) / n
        mean_i = sum(i for _, i in pairs) / n
        shh = sum((h - mean_h) ** 2 for h, _ in pairs)
        sii = sum((i - mean_i) ** 2 for _, i in pairs)
        if shh <= 0 or sii <= 0:
            return None
        return sum((h - mean_h) * (i - mean_i) for h, i in pairs) / math.sqrt(shh * sii)


class OutOfSample:
    """Hedge effectiveness as it happened: each period hedged with the beta known before it, over a bounded window."""

    def __init__(self, window: int = 2_000) -> None:
        self._rows: deque[tuple[float, float, float]] = deque(maxlen=window)

    def record(self, holding_return: float, instrument_return: float, beta_before: float | None) -> None:
        """Add one period; a period without a beta known before it is not counted."""
        if beta_before is not None:
            self._rows.append((holding_return, instrument_return, beta_before))

    def effectiveness(self, beta: bool = True) -> float | None:
        """Return the variance reduction of the beta hedge (or, with beta=False, of a one-for-one dollar hedge)."""
        rows = list(self._rows)
        return hedge_effectiveness([h for h, _, _ in rows], [i for _, i, _ in rows], [b if beta else 1.0 for _, _, b in rows])


@dataclass(frozen=True)
class BetaFigures:
    """What the user sees of a beta hedge's estimate."""

    reading: BetaReading | None
    correlation: float | None  # rolling
    hedge_effectiveness: float | None  # out of sample
    dollar_hedge_effectiveness: float | None


class BetaModel:
    """A holding's beta to an instrument fed with the two closes of each period, and the figures judged on it."""

    def __init__(self, half_life: int, min_observations: int, correlation_window: int) -> None:
        self.estimator = BetaEstimator(half_life, min_observations)
        self.rolling = RollingCorrelation(correlation_window)
        self.out_of_sample = OutOfSample()
        self._last: tuple[float, float, float] | None = None  # (period start, holding close, instrument close)
        self._figures: BetaFigures | None = None  # the figures of the returns fed so far (asked for many times a tick)

    @property
    def last_period(self) -> float | None:
        """Return the start of the last period fed (None: none yet)."""
        return self._last[0] if self._last is not None else None

    def observe(self, at: float, holding_close: Decimal, instrument_close: Decimal) -> None:
        """Feed one period's closes; a period at or before the last one fed is ignored (a candle read twice)."""
        if holding_close <= 0 or instrument_close <= 0:
            raise ValueError(f"closes must be positive, got {holding_close} and {instrument_close} at {at}")
        if self._last is not None and at <= self._last[0]:
            return
        now = (at, float(holding_close), float(instrument_close))
        last, self._last = self._last, now
        if last is None:
            return
        self._figures = None
        holding_return, instrument_return = now[1] / last[1] - 1, now[2] / last[2] - 1
        before = self.estimator.reading()
        self.out_of_sample.record(holding_return, instrument_return, before.beta if before else None)
        self.estimator.update(holding_return, instrument_return)
        self.rolling.update(holding_return, instrument_return)

    def figures(self) -> BetaFigures:
        """Return the estimate, the rolling correlation and the out-of-sample effectiveness now."""
        if self._figures is None:
            self._figures = BetaFigures(
                self.estimator.reading(), self.rolling.value(), self.out_of_sample.effectiveness(),
                self.out_of_sample.effectiveness(beta=False),
            )
        return self._figures


def held_beta(held: Decimal | None, estimate: Decimal, band: Decimal, low: Decimal, high: Decimal) -> Decimal:
    """Return the beta to hedge with: the one held until the clamped estimate moves more than `band` from it."""
    clamped = min(max(estimate, low), high)
    if held is None or abs(clamped - held) > band or not low <= held <= high:  # a clamp tightened since: obey it
        return clamped
    return held


def aligned_closes(
    holding: Sequence[tuple[float, Decimal]], instrument: Sequence[tuple[float, Decimal]],
) -> list[tuple[float, Decimal, Decimal]]:
    """Return (period start, holding close, instrument close) for the periods both series hold, oldest first."""
    other = dict(instrument)
    return [(at, close, other[at]) for at, close in sorted(holding) if at in other]


CORRELATION_REARM = Decimal("0.1")


def correlation_broken(was_broken: bool, correlation: float | None, minimum: Decimal, rearm: Decimal = CORRELATION_REARM) -> bool:
    """Tell whether the relation is broken: below `minimum`, and once broken until `rearm` above it again.

    A correlation hovering at the threshold is one break, not one per crossing (with "reduce" each crossing
    would trade). An unknown correlation (not enough returns yet) changes nothing.
    """
    if correlation is None:
        return was_broken
    level = Decimal(repr(correlation))
    # Never further above the threshold than half its distance to 1: above 0.9, 0.1 more is out of reach for good.
    margin = min(rearm, (1 - minimum) / 2)
    return level < minimum + margin if was_broken else level < minimum

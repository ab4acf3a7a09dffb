"""A beta hedge's figures in `hedgebot backtest`: how well the holding's beta to the instrument would have hedged it.

The two price files are resampled to the hedge's `beta_timeframe` (the close of
each period), and the same estimator the keeper uses is walked through them:
each period is hedged with the beta in force before it (clamped to
beta_min/beta_max, moved only when the estimate leaves beta_band), so the
variance it removes is out of sample. Beside it, a one-for-one dollar hedge
over the same periods.

The replay itself (the keeper, the paper venue, every candle's highs and lows)
is the engine's, fed both markets' prices (hedgebot.backtest_cross). This module may NOT
replay, read a file or write one: it is handed the inputs read and the result replayed.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hedgebot.backtest import BacktestResult
from hedgebot.commands.backtest.replay import ReplayInputs
from hedgebot.config import HedgeConfig
from hedgebot.domain.beta import BetaEstimator, RollingCorrelation, hedge_effectiveness, held_beta
from hedgebot.exchange.candles import TIMEFRAMES
from hedgebot.exchange.feeds import CandleColumns

PLACES = Decimal("0.0001")


def period_closes(candles: CandleColumns, interval: float, timeframe: int) -> dict[float, float]:
    """Return the close of each `timeframe` period the candles cover, keyed by the period's start."""
    times, _, _, _, closes = candles.float_columns()
    out: dict[float, float] = {}
    for time, close in zip(times, closes, strict=True):
        # A candle's close is the price at its end: it closes the period its end falls in, or ends.
        end = float(time) + interval
        start = end - end % timeframe if end % timeframe else end - timeframe
        out[start] = float(close)
    return out


def beta_statistics(hedge: HedgeConfig, holding: dict[float, float], instrument: dict[float, float]) -> dict[str, Any]:
    """Walk the estimator through paired closes; return the beta, the correlation and both hedges' variance reduction."""
    settings = hedge.beta_settings()
    estimator = BetaEstimator(settings.half_life, settings.min_observations)
    rolling = RollingCorrelation(settings.correlation_window)
    held: Decimal | None = None
    rows: list[tuple[float, float, float | None]] = []
    lowest: float | None = None
    broken = 0
    periods = sorted(set(holding) & set(instrument))
    for before, now in zip(periods, periods[1:]):
        h = holding[now] / holding[before] - 1
        i = instrument[now] / instrument[before] - 1
        reading = estimator.reading()
        if reading is not None:
            estimate = Decimal(repr(reading.beta)).quantize(PLACES)
            held = held_beta(held, estimate, settings.band, settings.beta_min, settings.beta_max)
        rows.append((h, i, float(held) if held is not None else None))
        estimator.update(h, i)
        rolling.update(h, i)
        correlation = rolling.value()
        if correlation is not None:
            lowest = correlation if lowest is None else min(lowest, correlation)
            broken += correlation < float(settings.correlation_min)
    hs, is_, betas = [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
    final = estimator.reading()
    shown = _shown
    return {
        "holding": hedge.asset,
        "instrument": hedge.symbol,
        "timeframe": settings.timeframe,
        "periods": len(periods),
        "periods_hedged": sum(b is not None for b in betas),
        "beta": shown(float(held) if held is not None else None),
        "beta_estimate": shown(final.beta if final else None),
        "beta_ols": shown(final.ols_beta if final else None),
        "correlation": shown(rolling.value()),
        "correlation_lowest": shown(lowest),
        "correlation_broken_periods": broken,
        "hedge_effectiveness": shown(hedge_effectiveness(hs, is_, betas)),
        "dollar_hedge_effectiveness": shown(hedge_effectiveness(hs, is_, [1.0 if b is not None else None for b in betas])),
    }


def _shown(value: float | None) -> str | None:
    return None if value is None or not math.isfinite(value) else str(Decimal(repr(value)).quantize(PLACES))


def beta_figures(inputs: ReplayInputs, warn: Callable[[str], None]) -> dict[str, Any] | None:
    """Return a beta hedge's figures over the inputs' closes for summary.json (None: told why, nothing can be run)."""
    hedge = inputs.hedge
    timeframe = TIMEFRAMES[hedge.beta_settings().timeframe]
    if inputs.interval > timeframe:
        print(
            f"hedgebot: {inputs.prices}: candles every {inputs.interval:g} s are coarser than beta_timeframe "
            f"{hedge.beta_settings().timeframe}: give finer candles or set a longer beta_timeframe", file=sys.stderr,
        )
        return None
    instrument = period_closes(inputs.candles, inputs.interval, timeframe)
    holding_candles = inputs.holding_candles if inputs.holding_candles is not None else inputs.candles
    holding = period_closes(holding_candles, inputs.interval, timeframe)
    shared = set(holding) & set(instrument)
    if len(shared) < 3:
        print(f"hedgebot: the two price files share {len(shared)} {hedge.beta_settings().timeframe} periods: they must overlap", file=sys.stderr)
        return None
    if len(shared) < min(len(holding), len(instrument)) * 0.9:
        warn(f"the two price files share {len(shared)} periods of {len(holding)} and {len(instrument)}: only those are used")
    figures = beta_statistics(hedge, holding, instrument)
    if inputs.basket_candles:
        # Each of a basket's other holdings by its own beta, on the same instrument's closes.
        figures["basket"] = [
            {**beta_statistics(hedge, period_closes(series, inputs.interval, timeframe), instrument), "holding": asset}
            for asset, _, series in inputs.basket_candles
        ]
    if figures["beta"] is None:
        warn(f"fewer than beta_min_observations ({hedge.beta_settings().min_observations}) periods: no beta was estimated")
    return figures


def keeper_figures(result: BacktestResult, summary: dict[str, Any]) -> dict[str, Any]:
    """Return the engine's figures of what the keeper did, under the names the first beta backtest gave them."""
    return {
        "orders": result.orders,
        "fees_quote": summary.get("fees_quote"),
        "liquidations": result.liquidations,
        "critical_alerts": result.critical_alerts,
        "final_short": str(result.final_short),
        "hedged_value_volatility": summary.get("hedge_value_volatility"),
        "unhedged_value_volatility": summary.get("unhedged_value_volatility"),
    }

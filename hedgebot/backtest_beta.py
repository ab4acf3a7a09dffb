"""`hedgebot backtest` of a beta hedge: how well the holding's beta to the instrument would have hedged it.

The two price files are resampled to the hedge's `beta_timeframe` (the close of
each period), and the same estimator the keeper uses is walked through them:
each period is hedged with the beta in force before it (clamped to
beta_min/beta_max, moved only when the estimate leaves beta_band), so the
variance it removes is out of sample. Beside it, a one-for-one dollar hedge
over the same periods.

The real keeper is then run on a paper venue listing both markets, one tick a
period (not every candle of the files: the single-market replay of
hedgebot.backtest does not carry a second price), and its orders, fees,
liquidations, critical alerts and the volatility of the hedged and unhedged
account value are reported under `keeper`.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from hedgebot.backtest_report import EXIT_BAD_INPUT, EXIT_OK, ReplayInputs, iso
from hedgebot.clock import run_simulated
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


async def replay_keeper(inputs: ReplayInputs, holding: dict[float, float], instrument: dict[float, float], timeframe: int) -> dict[str, Any]:
    """Run the real keeper on a paper venue over the paired closes, one tick a period; return what it did.

    Each period's closes are set just before its end and the keeper ticks at its end, so it reads that candle
    closed, as it would live. The paper venue has no history before the first period: the first
    `beta_min_observations` periods are the warm-up, without a short. Funding: the instrument's, as replayed.
    """
    from hedgebot.clock import SimClock
    from hedgebot.engine.keeper import Keeper
    from hedgebot.exchange.funding import NoFunding
    from hedgebot.exchange.paper import PaperMarket, PaperVenue
    from hedgebot.ops.events import EventLog, NullLogger
    from hedgebot.store.journal import Journal

    hedge, market = inputs.hedge, inputs.market
    holding_symbol = hedge.beta_settings().holding_symbol
    periods = sorted(set(holding) & set(instrument))
    clock = SimClock(start=periods[0])
    # The holding's market is only priced: its rules are the instrument's, under its own name.
    markets = [PaperMarket(market, inputs.funding)]
    if holding_symbol != market.symbol:
        markets.append(PaperMarket(replace(market, symbol=holding_symbol, base=hedge.asset), NoFunding()))
    venue = PaperVenue(clock, markets, spot=dict(inputs.spot), futures=dict(inputs.futures), slippage=inputs.slippage)
    journal = Journal(":memory:", clock)
    events = EventLog(journal, NullLogger())
    liquidations = 0

    def seen(event: Any) -> None:
        nonlocal liquidations
        liquidations += event is not None and event.kind == "liquidation"

    venue.subscribe(seen)
    keeper = Keeper("backtest", hedge, venue, clock, journal, events)
    coins = inputs.spot.get(hedge.asset, Decimal(0))
    cash = inputs.spot.get(market.margin_asset, Decimal(0)) + inputs.futures.get(market.margin_asset, Decimal(0))
    hedged: list[float] = []
    unhedged: list[float] = []
    first = True
    for start in periods:
        at = start + timeframe - 1
        await clock.set(at)
        venue.update_price(market.symbol, at, Decimal(repr(instrument[start])))
        if holding_symbol != market.symbol:
            venue.update_price(holding_symbol, at, Decimal(repr(holding[start])))
        await clock.set(start + timeframe)
        if first:
            await keeper.prepare()
            first = False
        await keeper.tick()
        legs = await venue.fetch_legs(market.symbol)
        wallet = (await venue.fetch_futures_balance(market.margin_asset)).wallet
        spot = await venue.fetch_spot_balances()
        price = Decimal(repr(instrument[start]))
        quote = spot.get(market.margin_asset, Decimal(0))
        value = spot.get(hedge.asset, Decimal(0)) * Decimal(repr(holding[start])) + quote + wallet + legs.short.unrealized_pnl(price)
        hedged.append(float(value))
        unhedged.append(float(coins * Decimal(repr(holding[start])) + cash))
    keeper.stop()
    fees = sum((o.fee for o in venue.orders.values()), Decimal(0))
    return {
        "orders": len(venue.orders),
        "fees_quote": str(fees.quantize(Decimal("0.01"))),
        "liquidations": liquidations,
        "critical_alerts": sum(
            1 for e in journal.events(kind="alert") if e.severity == "critical" and e.detail.get("state") == "raised"
        ),
        "final_short": str((await venue.fetch_legs(market.symbol)).short.size),
        "hedged_value_volatility": _shown(_return_volatility(hedged)),
        "unhedged_value_volatility": _shown(_return_volatility(unhedged)),
    }


def _return_volatility(values: list[float]) -> float | None:
    """Return the standard deviation of the period returns of a value series (None: too short)."""
    returns = [b / a - 1 for a, b in zip(values, values[1:]) if a > 0]
    if len(returns) < 3:
        return None
    mean = sum(returns) / len(returns)
    return math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1))


def _shown(value: float | None) -> str | None:
    return None if value is None or not math.isfinite(value) else str(Decimal(repr(value)).quantize(PLACES))


def write_beta_backtest(inputs: ReplayInputs, out: Path, warn: Callable[[str], None]) -> int:
    """Work out a beta hedge's figures over the inputs, write summary.json, print it; return the exit code."""
    hedge = inputs.hedge
    timeframe = TIMEFRAMES[hedge.beta_settings().timeframe]
    if inputs.interval > timeframe:
        print(
            f"hedgebot: {inputs.prices}: candles every {inputs.interval:g} s are coarser than beta_timeframe "
            f"{hedge.beta_settings().timeframe}: give finer candles or set a longer beta_timeframe", file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    instrument = period_closes(inputs.candles, inputs.interval, timeframe)
    holding_candles = inputs.holding_candles if inputs.holding_candles is not None else inputs.candles
    holding = period_closes(holding_candles, inputs.interval, timeframe)
    shared = set(holding) & set(instrument)
    if len(shared) < 3:
        print(f"hedgebot: the two price files share {len(shared)} {hedge.beta_settings().timeframe} periods: they must overlap", file=sys.stderr)
        return EXIT_BAD_INPUT
    if len(shared) < min(len(holding), len(instrument)) * 0.9:
        warn(f"the two price files share {len(shared)} periods of {len(holding)} and {len(instrument)}: only those are used")
    summary = {
        "hedge": hedge.name, "start": iso(min(shared)), "end": iso(max(shared) + timeframe),
        **beta_statistics(hedge, holding, instrument),
        "keeper": run_simulated(replay_keeper(inputs, holding, instrument, timeframe)),
    }
    if summary["beta"] is None:
        warn(f"fewer than beta_min_observations ({hedge.beta_settings().min_observations}) periods: no beta was estimated")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    shown = {k: v for k, v in summary.items() if k != "keeper"} | {f"keeper {k}": v for k, v in summary["keeper"].items()}
    width = max(len(k) for k in shown)
    for key, value in shown.items():
        print(f"{key.ljust(width)}  {'-' if value is None else value}")
    print(f"\nwrote {out}/summary.json")
    return EXIT_OK

"""A beta hedge as its keeper keeps it: the candles that feed the estimate, the beta in force, and a broken correlation.

It owns the holding's estimated beta to the hedge instrument (hedgebot.domain.beta),
fed with the closed candles of both markets: backfilled from the venue's OHLCV
history at the first look, then each candle as it closes. It may read prices and
candles, never trade or journal: the keeper asks it for the snapshot and policy
to plan on (the holding counted in the instrument's coins, the ratio set to the
beta in force) and for what the user sees. The beta in force moves only when the
clamped estimate leaves `beta_band` around it, so that estimation noise does not
trade. It never looks at a market's name: the holding's market is the config's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from hedgebot.config import HedgeConfig
from hedgebot.domain.beta import BetaFigures, BetaModel, aligned_closes, held_beta
from hedgebot.domain.cross_hedge import in_instrument_terms
from hedgebot.domain.model import HedgePolicy, Severity, Snapshot
from hedgebot.domain.policy import Plan
from hedgebot.exchange.candles import timeframe_seconds
from hedgebot.exchange.port import Candle, ExchangeError, ExchangePort, PriceQuote
from hedgebot.ops.alerts import AlertBook

# Candles asked for per request: within every venue's cap (Binance 1500, Bybit 1000, OKX 300); a venue that answers
# fewer (OKX's older history: 100) is asked again from where its answer ended.
PAGE = 200
MAX_PAGES = 60
BACKFILL_HALF_LIVES = 4  # by then the oldest candle weighs 1/16 of the newest: older ones change nothing that matters
BETA_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class Sizing:
    """What the keeper plans on: the snapshot and policy in the instrument's terms, or why it cannot size yet."""

    snapshot: Snapshot
    policy: HedgePolicy
    blocked: str | None = None


@dataclass(frozen=True)
class BreakVerdict:
    """The rolling correlation is below the threshold: what the user chose to do about it."""

    correlation: float
    threshold: Decimal
    action: str  # keep | reduce | unwind


class BetaSizing:
    """One beta hedge's estimate, fed from the venue's candles, and the beta it hedges with."""

    def __init__(self, hedge: HedgeConfig) -> None:
        self.hedge = hedge
        self.settings = hedge.beta_settings()
        self.timeframe = timeframe_seconds(self.settings.timeframe)
        self.model = BetaModel(self.settings.half_life, self.settings.min_observations, self.settings.correlation_window)
        self.held: Decimal | None = None  # the beta in force (before a break's reduction)
        self.holding_quote: PriceQuote | None = None
        self.read_error: str | None = None
        self._looked = False  # the backfill is done

    def reconfigure(self, hedge: HedgeConfig) -> None:
        """Take reloaded settings: the clamp, band and break choice apply now; a new estimator starts afresh."""
        settings = hedge.beta_settings()
        estimator = (settings.half_life, settings.min_observations, settings.correlation_window, settings.timeframe, settings.holding_symbol)
        before = (self.settings.half_life, self.settings.min_observations, self.settings.correlation_window, self.settings.timeframe, self.settings.holding_symbol)
        self.hedge, self.settings = hedge, settings
        if estimator != before:
            self.timeframe = timeframe_seconds(settings.timeframe)
            self.model = BetaModel(settings.half_life, settings.min_observations, settings.correlation_window)
            self.held, self._looked = None, False

    async def refresh(
        self, port: ExchangePort, now: float, read: Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]], offset: float = 0.0,
    ) -> None:
        """Read the holding's price, and the candles closed since the last look (all of the history at the first).

        A failed read keeps what was known and says why in `read_error`; the holding's price then ages.
        """
        symbol = self.settings.holding_symbol
        try:
            quote: PriceQuote = await read(lambda: port.fetch_mark_price(symbol))
            # The exchange stamps its prices on its own clock: on ours, a price is as old as it is on the exchange's.
            self.holding_quote = PriceQuote(quote.price, quote.timestamp - offset)
            last = self.model.last_period
            if last is None or now >= last + 2 * self.timeframe:
                since = last + self.timeframe if last is not None else now - self._history_seconds()
                holding = await self._candles(port, symbol, since, now, read)
                instrument = await self._candles(port, self.hedge.symbol, since, now, read)
                for at, holding_close, instrument_close in aligned_closes(
                    [(c.start, c.close) for c in holding], [(c.start, c.close) for c in instrument]
                ):
                    self.model.observe(at, holding_close, instrument_close)
                self._looked = True
            self.read_error = None
        except ExchangeError as exc:
            self.read_error = f"cannot read the prices the beta is estimated on: {exc}"

    def _history_seconds(self) -> float:
        periods = max(self.settings.min_observations, BACKFILL_HALF_LIVES * self.settings.half_life, self.settings.correlation_window) + 1
        return periods * self.timeframe

    async def _candles(
        self, port: ExchangePort, symbol: str, since: float, now: float,
        read: Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]],
    ) -> list[Candle]:
        """Read the closed candles from `since` page by page, until the last closed one (an exchange caps a page)."""
        out: list[Candle] = []
        start = since
        for _ in range(MAX_PAGES):
            page: list[Candle] = await read(lambda: port.fetch_ohlcv(symbol, self.settings.timeframe, start, PAGE))
            page = sorted((c for c in page if c.start >= start), key=lambda c: c.start)
            if not page:
                break
            out.extend(page)
            start = page[-1].start + self.timeframe
            if start + self.timeframe > now:
                break  # the next candle has not closed yet
        return out

    def figures(self) -> BetaFigures:
        """Return the estimate, the rolling correlation and the out-of-sample effectiveness now."""
        return self.model.figures()

    def broken(self) -> BreakVerdict | None:
        """Return the verdict when the rolling correlation is below the threshold (None: it holds, or is not known yet)."""
        correlation = self.model.figures().correlation
        if correlation is None or Decimal(repr(correlation)) >= self.settings.correlation_min:
            return None
        return BreakVerdict(correlation, self.settings.correlation_min, self.settings.on_break)

    def beta_in_force(self) -> Decimal | None:
        """Return the beta hedged with: the held one until the clamped estimate leaves the band, reduced on a break."""
        reading = self.model.figures().reading
        if reading is not None:
            estimate = Decimal(repr(reading.beta)).quantize(BETA_PLACES)
            self.held = held_beta(self.held, estimate, self.settings.band, self.settings.beta_min, self.settings.beta_max)
        if self.held is None:
            return None
        verdict = self.broken()
        if verdict is not None and verdict.action == "reduce":
            return (self.held * self.settings.reduce_to).quantize(BETA_PLACES)
        return self.held

    def size(self, snapshot: Snapshot, policy: HedgePolicy, now: float) -> Sizing:
        """Return what to plan on: the holding in the instrument's coins at the beta in force, or why not."""
        beta = self.beta_in_force()
        quote = self.holding_quote
        if quote is None:
            why = self.read_error or f"no price of {self.hedge.asset} ({self.settings.holding_symbol}) read yet"
            return Sizing(snapshot, policy, why)
        if beta is None:
            seen = self.model.estimator.observations
            return Sizing(snapshot, policy, (
                f"the beta of {self.hedge.asset} to {self.hedge.symbol} is not estimated yet: {seen} of "
                f"{self.settings.min_observations} {self.settings.timeframe} returns seen"
                + (" (the venue had no more history)" if self._looked else "")
            ))
        if now - quote.timestamp > policy.staleness_seconds:
            return Sizing(snapshot, policy, (
                f"the price of {self.hedge.asset} ({self.settings.holding_symbol}) is {now - quote.timestamp:.0f}s old, "
                f"beyond staleness_seconds {policy.staleness_seconds:g}"
            ))
        converted, sized = in_instrument_terms(snapshot, policy, beta, quote.price)
        return Sizing(converted, sized)

    def status_fields(self) -> dict[str, Any]:
        """Return what status, /metrics and the report show of the beta."""
        figures = self.figures()
        reading = figures.reading

        def shown(value: float | None) -> Decimal | None:
            return None if value is None else Decimal(repr(value)).quantize(BETA_PLACES)

        return {
            "beta": self.beta_in_force(),
            "beta_estimate": shown(reading.beta) if reading else None,
            "beta_ols": shown(reading.ols_beta) if reading else None,
            "correlation": shown(figures.correlation),
            "hedge_effectiveness": shown(figures.hedge_effectiveness),
        }

    async def look(
        self, port: ExchangePort, now: float, read: Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]], offset: float,
        alerts: AlertBook, ask_unwind: Callable[[str], None], emit: Callable[..., None],
    ) -> None:
        """Read prices and candles, journal the figures of each new candle, and raise correlation_broken when it breaks.

        `emit(kind, severity, **detail)` journals an event: `beta_figures` after new candles, which the report reads.
        """
        seen = self.model.estimator.observations
        await self.refresh(port, now, read, offset)
        if self.read_error is not None:
            alerts.raise_alert("beta_unreadable", Severity.WARNING, self.read_error)
        if self.model.estimator.observations != seen:
            figures = {k: str(v) for k, v in self.status_fields().items() if v is not None}
            emit("beta_figures", Severity.INFO, observations=self.model.estimator.observations, **figures)
        verdict = self.broken()
        if verdict is None:
            return
        said = {
            "keep": "the hedge keeps its beta (on_correlation_break = \"keep\")",
            "reduce": f"the hedge is reduced to {self.settings.reduce_to} of its beta (on_correlation_break = \"reduce\")",
            "unwind": "the hedge is unwound (on_correlation_break = \"unwind\")",
        }[verdict.action]
        message = (
            f"the correlation of {self.hedge.asset} with {self.hedge.symbol} over the last {self.settings.correlation_window} "
            f"{self.settings.timeframe} returns is {verdict.correlation:.2f}, below correlation_min {verdict.threshold}: "
            f"the short no longer hedges the holding; {said}"
        )
        alerts.raise_alert(
            "correlation_broken", Severity.CRITICAL, message, correlation=round(verdict.correlation, 4),
            threshold=str(verdict.threshold), action=verdict.action,
        )
        if verdict.action == "unwind":
            ask_unwind(f"correlation_broken: correlation {verdict.correlation:.2f} below {verdict.threshold}")


def held_as_is(plan: Plan, why: str) -> Plan:
    """Return the plan with the leg held as it is: no action, no target other than the leg, and why."""
    return replace(plan, blocked=why, actions=(), target=plan.short, drift=Decimal(0), in_band=True, orders_remaining=0)

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

from hedgebot.config import BetaSettings, HedgeConfig
from hedgebot.domain.beta import BetaFigures, BetaModel, aligned_closes, correlation_broken, held_beta
from hedgebot.domain.cross_hedge import Holding, in_instrument_terms
from hedgebot.domain.model import HedgePolicy, Severity, Snapshot
from hedgebot.domain.policy import Plan
from hedgebot.domain.trading import is_margin_topup
from hedgebot.exchange.candles import timeframe_seconds
from hedgebot.exchange.port import Candle, ExchangeError, ExchangePort, PriceQuote
from hedgebot.ops.alerts import AlertBook

# Candles asked for per request: within every venue's cap (Binance 1500, Bybit 1000, OKX 300); a venue that answers
# fewer (OKX's older history: 100) is asked again from where its answer ended.
PAGE = 200
MAX_PAGES = 60
BACKFILL_HALF_LIVES = 4  # by then the oldest candle weighs 1/16 of the newest: older ones change nothing that matters
BETA_PLACES = Decimal("0.0001")
BROKEN_SUFFIX = ":correlation_broken"  # journaled beside a holding's beta while its correlation break is in force


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


class _Holding:
    """One holding's estimate against the instrument, its price and the beta it is hedged with."""

    def __init__(self, asset: str, symbol: str, settings: BetaSettings) -> None:
        self.asset, self.symbol = asset, symbol
        self.model = BetaModel(settings.half_life, settings.min_observations, settings.correlation_window)
        self.held: Decimal | None = None  # the beta in force (before a break's reduction)
        self.quote: PriceQuote | None = None
        self._broken = False

    def broken(self, settings: BetaSettings) -> BreakVerdict | None:
        """Return the verdict while the relation is broken (below the threshold, then until it is well above it again)."""
        correlation = self.model.figures().correlation
        self._broken = correlation_broken(self._broken, correlation, settings.correlation_min)
        if not self._broken or correlation is None:
            return None
        return BreakVerdict(correlation, settings.correlation_min, settings.on_break)

    def beta_in_force(self, settings: BetaSettings) -> Decimal | None:
        """Return the beta hedged with: the held one until the clamped estimate leaves the band, reduced on a break."""
        reading = self.model.figures().reading
        if reading is not None:
            estimate = Decimal(repr(reading.beta)).quantize(BETA_PLACES)
            self.held = held_beta(self.held, estimate, settings.band, settings.beta_min, settings.beta_max)
        if self.held is None:
            return None
        # A beta restored from the journal, or held before a reload, obeys today's clamp before any new estimate.
        self.held = min(max(self.held, settings.beta_min), settings.beta_max)
        verdict = self.broken(settings)
        if verdict is not None and verdict.action == "reduce":
            return (self.held * settings.reduce_to).quantize(BETA_PLACES)
        return self.held

    def fields(self, settings: BetaSettings) -> dict[str, Any]:
        figures = self.model.figures()
        reading = figures.reading
        return {
            "beta": self.beta_in_force(settings),
            "beta_estimate": _shown(reading.beta) if reading else None,
            "beta_ols": _shown(reading.ols_beta) if reading else None,
            "correlation": _shown(figures.correlation),
            "hedge_effectiveness": _shown(figures.hedge_effectiveness),
        }


def _shown(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(value)).quantize(BETA_PLACES)


class BetaSizing:
    """One beta hedge's estimates (its holding's, and each of its basket's), fed from the venue's candles."""

    def __init__(self, hedge: HedgeConfig) -> None:
        self.hedge = hedge
        self.settings = hedge.beta_settings()
        self.timeframe = timeframe_seconds(self.settings.timeframe)
        self.holdings = [_Holding(asset, symbol, self.settings) for asset, symbol in hedge.holdings()]
        self.spot: dict[str, Decimal] = {}  # the account's spot balances at the last observation (a basket's coins)
        self.read_error: str | None = None
        self._looked = False  # the backfill is done
        # What the last plan was sized on: each holding's share of the beta-weighted value and its price, and the
        # instrument's price; with the band, the range of the target (relative to the planned one) the plan holds over.
        self._basis: tuple[dict[str, tuple[Decimal, Decimal]], Decimal] | None = None
        self._sized_basis: tuple[dict[str, tuple[Decimal, Decimal]], Decimal] | None = None
        self._holds: tuple[Decimal, Decimal | None] | None = None  # None: any move of a price wakes the keeper
        self._seen: dict[str, Decimal] = {}  # the latest price of each holding's market, and of the instrument
        self._unsized = False

    @property
    def symbols(self) -> frozenset[str]:
        """Return the markets the holdings are priced on."""
        return frozenset(h.symbol for h in self.holdings)

    @property
    def model(self) -> BetaModel:
        """Return the hedge's own holding's estimate."""
        return self.holdings[0].model

    def reconfigure(self, hedge: HedgeConfig) -> None:
        """Take reloaded settings: the clamp, band and break choice apply now; changed estimators start afresh.

        The beta held and a break in force carry over, as across a restart: a reload alone trades only what the
        new settings ask for.
        """
        settings = hedge.beta_settings()
        kept = (settings.half_life, settings.min_observations, settings.correlation_window, settings.timeframe)
        before = (self.settings.half_life, self.settings.min_observations, self.settings.correlation_window, self.settings.timeframe)
        self.hedge, self.settings = hedge, settings
        self.timeframe = timeframe_seconds(settings.timeframe)
        was = {(h.asset, h.symbol): h for h in self.holdings}
        old = was if kept == before else {}
        self.holdings = [old.get((asset, symbol)) or _Holding(asset, symbol, settings) for asset, symbol in hedge.holdings()]
        for holding in self.holdings:
            previous = was.get((holding.asset, holding.symbol))
            if previous is not None and previous is not holding:
                # A fresh estimator judges the band from the beta held and keeps a break in force, as a restart does.
                holding.held, holding._broken = previous.held, previous._broken
        if any(h.model.last_period is None for h in self.holdings):
            self._looked = False

    async def refresh(
        self, port: ExchangePort, now: float, read: Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]], offset: float = 0.0,
    ) -> None:
        """Read the holdings' prices, and the candles closed since the last look (all of the history at the first).

        A failed read keeps what was known and says why in `read_error`; the holdings' prices then age.
        """
        try:
            for holding in self.holdings:
                quote: PriceQuote = await read(lambda: port.fetch_mark_price(holding.symbol))
                # The exchange stamps its prices on its own clock: on ours, a price is as old as it is on the exchange's.
                holding.quote = PriceQuote(quote.price, quote.timestamp - offset)
            due = [h for h in self.holdings if h.model.last_period is None or now >= h.model.last_period + 2 * self.timeframe]
            if due:
                starts = [h.model.last_period + self.timeframe if h.model.last_period is not None else now - self._history_seconds() for h in due]
                since = min(starts)
                instrument = [(c.start, c.close) for c in await self._candles(port, self.hedge.symbol, since, now, read)]
                for holding in due:
                    own = await self._candles(port, holding.symbol, since, now, read)
                    for at, holding_close, instrument_close in aligned_closes([(c.start, c.close) for c in own], instrument):
                        holding.model.observe(at, holding_close, instrument_close)
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
        """Return the hedge's own holding's estimate, rolling correlation and out-of-sample effectiveness now."""
        return self.model.figures()

    def broken(self) -> list[tuple[str, BreakVerdict]]:
        """Return each holding whose rolling correlation is below the threshold, with the user's choice."""
        found = [(h.asset, h.broken(self.settings)) for h in self.holdings]
        return [(asset, verdict) for asset, verdict in found if verdict is not None]

    def remembered(self) -> dict[str, str]:
        """Return the betas held, by asset, and the breaks still in force, as the journal keeps them across a restart."""
        for holding in self.holdings:
            holding.beta_in_force(self.settings)
        return self._record()

    def _record(self) -> dict[str, str]:
        held = {h.asset: str(h.held) for h in self.holdings if h.held is not None}
        # A break is left only well above correlation_min: a restart inside that margin must not forget it.
        return {**held, **{f"{h.asset}{BROKEN_SUFFIX}": "true" for h in self.holdings if h._broken}}

    def restore(self, record: dict[str, Any] | None) -> None:
        """Take the betas held and the breaks in force before a restart, so that a restart alone trades nothing."""
        for holding in self.holdings:
            if record and holding.asset in record:
                holding.held = Decimal(str(record[holding.asset]))
            holding._broken = bool(record) and str(record.get(f"{holding.asset}{BROKEN_SUFFIX}")) == "true"

    def beta_in_force(self) -> Decimal | None:
        """Return the beta the hedge's own holding is hedged with (None: not estimated yet)."""
        return self.holdings[0].beta_in_force(self.settings)

    def size(self, snapshot: Snapshot, policy: HedgePolicy, now: float) -> Sizing:
        """Return what to plan on: the holdings in the instrument's coins at their betas in force, or why not."""
        sized: list[Holding] = []
        for holding in self.holdings:
            beta = holding.beta_in_force(self.settings)
            quote = holding.quote
            if quote is None:
                why = self.read_error or f"no price of {holding.asset} ({holding.symbol}) read yet"
                return Sizing(snapshot, policy, why)
            if beta is None:
                seen = holding.model.estimator.observations
                return Sizing(snapshot, policy, (
                    f"the beta of {holding.asset} to {self.hedge.symbol} is not estimated yet: {seen} of "
                    f"{self.settings.min_observations} {self.settings.timeframe} returns seen"
                    + (" (the venue had no more history)" if self._looked else "")
                ))
            if now - quote.timestamp > policy.staleness_seconds:
                return Sizing(snapshot, policy, (
                    f"the price of {holding.asset} ({holding.symbol}) is {now - quote.timestamp:.0f}s old, "
                    f"beyond staleness_seconds {policy.staleness_seconds:g}"
                ))
            sized.append(Holding(quote.price, beta, self.spot.get(holding.asset, Decimal(0))))
        converted, planned = in_instrument_terms(snapshot, policy, sized[0], sized[1:])
        self._sized_basis = self._weights(snapshot, policy, sized)
        return Sizing(converted, planned)

    def _weights(self, snapshot: Snapshot, policy: HedgePolicy, sized: list[Holding]) -> tuple[dict[str, tuple[Decimal, Decimal]], Decimal] | None:
        """Return each holding's share of the beta-weighted value (with its price) and the instrument's price."""
        mark = snapshot.mark_price
        if not (mark.is_finite() and mark > 0):
            return None
        elsewhere = snapshot.elsewhere
        own = snapshot.spot_asset * int(policy.include_spot) + policy.offset + (elsewhere.amount if elsewhere is not None else Decimal(0))
        values = [own * sized[0].beta * sized[0].price] + [h.coins * int(policy.include_spot) * h.beta * h.price for h in sized[1:]]
        total = sum(values, Decimal(0))
        if total <= 0:
            return None
        return {h.symbol: (value / total, sized[k].price) for k, (h, value) in enumerate(zip(self.holdings, values))}, mark

    def note_plan(self, plan: Plan, band: Decimal, sized: bool) -> None:
        """Take the plan just made: the holdings' and the instrument's prices hold it while its target stays in band.

        The target in the instrument's coins is the beta-weighted value of the holdings over the instrument's price,
        so a move of any holding's price, or of the instrument's, moves it. Only a settled plan (in band, nothing to
        do) holds over a range; any other wakes the keeper on every price.
        """
        basis = self._sized_basis if sized else None
        self._sized_basis = None
        self._basis = basis
        self._seen = {}
        settled = plan.in_band and not plan.actions and plan.blocked is None and plan.target > 0
        # Not sized (no beta yet, a stale holding's price): no price makes a size; the keeper's tick reads them again.
        self._unsized = basis is None
        if basis is None or not settled:
            self._holds = None
            return
        # In band while |short - target| <= band x target: target between short/(1+band) and short/(1-band).
        low = plan.short / (1 + band) / plan.target
        high = plan.short / (1 - band) / plan.target if band < 1 else None
        self._holds = (low, high)

    def holds_at(self, symbol: str, price: Decimal) -> bool:
        """Return whether the last plan still holds with `symbol` (a holding's market, or the instrument) at `price`."""
        if self._unsized:
            return True
        if self._basis is None or self._holds is None:
            return False
        if not (price.is_finite() and price > 0):
            return False
        self._seen[symbol] = price
        relative = self.target_scale(self._seen)
        low, high = self._holds
        return relative is not None and relative >= low and (high is None or relative <= high)

    def target_scale(self, prices: dict[str, Decimal]) -> Decimal | None:
        """Return the target now over the last plan's, at `prices` (by market; one not given: as planned).

        None: the last plan was not sized (no beta, no price), so there is no target to scale.
        """
        if self._basis is None:
            return None
        weights, mark = self._basis
        instrument = prices.get(self.hedge.symbol, mark)
        moved = Decimal(0)
        for market, (weight, at) in weights.items():
            # A holding priced on the instrument's own market moves with it.
            moved += weight * (instrument if market == self.hedge.symbol else prices.get(market, at)) / at
        return moved * mark / instrument

    async def largest_short(
        self, port: ExchangePort, snapshot: Snapshot, policy: HedgePolicy,
        read: Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]],
    ) -> Decimal:
        """Return the largest short the clamp allows now (beta_max on every holding), in the instrument's coins.

        Read at start-up, before any estimate: what the exchange's brackets must allow. A holding whose price
        cannot be read raises the venue's error: valued at any other price the check could pass a leverage the
        exchange refuses (a holding priced above the instrument would be under-counted).
        """
        sized: list[Holding] = []
        for holding in self.holdings:
            price = (await read(lambda: port.fetch_mark_price(holding.symbol))).price
            spot = snapshot.spot_asset if holding is self.holdings[0] else self.spot.get(holding.asset, Decimal(0))
            sized.append(Holding(price, self.settings.beta_max, spot))
        converted, planned = in_instrument_terms(snapshot, policy, sized[0], sized[1:])
        return planned.ratio * (converted.spot_asset * int(planned.include_spot) + planned.offset + (
            converted.elsewhere.amount if converted.elsewhere is not None else Decimal(0)
        ))

    def status_fields(self) -> dict[str, Any]:
        """Return what status, /metrics and the report show of the beta (a basket: each holding's too)."""
        own = self.holdings[0].fields(self.settings)
        if len(self.holdings) == 1:
            return own
        basket = tuple(
            {"asset": h.asset, **{k: None if v is None else str(v) for k, v in h.fields(self.settings).items()}}
            for h in self.holdings
        )
        return {**own, "basket": basket}

    async def look(
        self, port: ExchangePort, now: float, read: Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]], offset: float,
        alerts: AlertBook, ask_unwind: Callable[[str], None], emit: Callable[..., None],
        remember: Callable[[dict[str, str]], None] = lambda held: None,
    ) -> None:
        """Read prices and candles, journal the figures of each new candle, and raise correlation_broken when it breaks.

        `emit(kind, severity, **detail)` journals an event: `beta_figures` after new candles, which the report reads;
        `remember(betas)` journals the betas held whenever they change, for `restore` after a restart.
        """
        seen = [h.model.estimator.observations for h in self.holdings]
        before = self._record()
        await self.refresh(port, now, read, offset)
        held = self.remembered()
        if held != before:
            remember(held)
        if self.read_error is not None:
            alerts.raise_alert("beta_unreadable", Severity.WARNING, self.read_error)
        if [h.model.estimator.observations for h in self.holdings] != seen:
            figures = {k: str(v) for k, v in self.holdings[0].fields(self.settings).items() if v is not None}
            emit("beta_figures", Severity.INFO, observations=self.model.estimator.observations, **figures)
        broken = self.broken()
        if not broken:
            return
        action = broken[0][1].action
        said = {
            "keep": "the hedge keeps its beta (on_correlation_break = \"keep\")",
            "reduce": f"the hedge is reduced to {self.settings.reduce_to} of its beta (on_correlation_break = \"reduce\")",
            "unwind": "the hedge is unwound (on_correlation_break = \"unwind\")",
        }[action]
        which = "; ".join(
            f"the correlation of {asset} with {self.hedge.symbol} over the last {self.settings.correlation_window} "
            f"{self.settings.timeframe} returns is {verdict.correlation:.2f}" for asset, verdict in broken
        )
        threshold = broken[0][1].threshold
        message = f"{which}, below correlation_min {threshold}: the short no longer hedges the holding; {said}"
        alerts.raise_alert(
            "correlation_broken", Severity.CRITICAL, message, assets=[asset for asset, _ in broken],
            correlation=round(min(v.correlation for _, v in broken), 4), threshold=str(threshold), action=action,
        )
        if action == "unwind":
            ask_unwind(f"correlation_broken: {which}, below {threshold}")


def held_as_is(plan: Plan, why: str, unwinding: bool) -> Plan:
    """Return the plan with the leg held as it is, and why: no order, only the margin guard's top-ups.

    Without a beta (or a fresh price) the target is not known: no order may be sized on it. What lowers risk
    whatever the target still goes: the guard's margin top-ups, and an unwind's slices (the plan is then not
    blocked, so that the unwind the user or a correlation break asked for goes on).
    """
    topups = tuple(a for a in plan.actions if is_margin_topup(a))
    return replace(
        plan, blocked=None if unwinding else why, actions=topups, target=plan.short, drift=Decimal(0), in_band=True,
        orders_remaining=0, notes=(*plan.notes, why) if unwinding else plan.notes,
    )

"""Replay history through the same keeper and paper venue that paper and live mode use.

Replayed time is `hedgebot.replay_clock`'s, as in the daemon's replay mode, paced
by the simulated event loop (`hedgebot.clock`): the clock is moved to each
candle's close and the candle applied there with `apply_candle`. Funding
settled inside it is paid at its open, both extremes are tested for
liquidation before anyone can react (for a short, the high), and only then
does the keeper see the close. The keeper is woken by the
same rule as in live mode: the price leaving the range over which its last
plan holds, a balance or leg change, a funding settlement, or its tick. A
candle that wakes nobody costs only the venue's checks and the bookkeeping
here. Results are never flattering: the keeper reacts to the close.

While the keeper is at rest, a run of candles where nothing can happen is not
stepped through: a vectorised search over the price arrays finds the next
candle where the plan's range, the jump guard, a liquidation, funding, a spot
change or a hole in the candles can matter, the figures over the run are
summed from the arrays in the same float arithmetic, and of the quiet safety
ticks inside it at most the last is run (they only re-centre the plan's
range); none is, when the candle that ends the run wakes the keeper anyway at
that tick's instant (funding on its leg, a spot change), so a quiet stretch
costs one keeper run per wake whatever `tick_seconds`. The keeper, paper
venue and journal are the same code as live; the
results are the same as candle by candle (`candle_by_candle=True`, kept for
the tests that prove it).

A `FixedInterval` policy replays the same data with a keeper that wakes only
every N seconds and trades back to the exact target (band zero), as a fixed
rebalancing schedule does; it is the comparison `--compare interval:60m` runs.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from hedgebot.clock import SimClock
from hedgebot.config import HedgeConfig
from hedgebot.domain.margin import rule_for
from hedgebot.domain.model import ZERO, Leg, MarginMode, Market, PositionSide, Wallet
from hedgebot.exchange.port import Legs
from hedgebot.domain.exposure import exposure_from
from hedgebot.domain.schedule import CalendarEvent
from hedgebot.engine.keeper import Keeper, Liquidation
from hedgebot.exchange.factory import instrument_problem
from hedgebot.exchange.feeds import Candle
from hedgebot.exchange.funding import FundingSource
from hedgebot.exchange.paper import PaperMarket, PaperVenue, VenueEvent
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.ops.figures import iso_utc
from hedgebot.replay_clock import ReplayClock, apply_candle
from hedgebot.store.journal import Journal

YEAR_SECONDS = 365.0 * 86400.0


@dataclass(frozen=True)
class SpotChange:
    """A change of the spot wallet from outside (a miner's inflow, a fund's deposit or withdrawal)."""

    time: float
    asset: str
    amount: Decimal


@dataclass(frozen=True)
class FixedInterval:
    """Trade back to the exact target every `seconds`, and look at nothing in between."""

    seconds: float

    @property
    def label(self) -> str:
        """Return the policy's name as the CLI spells it."""
        return f"interval:{self.seconds / 60:g}m"


@dataclass(frozen=True)
class TradeRow:
    """One line of trades.csv: an order, margin top-up or release, transfer, funding payment, spot change or liquidation."""

    time: float
    kind: str
    symbol: str
    side: str
    amount: Decimal
    price: Decimal | None
    fee: Decimal
    quote_amount: Decimal
    detail: str


@dataclass(frozen=True)
class AlertRow:
    """One line of alerts.csv: an alert from when it was raised to when it was resolved (None: still active at the end)."""

    code: str
    severity: str
    raised_at: float
    resolved_at: float | None
    message: str
    resolved_message: str = ""


@dataclass(repr=False)
class BacktestResult:
    """What happened over the replay, summed from the venue's and the journal's records."""

    candles: int
    liquidations: int
    liquidation_prices: list[Decimal]
    topups: int
    margin_added: Decimal
    topup_sources: dict[str, int]
    funding_short: Decimal
    funding_long: Decimal
    orders: int
    critical_alerts: int
    final_exposure: Decimal
    final_short: Decimal
    max_over_hedge: Decimal
    first_price: Decimal
    last_price: Decimal
    peak_price: Decimal
    start_value: Decimal
    end_value: Decimal
    fees: Decimal
    coins_sold: Decimal = ZERO
    spot_quote_start: Decimal = ZERO
    spot_quote_end: Decimal = ZERO
    max_distance_after_sale: Decimal | None = None
    runway_at_start: Decimal | None = None
    alerts: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    trades: list[TradeRow] = field(default_factory=list)
    equity: dict[str, array] = field(default_factory=dict)
    keeper_wakes: int = 0
    alert_rows: list[AlertRow] = field(default_factory=list)
    market: Market | None = None  # the steps its figures are shown at
    gaps: list[tuple[float, float]] = field(default_factory=list)

    def __repr__(self) -> str:
        # Short: asyncio writes the repr of a finished run's result when it restores the SIGINT handler,
        # and the whole equity series of a year of minutes took seconds to write.
        return f"BacktestResult(candles={self.candles}, orders={self.orders}, liquidations={self.liquidations})"

    @property
    def value_kept(self) -> Decimal:
        """Return how far the end value is from start + funding - fees, as a fraction of the start value."""
        return (self.end_value - (self.start_value + self.funding_short + self.funding_long - self.fees)) / self.start_value

    def summary(self) -> dict[str, str]:
        """Return the headline figures as text."""
        return {
            "candles": str(self.candles),
            "price": f"{self.first_price} -> {self.last_price} (peak {self.peak_price})",
            "liquidations": str(self.liquidations),
            "top-ups": f"{self.topups} ({', '.join(f'{k}: {v}' for k, v in sorted(self.topup_sources.items())) or 'none'})",
            "margin added": f"{self.margin_added:.2f}",
            "funding short leg": f"{self.funding_short:+.2f}",
            "orders": str(self.orders),
            "critical alerts": str(self.critical_alerts),
            "final exposure / short": f"{self.final_exposure} / {self.final_short}",
            "account value": f"{self.start_value:.0f} -> {self.end_value:.0f} (fees {self.fees:.0f}; "
            f"vs start + funding - fees {self.value_kept:+.2%})",
            "coins sold": f"{self.coins_sold} (spot stablecoin {self.spot_quote_start:.2f} -> {self.spot_quote_end:.2f})",
            "distance after a sale": "-" if self.max_distance_after_sale is None else f"at most {self.max_distance_after_sale:.2%}",
            "runway at start": "-" if self.runway_at_start is None else f"{self.runway_at_start:.2f}",
            "alert events": ", ".join(f"{k}: {v}" for k, v in sorted(self.alerts.items())) or "none",
        }


def _summed_leg(venue: PaperVenue, market: Market, side: PositionSide) -> tuple[Decimal, Decimal, Decimal]:
    """Return (size, entry, margin) of one side's legs on `market` and its quarterlies, as one leg."""
    size = entry_weight = margin = ZERO
    for symbol in (market.symbol, *venue._quarterly_books.get(market.symbol, ())):
        state = venue.legs.get((symbol, side.value))
        if state is None or state.size <= 0:
            continue
        size += state.size
        margin += state.margin
        # Linear: entries weighted by size; inverse: the harmonic mean (face value over coins), as the exchange keeps it.
        entry_weight += state.size / state.entry if market.inverse else state.size * state.entry
    if size == 0:
        return ZERO, ZERO, ZERO
    return size, (size / entry_weight if market.inverse else entry_weight / size), margin


def _roll_bounds(run: _Lane) -> dict[str, Any]:
    """Return how low and how high the hedge's leg went against its target: at every candle close, and after every fill
    of a roll (where the overlap lives, inside a tick).

    `short_within_roll_bounds` is the judged figure: never below target − band, never above target + one slice
    (max_order) while the hedge followed its target. A roll's fills are judged against the target the hedge had when
    that roll began; the legs are summed over every contract from the journal's fills and the venue's deliveries.
    """
    market, journal, keeper = run.market, run.journal, run.keeper
    side = keeper.policy.side.value
    rule = rule_for(market)
    targets = {e.detail["contract"]: e.detail.get("target") for e in journal.events(kind="roll_started")}
    happenings: list[tuple[float, int, Any]] = [(i.created_at, 0, i) for i in journal.intents()]
    happenings += [(e.at, 1, e) for e in run.venue.events if e.kind in ("delivery", "liquidation")]
    legs: dict[str, Decimal] = {}
    drift_low, over_high = run.drift_low, run.over_high
    for _, kind, item in sorted(happenings, key=lambda h: (h[0], h[1])):
        if kind == 1:
            if item.side == side:
                legs[item.symbol] = ZERO
            continue
        d = item.detail
        if item.kind != "order" or item.status.value != "done" or d.get("position_side") != side:
            continue
        filled = Decimal(item.outcome["filled"])
        grows = (d["side"] == "sell") == (side == PositionSide.SHORT.value)
        legs[d["symbol"]] = legs.get(d["symbol"], ZERO) + (filled if grows else -filled)
        target = targets.get(d.get("roll"))
        if "roll" not in d or target is None or Decimal(str(target)) <= 0:
            continue
        price = Decimal(item.outcome.get("average_price") or "0")
        total = float(rule.coins(sum(legs.values(), ZERO), price) if market.inverse and price > 0 else sum(legs.values(), ZERO))
        goal = float(target)
        drift_low = min(drift_low, (total - goal) / goal)
        over_high = max(over_high, total - goal)
    band, slice_ = float(keeper.policy.band), float(keeper.hedge.max_order)
    known = math.isfinite(drift_low) and math.isfinite(over_high)
    return {
        "short_lowest_drift": drift_low if known else None,  # (short − target) / target at its lowest
        "short_highest_excess": over_high if known else None,  # short − target at its highest, in coins
        "short_within_roll_bounds": bool(known and drift_low >= -band - 1e-12 and over_high <= slice_ + 1e-9),
    }


def detect_interval(candles: Sequence[Candle]) -> float:
    """Return the candles' timeframe in seconds: the most common step between them (gaps do not count)."""
    columns = getattr(candles, "float_columns", None)
    if columns is not None:
        times = columns()[0][:2001]
        steps = (times[1:] - times[:-1]).tolist()
    else:
        steps = [b.time - a.time for a, b in zip(candles[:2001], candles[1:2001], strict=False)]
    if not steps:
        return 60.0
    return float(statistics.mode(steps))


def find_gaps(candles: Sequence[Candle], interval: float) -> list[tuple[float, float]]:
    """Return (last time before, first time after) of every hole longer than one candle."""
    columns = getattr(candles, "float_columns", None)
    if columns is not None:
        times = columns()[0]
        holes = np.flatnonzero(times[1:] - times[:-1] > interval * 1.5)
        return [(float(times[i]), float(times[i + 1])) for i in holes]
    return [(a.time, b.time) for a, b in zip(candles, candles[1:], strict=False) if b.time - a.time > interval * 1.5]


class _Ledger:
    """The account's figures after each change, kept as floats for per-candle bookkeeping.

    The hedged value is linear in the price between changes (spot coin plus
    stablecoin plus wallets plus the legs' open PnL), and so is the unhedged
    one (the coins and stablecoin the account would hold with no hedge), so a
    quiet candle costs a multiply and an add.
    """

    def __init__(
        self, venue: PaperVenue, market: Market, hedge: HedgeConfig, unhedged_units: float, unhedged_cash: float,
        start_price: float = 0.0,
    ) -> None:
        self.venue = venue
        self.market = market
        self.policy = hedge.policy()
        self.side = self.policy.side
        # A long hedge protects a planned purchase: both values count its price rise since the start as a cost
        # (the coins still to be paid for), so a hedged purchase reads flat and an unhedged one loses on a rally.
        self.planned = float(self.policy.offset) if self.side is PositionSide.LONG else 0.0
        self.start_price = start_price
        unhedged_units -= self.planned
        unhedged_cash += self.planned * start_price
        self.band = float(self.policy.band)
        self.ratio = float(self.policy.ratio)
        self.unhedged_units = unhedged_units
        self.unhedged_cash = unhedged_cash
        self.seen = -1  # the venue's change count at the last reading
        self.slope = self.intercept = 0.0
        self.liquidation = math.inf
        self.runway_liquidation = math.inf
        self.drift_ratio = 0.0
        self.exposure = self.short = self.target = 0.0
        self.margin = 0.0

    def distance_at(self, liquidation: float, price: float) -> float:
        """Return how far `price` may move toward the hedge leg's liquidation at `liquidation` (inf: none), as a fraction."""
        if not math.isfinite(liquidation) or price <= 0:
            return math.inf
        return liquidation / price - 1.0 if self.side is PositionSide.SHORT else 1.0 - liquidation / price

    def refresh(self) -> None:
        """Read the venue's state again after a change."""
        venue, market = self.venue, self.market
        symbol, quote = market.symbol, market.quote
        rule = rule_for(market)
        spot_base = venue.spot.get(market.base, ZERO)
        spot_quote = venue.spot.get(quote, ZERO)
        cash = venue.cash.get(market.margin_asset, ZERO)
        # The hedge's legs on this market and on its quarterlies, each side summed (valued at this market's price:
        # a quarterly's basis to it shows in the value once realised, at a roll or at delivery).
        s_size, s_entry, s_margin = _summed_leg(venue, market, PositionSide.SHORT)
        l_size, l_entry, l_margin = _summed_leg(venue, market, PositionSide.LONG)
        policy = self.policy
        if market.inverse:
            # In dollars at P: P x (the coins held, spot and COIN-M wallet) plus each leg's PnL s·F·(1 − P/EP),
            # linear in P as a linear account's value is: P x (coins + Σ s·F/EP) − Σ s·F.
            coins = spot_base + cash + s_margin + l_margin
            s_coins = s_size / s_entry if s_entry > 0 else ZERO
            l_coins = l_size / l_entry if l_entry > 0 else ZERO
            self.slope = float(coins + l_coins - s_coins) - self.planned
            self.intercept = float(spot_quote + s_size - l_size) + self.planned * self.start_price
            # The figures in coins at the mark: an inverse leg's coins move with the price (see `dirty`).
            mark = venue.marks[symbol][0] if symbol in venue.marks else None
            legs = (Leg(PositionSide.LONG, l_size, l_entry), Leg(PositionSide.SHORT, s_size, s_entry))
            posted = cash + s_margin + l_margin + (sum((rule.pnl(leg, mark) for leg in legs if leg.size > 0), ZERO) if mark else ZERO)
            self.exposure = float(exposure_from(policy, spot_base + max(posted, ZERO), ZERO))
            shown = rule.coins(s_size, mark) if mark else ZERO
        else:
            self.slope = float(spot_base + l_size - s_size) - self.planned
            self.intercept = float(spot_quote + cash + s_margin + l_margin + s_size * s_entry - l_size * l_entry)
            self.intercept += self.planned * self.start_price
            self.exposure = float(exposure_from(policy, spot_base, l_size))
            shown = ZERO
        # The hedge's own leg (the short, or the long of a long hedge) and the other one.
        if self.side is PositionSide.LONG:
            (s_size, s_entry, s_margin), (l_size, l_entry, l_margin) = (l_size, l_entry, l_margin), (s_size, s_entry, s_margin)
        self.short = float(shown if market.inverse else s_size)  # in coins, as the user reads it
        self.margin = float(s_margin)
        target = self.ratio * self.exposure
        self.drift_ratio = (self.short - target) / target if target > 0 else (0.0 if self.short == 0 else math.inf)
        self.target = target
        self.liquidation = self.runway_liquidation = math.inf
        if s_size > 0:
            leg = Leg(self.side, s_size, s_entry, s_margin)
            brackets = market.brackets
            pm = venue.markets[symbol]
            guard = policy.guard
            if pm.margin_mode is MarginMode.ISOLATED:
                wallet, others = s_margin, []
                spare = venue._free(market.margin_asset) if guard.enabled and guard.from_futures_wallet else ZERO
            else:
                longs = [Leg(self.side.other, l_size, l_entry, l_margin)] if l_size > 0 else []
                wallet, others = cash, longs
                spare = ZERO
            if guard.enabled and guard.from_spot_stablecoin:
                spare += venue.spot.get(market.margin_asset, ZERO)
            liquidation = rule.liquidation_price_of(wallet, [leg, *others], brackets)
            self.liquidation = float(liquidation) if liquidation is not None else math.inf
            deepest = rule.liquidation_price_of(wallet + spare, [leg, *others], brackets)
            self.runway_liquidation = float(deepest) if deepest is not None else math.inf
        self.seen = venue.changes

    @property
    def dirty(self) -> bool:
        """Return whether the venue changed since the last reading (always, for an inverse leg counted in coins)."""
        return self.seen != self.venue.changes or self.market.inverse


class _Lane:
    """One hedge in a replay: its paper account, keeper and per-candle bookkeeping.

    Several lanes share one replayed time (the simulated loop's) and one candle series, side by side.
    """

    def __init__(
        self,
        clock: ReplayClock,
        candles: Sequence[Candle],
        market: Market,
        funding: FundingSource,
        hedge: HedgeConfig,
        spot: dict[str, Decimal],
        futures: dict[str, Decimal],
        interval: float,
        slippage: Decimal,
        spot_changes: Sequence[SpotChange],
        fixed: FixedInterval | None,
        record_equity: bool,
        name: str = "backtest",
        calendar: Sequence[CalendarEvent] = (),
        quarterly_basis: Decimal | None = None,
    ) -> None:
        problem = instrument_problem(hedge, "paper", f"hedge {hedge.name!r}")
        if problem is not None:
            raise ValueError(problem)  # never replay another instrument in its place
        self.candles = candles
        self.market = market
        self.interval = interval
        self.fixed = fixed
        self.watch = fixed is None
        self.record_equity = record_equity
        self.spot_changes = sorted(spot_changes, key=lambda c: c.time)
        self.next_change = 0
        self.hedge = _simulated_hedge(hedge, interval, fixed)
        first = candles[0]
        self.clock = clock
        delivers = hedge.instrument.follows_delivery  # its quarterlies are listed, priced from these candles with a basis
        self.venue = PaperVenue(
            clock, [PaperMarket(market, funding, margin_mode=hedge.margin_mode, quarterlies=delivers, quarterly_basis=quarterly_basis),
                    *self._priced_markets(hedge, market)],
            spot=spot, futures=futures, slippage=slippage,
        )
        self.venue.update_price(market.symbol, first.time, first.open)
        self.journal = Journal(":memory:", clock)
        self.events = EventLog(self.journal, NullLogger())
        self.keeper = Keeper(name, self.hedge, self.venue, clock, self.journal, self.events, calendar=calendar)
        # The unhedged account: the coins (spot, and on a coin-margined contract the futures wallet's too) and the rest.
        coins = spot.get(market.base, ZERO) + (futures.get(market.base, ZERO) if market.inverse else ZERO)
        stable = sum((v for k, v in spot.items() if k != market.base), ZERO)
        stable += sum((v for k, v in futures.items() if not (market.inverse and k == market.base)), ZERO)
        self.ledger = _Ledger(self.venue, market, hedge, float(coins), float(stable), float(first.open))
        self.venue.subscribe(self._on_venue_change)
        # The keeper's status when the account last changed from outside, until a tick (which replaces it) has seen it:
        # a fixed-interval keeper is not woken by such a change, yet its next tick acts on it.
        self.unseen_change: object | None = None
        self.wakes = 0
        self.spot_change_rows: list[TradeRow] = []
        self.task: asyncio.Future[None] | None = None
        # Running figures.
        # The equity series, one row per figure of _SERIES, filled up to `self.filled` (a leap writes a whole run at once).
        self.table = np.empty((len(_SERIES), len(candles) if record_equity else 0))
        self.filled = 0
        self.sum_h = self.sum_sq_h = self.sum_u = self.sum_sq_u = 0.0
        self.count_r = 0
        self.outside = 0
        self.under = 0  # candles with the short below its band while the hedge is meant to follow its target
        self.reached = False  # whether the short was ever inside its band (or above it)
        self.targeted = False  # whether the hedge ever had a target to follow
        self.max_drift = 0.0
        # The short against its target while the hedge follows one: its lowest drift, its highest excess in coins.
        self.drift_low = math.inf
        self.over_high = -math.inf
        self.min_distance = self.min_runway = math.inf
        self.events_seen = 0
        self.flows = 0.0
        self.start_value = ledger_value(self.ledger, float(first.open))
        self.prev_h = self.start_value
        self.prev_u = self.ledger.unhedged_units * float(first.open) + self.ledger.unhedged_cash
        self.spot_quote_start = spot.get(market.quote, ZERO)
        self.orders_seen = 0
        self.after_sale: Decimal | None = None  # the short's largest distance right after a margin-raising sale
        self.runway_at_start: Decimal | None = None

    def _priced_markets(self, hedge: HedgeConfig, market: Market) -> list[PaperMarket]:
        """Return the markets the venue lists beside the hedge's own, only priced (a beta hedge's holding: backtest_cross)."""
        return []

    def at_rest(self) -> bool:
        """Tell whether the keeper is at rest and its last tick saw every change made to the account from outside."""
        if self.unseen_change is not None:
            if self.keeper.status is self.unseen_change:
                return False
            self.unseen_change = None
        return self.keeper.at_rest()

    def _on_venue_change(self, event: VenueEvent | None) -> None:
        if event is not None:
            self.unseen_change = self.keeper.status
        if event is not None and event.kind == "liquidation" and event.side == self.keeper.policy.side.value:
            # The same critical `liquidated` alert as the daemon raises.
            self.keeper.notify_liquidation(Liquidation(event.at, event.price, event.amount, event.margin_lost))
            if not self.watch:
                self.keeper.wake.clear()  # the fixed-interval policy still acts only on its schedule
        if event is not None and self.watch:
            self.keeper.notify_balance()  # funding settled or a leg was liquidated

    async def start(self) -> None:
        """Prepare the keeper and start its loop."""
        await self.keeper.prepare()
        self.task = asyncio.ensure_future(self.keeper.run())

    def apply(self, candle: Candle, at: float) -> bool:
        """Apply spot changes due by `at` and the candle; return whether the keeper must run now."""
        venue, keeper, symbol = self.venue, self.keeper, self.market.symbol
        changes = self.spot_changes
        self.flows = 0.0
        while self.next_change < len(changes) and changes[self.next_change].time <= at:
            self._spot_change(changes[self.next_change], at)
            self.next_change += 1
        apply_candle(venue, symbol, candle, at)
        if not self.watch:
            return False
        keeper.notify_price(candle.close)
        if keeper.wake.is_set():
            self.wakes += 1
            return True
        return False

    def _spot_change(self, change: SpotChange, at: float) -> None:
        venue, ledger, base = self.venue, self.ledger, self.market.base
        moved = venue.deposit(Wallet.SPOT, change.asset, change.amount)
        mark = venue.marks[self.market.symbol][0]
        value = moved * mark if change.asset == base else moved
        if change.asset == base:
            ledger.unhedged_units += float(moved)
        else:
            ledger.unhedged_cash += float(moved)
        self.flows += float(value)
        side = "in" if moved >= 0 else "out"
        self.spot_change_rows.append(TradeRow(at, "spot_change", change.asset, side, moved, mark, ZERO, value, "spot-changes file"))
        self.unseen_change = self.keeper.status
        if self.watch:
            self.keeper.notify_balance()

    def record(self, candle: Candle, at: float) -> None:
        """Add the candle's figures: values, drift, distance to liquidation and runway (at the high)."""
        ledger = self.ledger
        ratio = float(self.keeper.policy.ratio)  # a schedule's window may hold another ratio than the hedge's own
        if ledger.dirty or ratio != ledger.ratio:
            ledger.ratio = ratio
            ledger.refresh()
        close = float(candle.close)
        if self.runway_at_start is None and self.keeper.last_plan is not None:
            self.runway_at_start = self.keeper.last_plan.runway_price
        if len(self.venue.orders) != self.orders_seen:
            self._note_sales(ledger, close)
        h = ledger.slope * close + ledger.intercept
        u = ledger.unhedged_units * close + ledger.unhedged_cash
        drift = ledger.drift_ratio
        meant = self.keeper.hedge_meant
        if not meant:
            drift = 0.0  # closed, unwinding or paused by a person: there is no target to drift from
        size = abs(drift)
        if size > ledger.band:
            self.outside += 1
        if meant and ledger.target > 0:
            self.targeted = True
            if drift < -ledger.band:
                self.under += 1
            else:
                self.reached = True
        if size > self.max_drift:
            self.max_drift = size
        if meant and ledger.target > 0:
            self.drift_low = min(self.drift_low, drift)
            self.over_high = max(self.over_high, ledger.short - ledger.target)
        high = float(candle.high)
        # A short is judged at the candle's high, a long at its low: the extreme that moves toward liquidation.
        worst = high if ledger.side is PositionSide.SHORT else float(candle.low)
        distance = ledger.distance_at(ledger.liquidation, worst)
        # A short liquidated inside this candle is gone by its close, so the ledger no longer
        # sees it: the liquidation price against the high is the candle's worst distance (<= 0).
        liquidated = [e for e in self.venue.events[self.events_seen :] if e.kind == "liquidation"]
        self.events_seen = len(self.venue.events)
        for event in liquidated:
            distance = min(distance, ledger.distance_at(float(event.price), worst))
        if distance < self.min_distance:
            self.min_distance = distance
        runway = ledger.distance_at(ledger.runway_liquidation, worst)
        if runway < self.min_runway:
            self.min_runway = runway
        prev_h, prev_u = self.prev_h, self.prev_u
        if prev_h > 0 and prev_u > 0:
            rh = (h - self.flows) / prev_h - 1.0
            ru = (u - self.flows) / prev_u - 1.0
            self.sum_h += rh
            self.sum_sq_h += rh * rh
            self.sum_u += ru
            self.sum_sq_u += ru * ru
            self.count_r += 1
        self.prev_h, self.prev_u = h, u
        if self.record_equity:
            self.table[:, self.filled] = (at, close, h, u, drift, distance, ledger.exposure, ledger.short)
            self.filled += 1

    def record_quiet(self, prices: _Prices, start: int, stop: int) -> None:
        """Add the figures of candles `start` to `stop` (excluded), as `record` would one by one.

        Nothing changed the account over them (no order, funding, liquidation or
        spot change), so the ledger holds throughout: each figure is the same
        float arithmetic on arrays, sums accumulated in the same order.
        """
        ledger = self.ledger
        ratio = float(self.keeper.policy.ratio)
        if ledger.dirty or ratio != ledger.ratio:
            ledger.ratio = ratio
            ledger.refresh()
        if self.runway_at_start is None and self.keeper.last_plan is not None:
            self.runway_at_start = self.keeper.last_plan.runway_price
        count = stop - start
        close = prices.close[start:stop]
        h = ledger.slope * close + ledger.intercept
        u = ledger.unhedged_units * close + ledger.unhedged_cash
        drift = ledger.drift_ratio
        meant = self.keeper.hedge_meant
        if not meant:
            drift = 0.0
        size = abs(drift)
        if size > ledger.band:
            self.outside += count
        if meant and ledger.target > 0:
            self.targeted = True
            if drift < -ledger.band:
                self.under += count
            else:
                self.reached = True
        if size > self.max_drift:
            self.max_drift = size
        if meant and ledger.target > 0:
            self.drift_low = min(self.drift_low, drift)
            self.over_high = max(self.over_high, ledger.short - ledger.target)
        worst = prices.high[start:stop] if ledger.side is PositionSide.SHORT else prices.low[start:stop]
        distance = _distances(ledger, ledger.liquidation, worst)
        runway = _distances(ledger, ledger.runway_liquidation, worst)
        lowest = float(distance.min())
        if lowest < self.min_distance:
            self.min_distance = lowest
        lowest = float(runway.min())
        if lowest < self.min_runway:
            self.min_runway = lowest
        # Each candle's values and the ones before them (the last candle recorded, then this run's), as rows.
        values = np.empty((2, count + 1))
        values[0, 0], values[1, 0] = self.prev_h, self.prev_u
        values[0, 1:], values[1, 1:] = h, u
        before = values[:, :-1]
        counted = (before[0] > 0) & (before[1] > 0)
        returns = values[:, 1:] / before - 1.0
        if not counted.all():
            returns = returns[:, counted]
        if returns.shape[1]:
            # Sums of the returns and of their squares, each from the running total: np.cumsum adds left to right,
            # one term at a time, the same float sums as the loop's `+=`.
            terms = np.empty((4, returns.shape[1] + 1))
            terms[:, 0] = (self.sum_h, self.sum_sq_h, self.sum_u, self.sum_sq_u)
            terms[0::2, 1:] = returns
            terms[1::2, 1:] = returns * returns
            self.sum_h, self.sum_sq_h, self.sum_u, self.sum_sq_u = np.cumsum(terms, axis=1)[:, -1].tolist()
            self.count_r += returns.shape[1]
        self.prev_h, self.prev_u = float(h[-1]), float(u[-1])
        if self.record_equity:
            table, first = self.table, self.filled
            for row, column in enumerate((prices.at[start:stop], close, h, u, drift, distance, ledger.exposure, ledger.short)):
                table[row, first : first + count] = column
            self.filled += count

    def series(self) -> dict[str, array]:
        """Return the equity series recorded so far, each as an array of floats."""
        return {name: array("d", self.table[row, : self.filled].tobytes()) for row, name in enumerate(_SERIES)}

    def move_venue(self, candle: Candle, at: float) -> None:
        """Give the venue the candle, as `apply` does, on a candle known to wake nobody and settle nothing."""
        apply_candle(self.venue, self.market.symbol, candle, at)

    async def finish(self, peak: Decimal) -> BacktestResult:
        """Stop the keeper and sum up."""
        self.keeper.stop()
        await self.clock.loop.settle()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        interval, count = self.interval, self.count_r

        def volatility(total: float, squares: float) -> float | None:
            if count < 2:
                return None
            mean = total / count
            return math.sqrt(max(squares / count - mean * mean, 0.0)) * math.sqrt(YEAR_SECONDS / interval)

        ledger = self.ledger
        end_close = float(self.candles[-1].close)
        metrics = {
            "hedged_value_start": self.start_value,
            "hedged_value_end": ledger_value(ledger, end_close),
            "unhedged_value_end": ledger.unhedged_units * end_close + ledger.unhedged_cash,
            "hedge_value_volatility": volatility(self.sum_h, self.sum_sq_h),
            "unhedged_value_volatility": volatility(self.sum_u, self.sum_sq_u),
            "max_abs_drift_ratio": self.max_drift if math.isfinite(self.max_drift) else None,
            "time_outside_band_ratio": self.outside / len(self.candles),
            "target_reached": self.reached if self.targeted else None,
            "time_under_hedged_ratio": self.under / len(self.candles),
            "time_under_hedged_seconds": self.under * interval,
            "min_liquidation_distance": self.min_distance if math.isfinite(self.min_distance) else None,
            "min_runway": self.min_runway if math.isfinite(self.min_runway) else None,
            "gaps": len(find_gaps(self.candles, interval)),
            "interval_seconds": interval,
        }
        result = await _collect(self, self.start_value, peak, metrics)
        result.equity = self.series() if self.record_equity else {}
        result.keeper_wakes = self.wakes
        venue, spot_symbol = self.venue, self.market.spot_symbol
        result.coins_sold = sum((o.filled for o in venue.orders.values() if o.symbol == spot_symbol and o.side.value == "sell"), ZERO)
        result.spot_quote_start = self.spot_quote_start
        result.spot_quote_end = venue.spot.get(self.market.quote, ZERO)
        result.max_distance_after_sale = self.after_sale
        result.runway_at_start = self.runway_at_start
        result.alerts = dict(Counter(f"{e.detail.get('code')} {e.detail.get('state', '')}".strip() for e in self.journal.events(kind="alert")))
        result.alert_rows = _alert_rows(self.journal)
        result.gaps = find_gaps(self.candles, interval)
        self.journal.close()
        return result

    def _note_sales(self, ledger: _Ledger, close: float) -> None:
        """After new orders, note how far from liquidation a margin-raising sale left the short."""
        new = list(self.venue.orders.values())[self.orders_seen :]
        self.orders_seen = len(self.venue.orders)
        if any(o.symbol == self.market.spot_symbol for o in new) and math.isfinite(ledger.liquidation):
            distance = Decimal(repr(ledger.distance_at(ledger.liquidation, close)))
            self.after_sale = distance if self.after_sale is None else max(self.after_sale, distance)


def _distances(ledger: _Ledger, liquidation: float, price: np.ndarray) -> np.ndarray:
    """Return `ledger.distance_at(liquidation, p)` for each p of `price`."""
    if not math.isfinite(liquidation):
        return np.full(len(price), math.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = liquidation / price - 1.0 if ledger.side is PositionSide.SHORT else 1.0 - liquidation / price
    if (price <= 0).any():
        distance = np.where(price <= 0, math.inf, distance)
    return distance


_SERIES = ("time", "price", "hedged_value", "unhedged_value", "drift_ratio", "liquidation_distance", "exposure", "short")


class _Prices:
    """The candles as float arrays: what the search for the next candle where anything can happen reads."""

    def __init__(self, candles: Sequence[Candle], interval: float) -> None:
        columns = getattr(candles, "float_columns", None)
        if columns is not None:
            self.time, self.open, self.high, self.low, self.close = columns()
        else:
            count = len(candles)
            self.time = np.fromiter((c.time for c in candles), float, count)
            self.open, self.high, self.low, self.close = (
                np.fromiter((float(getattr(c, name)) for c in candles), float, count) for name in ("open", "high", "low", "close")
            )
        self.at = self.time + interval
        self.loop_at = self.at  # the loop's time of each, once the replay's clock is known
        # A candle after a hole (or an irregular step) is always stepped through: the keeper's price goes stale there.
        self.after_gap = np.ones(len(self.time), dtype=bool)
        self.after_gap[1:] = (self.time[1:] - self.time[:-1]) != interval


# A float bound this close (relative) to the exact one is left to the candle-by-candle step.
_MARGIN = 1e-9
# The first window the search reads; it doubles until something happens in it.
_FIRST_WINDOW = 512


def _as_float(value: Decimal | None, default: float) -> float:
    """Return `value` as a float, or `default` when there is none."""
    return default if value is None else float(value)


def _jump_limit(keeper: Keeper) -> float:
    """Return how far (relative) a price may be from the one the keeper last accepted and surely neither jump nor wake it."""
    jump = float(keeper.policy.max_jump)
    if keeper.hedge.wake_on_move is not None:
        jump = min(jump, float(keeper.hedge.wake_on_move))
    return jump * (1 - _MARGIN * 1000)


def _quiet_end(lane: _Lane, prices: _Prices, start: int, stop: int, ticks: np.ndarray) -> int:
    """Return the first candle of `start`..`stop` at which anything may happen in `lane` (`stop`: none).

    A candle is quiet when its close stays inside the last plan's range (shrunk
    by `_MARGIN`) and within the jump guard of the price the keeper last
    accepted, its extremes inside the venue's liquidation-free range, with no
    funding, spot change or hole in the candles; `ticks` holds the index of
    each candle whose step fires the safety tick, and such a tick is quiet when
    its price (the previous close) is within the jump guard of the one before,
    and far enough from liquidation not to raise the distance warning.
    """
    keeper, venue, symbol = lane.keeper, lane.venue, lane.market.symbol
    plan, snapshot = keeper.last_plan, keeper.last_snapshot
    safe = venue.safe_price_range(symbol)
    if plan is None or snapshot is None or safe is None:
        return start
    low = _as_float(plan.valid_low, 0.0) * (1 + _MARGIN)
    high = _as_float(plan.valid_high, math.inf) * (1 - _MARGIN)
    safe_low = _as_float(safe[0], 0.0) * (1 + _MARGIN)
    safe_high = _as_float(safe[1], math.inf) * (1 - _MARGIN)
    jump = _jump_limit(keeper)
    accepted = float(snapshot.mark_price)
    until = min(venue.funding_due(symbol), lane.spot_changes[lane.next_change].time if lane.next_change < len(lane.spot_changes) else math.inf)
    close = prices.close[start - 1 : stop]  # the previous close too: the first tick's price
    quiet = (close > low) & (close < high)
    liquidation = plan.liquidation_price
    if liquidation is not None:
        # The distance warning (HedgeWatch) is judged at each tick's price: stay clear of its level.
        level = float(keeper.hedge.warning_distance) * (1 + _MARGIN * 1000)
        lp = float(liquidation)
        quiet &= np.abs(lp - close) / close > level
    # Each candle's close against the price the keeper accepted at the last tick before it.
    count = stop - start
    anchors = np.full(count, accepted)
    fired = ticks[(ticks >= start) & (ticks < stop)]
    tick_price = prices.close[fired - 1]
    if len(fired):
        # Candle k sees the price of the last tick fired at or before its own step.
        last = np.searchsorted(fired, np.arange(start, stop), side="right") - 1
        anchors = np.where(last >= 0, tick_price[np.maximum(last, 0)], accepted)
    quiet_candle = quiet[1:] & (np.abs(prices.close[start:stop] / anchors - 1.0) < jump)
    quiet_candle &= (prices.high[start:stop] < safe_high) & (prices.low[start:stop] > safe_low)
    quiet_candle &= (prices.close[start:stop] < safe_high) & (prices.close[start:stop] > safe_low)
    quiet_candle &= prices.at[start:stop] < until
    quiet_candle &= ~prices.after_gap[start:stop]
    if len(fired):
        # A tick's step is quiet only when its own price is: inside the range, and no jump from the tick before.
        previous = np.concatenate(([accepted], tick_price[:-1]))
        tick_quiet = quiet[fired - 1 - (start - 1)] & (np.abs(tick_price / previous - 1.0) < jump)
        quiet_candle[fired - start] &= tick_quiet
    loud = np.flatnonzero(~quiet_candle)
    return start + int(loud[0]) if len(loud) else stop


async def _leap(
    replay: ReplayClock, lanes: Sequence[_Lane], candles: Sequence[Candle], prices: _Prices, start: int,
) -> tuple[int, bool]:
    """Move every lane over the quiet candles from `start`; return the first candle to step through (`start`: none quiet),
    and whether the leap stepped through the candle before it itself (the wake that ends the run; see `_tick_joins_wake`).

    The keepers' safety ticks inside the run are quiet: only the last one is
    run, late but at the same time and price as candle by candle, for its
    re-centred plan range is all the ticks before it leave behind; none is,
    when the step of the candle the run stops at runs the next tick anyway.
    """
    n = len(candles)
    if not all(lane.at_rest() for lane in lanes):
        return start, False
    clock = replay.loop
    virtual = clock.virtual
    timers = virtual.pending_timers()
    loop_at = prices.loop_at
    waits = {lane.keeper.hedge.tick_seconds for lane in lanes}
    wait = next(iter(waits))
    # The safety ticks are leapt over only when there is one pending timer per keeper, all due together, and no
    # schedule change near; otherwise the leap stops short of the first timer, and no tick falls inside it.
    chained = len(timers) == len(lanes) and len(set(timers)) == 1 and len(waits) == 1
    last = n if not timers else int(np.searchsorted(loop_at, timers[0], side="left"))
    horizon = math.inf
    for lane in lanes:
        change = lane.keeper.scheduled.schedule.next_change(clock.now())
        if change is not None:
            horizon = min(horizon, clock.loop_time(change) - 2 * wait)
    window = _FIRST_WINDOW
    end = start
    while True:
        limit = n if chained else last
        stop = min(start + window, limit)
        if stop <= start:
            return start, False
        # The safety ticks' chain in loop time: each one `wait` after the one before, summed as the loop does.
        first = timers[0] if chained else math.inf
        reach = loop_at[stop - 1]
        count = max(int((reach - first) / wait) + 2, 1) if first <= reach else 0
        chain = np.cumsum(np.concatenate(([first], np.full(count - 1, wait)))) if count else np.empty(0)
        chain = chain[chain <= reach]
        if len(chain) and chain[-1] >= horizon:
            return start, False
        ticks = np.searchsorted(loop_at, chain, side="left")
        end = min(_quiet_end(lane, prices, start, stop, ticks) for lane in lanes)
        if end < stop or stop == limit:
            break
        window *= 4
    if end - start < 2:
        return start, False
    # The ticks fired by the steps of the quiet candles; the last one is run, at its own time and price.
    fired = ticks[ticks < end]
    resume: float | None = None  # when the next tick is due, if the step of candle `end` runs it
    if len(fired):
        next_tick = float(chain[len(fired) - 1]) + wait
        close = float(prices.close[end - 1])
        if end < n and next_tick <= loop_at[end] and all(
            abs(close / float(lane.keeper.last_snapshot.mark_price) - 1.0) < _jump_limit(lane.keeper)  # type: ignore[union-attr]
            for lane in lanes
        ):
            # The step of candle `end` runs the next tick, at its own time and price; the quiet ticks before it only
            # re-centred the plan's range, which that tick re-centres again, and the price it judges is within the
            # jump guard of both the last tick's and the one it follows: none of them needs running.
            resume = next_tick
    if len(fired) and resume is None:
        last_tick = int(fired[-1])
        if last_tick - 1 >= start:
            for lane in lanes:
                lane.move_venue(candles[last_tick - 1], float(prices.at[last_tick - 1]))
        before = [(lane.venue.changes, len(lane.venue.orders), sum(lane.events.counts.values())) for lane in lanes]
        virtual.leap_to(float(chain[len(fired) - 1]))
        await clock.settle()
        after = [(lane.venue.changes, len(lane.venue.orders), sum(lane.events.counts.values())) for lane in lanes]
        next_tick = float(chain[len(fired) - 1]) + wait
        if before != after or virtual.pending_timers() != [next_tick] * len(lanes) or not all(lane.at_rest() for lane in lanes):
            raise RuntimeError("a safety tick the backtest took for quiet acted: the jump over quiet candles is wrong here")
    for lane in lanes:
        lane.move_venue(candles[end - 1], float(prices.at[end - 1]))
    if resume is not None and loop_at[end] < horizon and _tick_joins_wake(lanes, prices, end, int(fired[-1])):
        # Candle `end` wakes every keeper (funding on its leg, a spot change) at the instant its safety tick falls due,
        # well before any change of schedule, and that tick is quiet: the wake's tick is the one tick run there.
        virtual.leap_to(float(loop_at[end]))
        for lane in lanes:
            lane.record_quiet(prices, start, end)
        at = float(prices.at[end])
        woken = [lane.apply(candles[end], at) for lane in lanes]
        if not all(woken):
            raise RuntimeError("a candle the backtest took for a wake woke no keeper: the jump over quiet candles is wrong here")
        await clock.settle()
        for lane in lanes:
            lane.record(candles[end], at)
        return end + 1, True
    if resume is None:
        replay.move_to(float(prices.at[end - 1]))
    else:
        virtual.leap_to(resume)  # the keepers' pending timers fire there, late, as that tick
    for lane in lanes:
        lane.record_quiet(prices, start, end)
    return end, False


def _balance_wakes(lane: _Lane, at: float) -> bool:
    """Tell whether giving the venue the candle closing at `at` changes the account from outside and so wakes the keeper.

    That is a spot change due by then, or a funding settlement inside the candle paid on an open leg.
    """
    if not lane.watch:
        return False
    changes = lane.spot_changes
    if lane.next_change < len(changes) and changes[lane.next_change].time <= at:
        return True
    venue, symbol = lane.venue, lane.market.symbol
    last = venue.funding_checked.get(symbol)
    if last is None or venue.funding_due(symbol) > at or at <= last:
        return False
    if not any(leg.size > 0 for (leg_symbol, _), leg in venue.legs.items() if leg_symbol == symbol):
        return False
    return bool(venue.markets[symbol].funding.settlements(last, at))


def _tick_joins_wake(lanes: Sequence[_Lane], prices: _Prices, end: int, last_fired: int) -> bool:
    """Tell whether the safety tick due at the step of candle `end` may be left to the wake that candle brings.

    Every keeper must be woken by the account changing in candle `end`, and
    the tick must be quiet: candle `end` follows the one before without a
    hole (the tick would find the price stale), the tick's price (the previous
    close) inside the last plan's range and clear of the distance warning,
    within the jump guard of the tick before it, and the close the wake then
    judges within the jump guard both of that price and of the one the keeper
    last accepted (so the wake's tick accepts it either way).
    """
    if prices.after_gap[end]:
        return False  # the tick would find the price stale: a tick that acts (it blocks trading)
    price = float(prices.close[end - 1])
    before = float(prices.close[last_fired - 1])
    close = float(prices.close[end])
    for lane in lanes:
        keeper = lane.keeper
        plan, snapshot = keeper.last_plan, keeper.last_snapshot
        if plan is None or snapshot is None or not _balance_wakes(lane, float(prices.at[end])):
            return False
        if not _as_float(plan.valid_low, 0.0) * (1 + _MARGIN) < price < _as_float(plan.valid_high, math.inf) * (1 - _MARGIN):
            return False
        if plan.liquidation_price is not None:
            level = float(keeper.hedge.warning_distance) * (1 + _MARGIN * 1000)
            if not abs(float(plan.liquidation_price) - price) / price > level:
                return False
        jump, accepted = _jump_limit(keeper), float(snapshot.mark_price)
        if not (abs(price / before - 1.0) < jump and abs(close / price - 1.0) < jump and abs(close / accepted - 1.0) < jump):
            return False
    return True


async def _replay(replay: ReplayClock, lanes: Sequence[_Lane], candles: Sequence[Candle], interval: float,
                  progress: Callable[[int], None] | None, *, every_candle: bool = False) -> Decimal:
    """Drive every lane through the candles in simulated time; return the highest price seen.

    A candle that wakes no keeper and falls before every timer moves time
    without turning the event loop at all. Unless `every_candle` (the old way,
    kept to prove the new one the same), a run of candles where nothing can
    happen is found by a vectorised search over the price arrays and leapt
    over: the lanes' figures over it are summed from the arrays.
    """
    clock = replay.loop
    for lane in lanes:
        await lane.start()
    await clock.settle()
    peak = candles[0].high
    n = len(candles)
    report_every = max(n // 200, 1)
    prices = None if every_candle else _Prices(candles, interval)
    if prices is not None:
        prices.loop_at = clock.loop_time(prices.at)  # elementwise, the same float arithmetic as the step's
    index = 0
    # After a search that found nothing to leap over, the next few candles are stepped through before the next
    # search (twice as many after each miss, up to 64): stepping a candle that wakes nobody costs less than a search.
    retry_at, backoff = 1, 1
    while index < n:
        if prices is not None and index >= retry_at:
            end, stepped = await _leap(replay, lanes, candles, prices, index)
            if end == index:
                retry_at, backoff = index + backoff, min(backoff * 2, 64)
            else:
                retry_at, backoff = end, 1
            if end > index:
                top = float(prices.high[index:end].max())
                for k in np.flatnonzero(prices.high[index:end] == top):
                    high = candles[index + int(k)].high
                    if high > peak:
                        peak = high
                if progress is not None and (end - 1) // report_every > (index - 1) // report_every:
                    progress(end - 1)
                index = end
                if index == n:
                    break
                if stepped:
                    continue  # its last candle was stepped through by the leap, and the next may be quiet again
        candle = candles[index]
        at = candle.time + interval  # a candle is applied at its close
        await replay.reach(at)
        woke = False
        for lane in lanes:
            woke = lane.apply(candle, at) or woke
        if woke:
            await clock.settle()
        for lane in lanes:
            lane.record(candle, at)
        if candle.high > peak:
            peak = candle.high
        if progress is not None and index % report_every == 0:
            progress(index)
        index += 1
    if progress is not None:
        progress(n)
    return peak


def ledger_value(ledger: _Ledger, price: float) -> float:
    """Return the hedged account's value at `price` from the ledger's last reading."""
    if ledger.dirty:
        ledger.refresh()
    return ledger.slope * price + ledger.intercept


def _simulated_hedge(hedge: HedgeConfig, interval: float, fixed: FixedInterval | None) -> HedgeConfig:
    """Return the hedge as the replay runs it.

    A candle is the finest news a replay has, so the keeper ticks at most once
    per candle and a price is fresh for two candles (a real gap still makes it
    stale, and the keeper blocks as it would live). The fixed-interval policy
    ticks on its own schedule and trades to the exact target.
    """
    update: dict[str, Any] = {
        "tick_seconds": max(hedge.tick_seconds, interval),
        "staleness_seconds": max(hedge.staleness_seconds, 2 * interval + 1),
    }
    if fixed is not None:
        update["tick_seconds"] = max(fixed.seconds, interval)
        update["staleness_seconds"] = max(hedge.staleness_seconds, fixed.seconds + 2 * interval + 1)
        update["band"] = Decimal("1e-9")
    return hedge.model_copy(update=update)


async def _collect(run: _Lane, start_value: float, peak: Decimal, metrics: dict[str, Any]) -> BacktestResult:
    """Sum the venue's and the journal's records into the result."""
    venue, journal, market, keeper = run.venue, run.journal, run.market, run.keeper
    topups = []
    sources: dict[str, int] = {}
    for intent in journal.intents():
        if intent.status.value != "done":
            continue
        if intent.kind == "margin" and Decimal(intent.detail["amount"]) > 0:
            topups.append(intent)
        elif intent.kind == "transfer" and intent.detail["reason"] == "margin top-up":
            sources["transfers from spot stablecoin"] = sources.get("transfers from spot stablecoin", 0) + 1
        elif intent.kind == "order" and intent.detail["reason"].startswith("margin top-up") and intent.detail["symbol"] == market.spot_symbol:
            sources["spot sales"] = sources.get("spot sales", 0) + 1
    liquidations = [e for e in venue.events if e.kind == "liquidation"]
    funding_by_side = {
        side: sum((e.amount for e in venue.events if e.kind == "funding" and e.side == side.value), ZERO) for side in PositionSide
    }
    last_plan = keeper.last_plan
    fees = sum((o.fee for o in venue.orders.values()), ZERO)
    margin_added = sum((Decimal(i.detail["amount"]) for i in topups), ZERO)
    # The totals a user reads are the sums of the rows trades.csv shows, each on the margin step.
    step = market.margin_step
    funding_total = sum((e.amount.quantize(step) for e in venue.events if e.kind == "funding"), ZERO)
    fees_shown = sum((o.fee.quantize(step) for o in venue.orders.values()), ZERO)
    over = [Decimal(e.detail["short"]) - Decimal(e.detail["target"]) for e in journal.events() if e.kind in ("rebalanced", "hedge_opened")]
    end_value = Decimal(repr(metrics["hedged_value_end"])).quantize(Decimal("0.01"))
    metrics = {
        "instrument": keeper.hedge.instrument.value,
        "side": keeper.hedge.side.value,
        "margin_asset": market.margin_asset,  # what fees_quote, funding_quote and margin_added_quote count
        "coins_sold": sum((o.filled for o in venue.orders.values() if o.symbol == market.spot_symbol and o.side.value == "sell"), ZERO),
        "rolls": len(journal.events(kind="roll_completed")),  # quarterlies rolled to the next contract before delivery
        # instrument = "cheapest": each choice (at opening, at each roll window), what it compared and why.
        "instrument_choices": [
            {"at": iso_utc(e.at), "contract": e.detail.get("contract"), "held": e.detail.get("held"),
             "when": e.detail.get("when"), "carries": e.detail.get("carries", {}), "reason": e.detail.get("reason")}
            for e in journal.events(kind="instrument_chosen")
        ],
        **_roll_bounds(run),
        "bars": len(run.candles),
        "start": run.candles[0].time,
        "end": run.candles[-1].time + run.interval,
        "liquidations": len(liquidations),
        "orders": len(venue.orders),
        "fees_quote": fees_shown,
        "funding_quote": funding_total,
        "topups": len(topups),
        "margin_added_quote": margin_added,
        **metrics,
    }
    return BacktestResult(
        candles=len(run.candles),
        liquidations=len(liquidations),
        liquidation_prices=[e.price for e in liquidations],
        topups=len(topups),
        margin_added=margin_added,
        topup_sources=sources,
        funding_short=funding_by_side[PositionSide.SHORT],
        funding_long=funding_by_side[PositionSide.LONG],
        orders=len(venue.orders),
        # Alerts raised, each once: the lifecycle's repeats (every repeat_seconds while it lasts) are not new alerts.
        critical_alerts=sum(
            1 for e in journal.events(kind="alert") if e.severity == "critical" and e.detail.get("state") == "raised"
        ),
        final_exposure=last_plan.exposure if last_plan else ZERO,
        # The hedge's own leg, in coins (an inverse leg's face value at the last close).
        final_short=rule_for(market).coins(_summed_leg(venue, market, keeper.policy.side)[0], run.candles[-1].close),
        max_over_hedge=max([ZERO, *over]),
        first_price=run.candles[0].open,
        last_price=run.candles[-1].close,
        peak_price=peak,
        start_value=Decimal(repr(start_value)).quantize(Decimal("0.01")),
        end_value=end_value,
        fees=fees,
        events=dict(run.events.counts),
        metrics=metrics,
        trades=sorted(_trade_rows(run) + run.spot_change_rows, key=lambda r: r.time),
        market=market,
    )


def _alert_rows(journal: Journal) -> list[AlertRow]:
    """Pair each alert raised with its resolution; a repeat is not a new alert, an escalation raises the row's severity."""
    rows: list[AlertRow] = []
    open_rows: dict[str, int] = {}
    for event in journal.events():
        if event.kind not in ("alert", "alert_resolved"):
            continue
        code = str(event.detail.get("code"))
        state = event.detail.get("state")
        message = str(event.detail.get("message", ""))
        if event.kind == "alert" and state == "raised":
            if code in open_rows:
                row = rows[open_rows[code]]
                rows[open_rows[code]] = AlertRow(code, str(event.severity), row.raised_at, None, message)
            else:
                open_rows[code] = len(rows)
                rows.append(AlertRow(code, str(event.severity), event.at, None, message))
        elif event.kind == "alert_resolved" and code in open_rows:
            index = open_rows.pop(code)
            row = rows[index]
            rows[index] = AlertRow(row.code, row.severity, row.raised_at, event.at, row.message, message)
    return rows


def _notional(market: Market, order: Any) -> Decimal:
    """Return a fill's notional in the margin asset (a spot fill's in its quote)."""
    if order.symbol == market.symbol and order.average_price > 0:
        return rule_for(market).notional(order.filled, order.average_price)
    return order.filled * order.average_price


def _trade_rows(run: _Lane) -> list[TradeRow]:
    """Return every order, margin movement, transfer, funding payment and liquidation the venue recorded."""
    venue, journal, market = run.venue, run.journal, run.market
    rows: list[TradeRow] = []
    for order in venue.orders.values():
        side = order.side.value + (f" {order.position_side.value}" if order.position_side else "")
        rows.append(TradeRow(order.timestamp, "order", order.symbol, side, order.filled, order.average_price, order.fee,
                             _notional(run.market, order), order.client_id))
    reasons = {i.outcome.get("venue_id"): i.detail.get("reason", "") for i in journal.intents() if i.outcome and i.kind in ("margin", "transfer")}
    for movement in venue.movements:
        kind = ("topup" if movement.amount > 0 else "margin_release") if movement.kind == "margin" else "transfer"
        rows.append(TradeRow(movement.timestamp, kind, movement.asset, "", movement.amount, None, ZERO, movement.amount,
                             reasons.get(movement.venue_id, "")))
    for event in venue.events:
        if event.kind in ("funding", "liquidation"):
            quote = event.amount if event.kind == "funding" else -event.margin_lost
            # A liquidation happens at a computed price: shown on the market's steps, like every other figure.
            price = event.price.quantize(market.price_step) if event.kind == "liquidation" else event.price
            quote = quote.quantize(market.margin_step) if event.kind == "liquidation" else quote
            rows.append(TradeRow(event.at, event.kind, event.symbol, event.side, event.amount, price, ZERO, quote, event.detail))
    return rows


async def run_backtest(
    candles: Sequence[Candle],
    market: Market,
    funding: FundingSource,
    hedge: HedgeConfig,
    spot: dict[str, Decimal],
    futures: dict[str, Decimal],
    *,
    interval_seconds: float | None = None,
    slippage: Decimal = Decimal("0.0002"),
    spot_changes: Sequence[SpotChange] = (),
    fixed: FixedInterval | None = None,
    record_equity: bool = True,
    progress: Callable[[int], None] | None = None,
    calendar: Sequence[CalendarEvent] = (),
    candle_by_candle: bool = False,
    quarterly_basis: Decimal | None = None,
) -> BacktestResult:
    """Run `hedge` over `candles` (oldest first) and return what happened.

    `interval_seconds` is the candles' timeframe (detected when None). With
    `fixed`, the keeper follows the fixed-interval policy instead of its band.
    `progress` is called now and then with the number of candles done.
    `candle_by_candle` is internal: the replay as it was before quiet candles
    were leapt over, kept so that tests can prove both give the same result.
    """
    if not candles:
        raise ValueError("a backtest needs at least one candle")
    interval = interval_seconds or detect_interval(candles)
    replay = ReplayClock.on_loop(SimClock(start=candles[0].time))
    lane = _Lane(
        replay, candles, market, funding, hedge, spot, futures, interval, slippage, spot_changes, fixed, record_equity,
        calendar=calendar, quarterly_basis=quarterly_basis,
    )
    peak = await _replay(replay, [lane], candles, interval, progress, every_candle=candle_by_candle)
    return await lane.finish(peak)


async def run_side_by_side(
    candles: Sequence[Candle],
    market: Market,
    funding: FundingSource,
    hedges: Sequence[tuple[HedgeConfig, dict[str, Decimal], dict[str, Decimal]]],
    *,
    interval_seconds: float | None = None,
    record_equity: bool = False,
    candle_by_candle: bool = False,
) -> list[BacktestResult]:
    """Run several hedges, each on its own paper account, over the same candles on one simulated clock.

    `candle_by_candle` is internal, as in `run_backtest`.
    """
    if not candles:
        raise ValueError("a backtest needs at least one candle")
    interval = interval_seconds or detect_interval(candles)
    replay = ReplayClock.on_loop(SimClock(start=candles[0].time))
    lanes = [
        _Lane(replay, candles, market, funding, hedge, spot, futures, interval, Decimal("0.0002"), (), None, record_equity, name=f"lane{i}")
        for i, (hedge, spot, futures) in enumerate(hedges)
    ]
    peak = await _replay(replay, lanes, candles, interval, None, every_candle=candle_by_candle)
    return [await lane.finish(peak) for lane in lanes]


async def account_value(venue: PaperVenue, market: Market) -> Decimal:
    """Return the account's whole value in the quote asset at the mark: spot, futures wallet, open PnL."""
    mark = (await venue.fetch_mark_price(market.symbol)).price
    spot = await venue.fetch_spot_balances()
    value = sum((amount * (mark if asset == market.base else 1) for asset, amount in spot.items()), ZERO)
    rule = rule_for(market)
    # The legs on the market and on its quarterlies (valued at the market's mark).
    legs = Legs(*(Leg(side, *_summed_leg(venue, market, side)) for side in (PositionSide.LONG, PositionSide.SHORT)))
    # The futures wallet and the legs' PnL, in the margin asset: coins on a coin-margined contract, valued at the mark.
    futures = (await venue.fetch_futures_balance(market.margin_asset)).wallet + rule.pnl(legs.short, mark) + rule.pnl(legs.long, mark)
    return value + (futures * mark if market.inverse else futures)

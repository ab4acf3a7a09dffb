"""A beta hedge's replay: the backtest engine of every hedge, fed a second price, the holding's market's.

`hedgebot.backtest` replays one market's candles through the real keeper and
paper venue. A beta hedge holds one coin and shorts another, so its replay
lists the holding's market on the same paper venue (only priced: no leg is
ever opened there) and gives it the holding's candle of the same time before
each of the instrument's candles. Everything else is the engine's own: the
instrument's highs and lows tested for liquidation inside each candle, the
keeper woken by either price (`Keeper.notify_holding_price`), its ticks,
trades, equity, alerts and summary.

The account's value counts the holding's coins at the holding's price, so the
hedged and unhedged values are what the user would have held; the exposure,
target and drift are in the instrument's coins (what the short is measured
in), the target moving with the holdings' worth between plans.

A run of quiet candles is not leapt over here: the search for them reads only
the instrument's prices, and a holding's price moves the target too. Every
candle is stepped through (`every_candle`), which gives the same results as
the leap where both apply.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal

import numpy as np

from hedgebot.backtest import (
    BacktestResult, FixedInterval, SpotChange, TradeRow, _Lane, _Ledger, _replay, detect_interval, ledger_value,
)
from hedgebot.clock import SimClock
from hedgebot.config import HedgeConfig
from hedgebot.domain.model import ZERO, Market, Wallet
from hedgebot.domain.schedule import CalendarEvent
from hedgebot.engine.keeper import Keeper
from hedgebot.exchange.feeds import Candle
from hedgebot.exchange.funding import FundingSource, NoFunding
from hedgebot.exchange.paper import PaperMarket, PaperVenue
from hedgebot.replay_clock import ReplayClock, apply_candle


class _CrossLedger(_Ledger):
    """The account's figures with a holding on another market: its coins valued at its own price."""

    def __init__(self, venue: PaperVenue, market: Market, hedge: HedgeConfig, keeper: Keeper, priced: Sequence[tuple[str, str]],
                 unhedged_units: float, unhedged_cash: float, start_price: float) -> None:
        super().__init__(venue, market, hedge, unhedged_units, unhedged_cash, start_price)
        self.keeper, self.priced = keeper, priced  # (asset, market) of each holding on a market of its own

    @property
    def dirty(self) -> bool:
        """Return True: the holding's price moves the value and the target on every candle."""
        return True

    def refresh(self) -> None:
        """Read the venue again; add the holding's coins at its price; take the target from the keeper's last plan."""
        super().refresh()
        venue = self.venue
        for asset, symbol in self.priced:
            held = venue.marks.get(symbol)
            if held is not None:
                self.intercept += float(venue.spot.get(asset, ZERO) * held[0])
        plan, sizing = self.keeper.last_plan, self.keeper.beta_sizing
        if plan is None or sizing is None:
            self.exposure = self.target = 0.0
        else:
            prices = {sym: mark for sym, (mark, _) in venue.marks.items()}
            scale = sizing.target_scale(prices)
            if scale is not None:
                self.exposure = float(plan.exposure * scale)
                self.target = float(plan.target * scale)
            else:
                # Not sized (no beta yet, a stale price): the plan counted the holding's own coins and held the short.
                mark = prices.get(self.market.symbol)
                own = prices.get(self.priced[0][1]) if self.priced and self.priced[0][0] == self.keeper.hedge.asset else mark
                worth = own / mark if own is not None and mark else ZERO
                self.exposure = float(plan.exposure * worth)
                self.target = float(plan.target)
        target = self.target
        self.drift_ratio = (self.short - target) / target if target > 0 else (0.0 if self.short == 0 else math.inf)


class _CrossLane(_Lane):
    """One beta hedge in a replay: the engine's lane with each holding's market listed and priced candle by candle."""

    def __init__(
        self, clock: ReplayClock, candles: Sequence[Candle], holdings: Sequence[tuple[str, str, Sequence[Candle]]], market: Market,
        funding: FundingSource, hedge: HedgeConfig, spot: dict[str, Decimal], futures: dict[str, Decimal], interval: float,
        slippage: Decimal, spot_changes: Sequence[SpotChange], fixed: FixedInterval | None, record_equity: bool,
        calendar: Sequence[CalendarEvent], name: str = "backtest",
    ) -> None:
        self.priced = [(asset, symbol) for asset, symbol, _ in holdings]
        super().__init__(clock, candles, market, funding, hedge, spot, futures, interval, slippage, (), fixed, record_equity,
                         name=name, calendar=calendar)
        venue = self.venue
        # Each holding's candle of each time, found by index: the files may start, end or miss candles apart.
        self.feeds: list[tuple[str, str, Sequence[Candle], dict[float, int]]] = []
        self.units: dict[str, float] = {}
        self.prices: dict[str, float] = {}
        for asset, symbol, series in holdings:
            columns = getattr(series, "float_columns", None)
            times = columns()[0] if columns is not None else np.fromiter((c.time for c in series), float, len(series))
            first = series[min(int(np.searchsorted(times, candles[0].time, side="left")), len(times) - 1)]
            venue.update_price(symbol, candles[0].time, first.open)
            self.feeds.append((asset, symbol, series, {float(t): k for k, t in enumerate(times)}))
            self.units[asset] = float(spot.get(asset, ZERO))
            self.prices[asset] = float(first.open)
        # The unhedged account: the holdings' coins at their prices, the rest as the engine counts it (without them).
        ledger = self.ledger
        self.cash_base = ledger.unhedged_cash - sum(self.units.values())
        self.ledger = _CrossLedger(venue, market, hedge, self.keeper, self.priced, ledger.unhedged_units, self._unhedged_cash(),
                                   float(candles[0].open))
        self.start_value = ledger_value(self.ledger, float(candles[0].open))
        self.prev_h = self.start_value
        self.prev_u = self.ledger.unhedged_units * float(candles[0].open) + self.ledger.unhedged_cash
        self.spot_changes = sorted(spot_changes, key=lambda c: c.time)

    def _unhedged_cash(self) -> float:
        return self.cash_base + sum(self.units[asset] * self.prices[asset] for asset in self.units)

    def _priced_markets(self, hedge: HedgeConfig, market: Market) -> list[PaperMarket]:
        # A holding's market takes the instrument's rules under its own name: it is only priced, never traded.
        return [PaperMarket(replace(market, symbol=symbol, base=asset), NoFunding()) for asset, symbol in self.priced]

    def apply(self, candle: Candle, at: float) -> bool:
        """Give the venue each holding's candle of the same time, then the instrument's; return whether the keeper runs."""
        woke = False
        for asset, symbol, series, index in self.feeds:
            k = index.get(float(candle.time))
            if k is None:
                continue  # a missing candle leaves the holding's price to age: the keeper holds the leg once it is stale
            own = series[k]
            apply_candle(self.venue, symbol, own, at)
            self.prices[asset] = float(own.close)
            if self.watch:
                self.keeper.notify_holding_price(symbol, own.close)
                woke = woke or self.keeper.wake.is_set()
        self.ledger.unhedged_cash = self._unhedged_cash()
        return super().apply(candle, at) or woke

    def _spot_change(self, change: SpotChange, at: float) -> None:
        symbol = dict(self.priced).get(change.asset)
        if symbol is None:
            super()._spot_change(change, at)
            if change.asset != self.market.base:
                self.cash_base += float(change.amount)
            return
        # Coins of a holding come and go: valued at the holding's price, counted in the unhedged account too.
        venue = self.venue
        moved = venue.deposit(Wallet.SPOT, change.asset, change.amount)
        mark = venue.marks[symbol][0]
        self.units[change.asset] += float(moved)
        self.ledger.unhedged_cash += float(moved * mark)
        self.flows += float(moved * mark)
        side = "in" if moved >= 0 else "out"
        self.spot_change_rows.append(TradeRow(at, "spot_change", change.asset, side, moved, mark, ZERO, moved * mark, "spot-changes file"))
        self.unseen_change = self.keeper.status
        if self.watch:
            self.keeper.notify_balance()


async def run_cross_backtest(
    candles: Sequence[Candle],
    holdings: Sequence[tuple[str, str, Sequence[Candle]]],
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
) -> BacktestResult:
    """Run a beta hedge over the instrument's `candles` and each holding's (asset, market, candles); return what happened.

    A holding valued on the instrument's own market is not among `holdings`: the engine counts it as any hedge's coin.
    """
    if not candles or not all(series for _, _, series in holdings):
        raise ValueError("a backtest needs at least one candle of each market")
    interval = interval_seconds or detect_interval(candles)
    clock = ReplayClock.on_loop(SimClock(start=candles[0].time))
    lane = _CrossLane(clock, candles, holdings, market, funding, hedge, spot, futures, interval, slippage, spot_changes, fixed,
                      record_equity, calendar)
    peak = await _replay(clock, [lane], candles, interval, progress, every_candle=True)
    return await lane.finish(peak)

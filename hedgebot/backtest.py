"""Replay history through the same keeper and paper venue that paper and live mode use.

Each candle is applied at its close time: funding settled inside it is paid
at its open, both extremes are tested for liquidation before anyone can react
(for a short, the high), and only then does the keeper see the close and act.
Results are never flattering: the keeper reacts once per candle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from hedgebot.clock import SimClock
from hedgebot.config import HedgeConfig
from hedgebot.domain.model import ZERO, Market, PositionSide
from hedgebot.engine.keeper import Keeper
from hedgebot.exchange.feeds import Candle
from hedgebot.exchange.funding import FundingSource
from hedgebot.exchange.paper import PaperMarket, PaperVenue
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import Journal


@dataclass
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
    events: dict[str, int] = field(default_factory=dict)

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
            "account value": f"{self.start_value:.0f} -> {self.end_value:.0f} (fees {self.fees:.0f})",
        }


async def run_backtest(
    candles: Sequence[Candle],
    market: Market,
    funding: FundingSource,
    hedge: HedgeConfig,
    spot: dict[str, Decimal],
    futures: dict[str, Decimal],
    *,
    interval_seconds: float = 3600.0,
    slippage: Decimal = Decimal("0.0002"),
) -> BacktestResult:
    """Run `hedge` over `candles` and return what happened."""
    if not candles:
        raise ValueError("a backtest needs at least one candle")
    clock = SimClock(start=candles[0].time)
    venue = PaperVenue(clock, [PaperMarket(market, funding)], spot=spot, futures=futures, slippage=slippage)
    venue.update_price(market.symbol, clock.now(), candles[0].open)
    start_value = await account_value(venue, market)
    journal = Journal(":memory:", clock)
    events = EventLog(journal, NullLogger())
    keeper = Keeper("backtest", hedge, venue, clock, journal, events)
    await clock.run(keeper.prepare())
    await clock.run(keeper.tick())
    max_over = ZERO
    peak = candles[0].high
    for candle in candles:
        await clock.set(candle.time + interval_seconds)
        venue.update_price(market.symbol, clock.now(), candle.close, open_=candle.open, high=candle.high, low=candle.low)
        peak = max(peak, candle.high)
        plan = await clock.run(keeper.tick())
        if plan is not None and plan.target >= 0:
            max_over = max(max_over, plan.short - plan.target)
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
    funding_by_side = {side: sum((e.amount for e in venue.events if e.kind == "funding" and e.side == side.value), ZERO) for side in PositionSide}
    legs = await venue.fetch_legs(market.symbol)
    last_plan = keeper.last_plan
    end_value = await account_value(venue, market)
    result = BacktestResult(
        candles=len(candles),
        liquidations=len(liquidations),
        liquidation_prices=[e.price for e in liquidations],
        topups=len(topups),
        margin_added=sum((Decimal(i.detail["amount"]) for i in topups), ZERO),
        topup_sources=sources,
        funding_short=funding_by_side[PositionSide.SHORT],
        funding_long=funding_by_side[PositionSide.LONG],
        orders=len(venue.orders),
        critical_alerts=sum(1 for e in journal.events(kind="alert") if e.severity == "critical"),
        final_exposure=last_plan.exposure if last_plan else ZERO,
        final_short=legs.short.size,
        max_over_hedge=max_over,
        first_price=candles[0].open,
        last_price=candles[-1].close,
        peak_price=peak,
        start_value=start_value,
        end_value=end_value,
        fees=sum((o.fee for o in venue.orders.values()), ZERO),
        events=dict(events.counts),
    )
    journal.close()
    return result


async def account_value(venue: PaperVenue, market: Market) -> Decimal:
    """Return the account's whole value in the quote asset at the mark: spot, futures wallet, open PnL."""
    mark = (await venue.fetch_mark_price(market.symbol)).price
    spot = await venue.fetch_spot_balances()
    value = sum((amount * (mark if asset == market.base else 1) for asset, amount in spot.items()), ZERO)
    value += (await venue.fetch_futures_balance(market.quote)).wallet
    legs = await venue.fetch_legs(market.symbol)
    return value + legs.short.unrealized_pnl(mark) + legs.long.unrealized_pnl(mark)

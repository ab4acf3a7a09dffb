"""A deterministic fault simulation: hours of market time against a faulty venue.

The real keeper trades a paper venue through `FaultyPort` while the price
wanders and spot deposits and withdrawals arrive. Then faults stop and the
hedge must settle back inside its band. Everything is seeded; the figures
come from the venue's own record compared with the journal's.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from decimal import Decimal

from hedgebot.clock import SimClock
from hedgebot.config import HedgeConfig
from hedgebot.domain.model import ZERO, Wallet
from hedgebot.engine.keeper import Keeper
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.faults import FaultRates, FaultyPort
from hedgebot.exchange.feeds import SyntheticFeed
from hedgebot.exchange.funding import ConstantFunding
from hedgebot.exchange.paper import FillModel, PaperMarket, PaperVenue
from hedgebot.exchange.port import ExchangeError
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import IntentStatus, Journal

SYMBOL = "BTC/USDT:USDT"

# Writes fail after executing far more often than on any real venue, so the
# lookup-before-resend path runs hundreds of times.
HARSH = FaultRates(
    timeout_before=0.05, timeout_after=0.20, rate_limited=0.04, server_error=0.04,
    duplicate_after=0.10, stale_price=0.03, absurd_price=0.02,
)


@dataclass(frozen=True)
class FaultSimResult:
    """What the simulation measured."""

    seed: int
    ticks: int
    faults_injected: int
    faults_by_kind: dict[str, int]
    partial_fills: int
    venue_orders: int
    journal_orders_done: int
    duplicate_executions: int
    growth_overshoots: int
    journal_mismatches: int
    open_intents_left: int
    worst_over_hedge: Decimal
    worst_drift_ratio: Decimal
    ticks_to_recover: int | None
    final_in_band: bool


async def run_fault_simulation(
    seed: int,
    hours: float = 6.0,
    tick_seconds: float = 10.0,
    rates: FaultRates | None = None,
    partial_fill_probability: float = 0.15,
    recovery_ticks: int = 30,
) -> FaultSimResult:
    """Run the simulation with `seed` and return its figures."""
    rng = random.Random(seed)
    clock = SimClock(start=1_600_000_000.0)
    market = default_market(SYMBOL)
    assert market is not None
    venue = PaperVenue(
        clock,
        [PaperMarket(market, ConstantFunding(Decimal("0.0001")))],
        spot={"BTC": Decimal("5"), "USDT": Decimal("500000")},
        futures={"USDT": Decimal("200000")},
        fill_model=FillModel(partial_fill_probability, seed=seed),
    )
    feed = SyntheticFeed(Decimal("40000"), tick_seconds, volatility=1.5, jump_probability=0.001, jump_size=0.05, seed=seed)
    venue.update_price(SYMBOL, clock.now(), Decimal("40000"))
    port = FaultyPort(venue, seed=seed, rates=rates)
    overshoots = 0
    seen_orders = 0

    def watch_fills(_: object) -> None:
        # A fill that grows the short must never carry it past the target: a
        # doubled order (a blind resend under a new id) would.
        nonlocal overshoots, seen_orders
        if len(venue.orders) == seen_orders:
            return
        seen_orders = len(venue.orders)
        last = next(reversed(venue.orders.values()))
        if last.symbol == SYMBOL and last.side.value == "sell":
            short = venue._legs_of(SYMBOL).short.size
            if short - venue.spot.get("BTC", ZERO) > market.amount_step:
                overshoots += 1

    venue.subscribe(watch_fills)
    journal = Journal(":memory:", clock)
    hedge = HedgeConfig(
        name="sim", asset="BTC", symbol=SYMBOL, ratio=Decimal("1"), band=Decimal("0.02"),
        max_order=Decimal("0.5"), leverage=3, tick_seconds=tick_seconds,
        # The simulation feeds a lying price about once an hour to prove such readings never
        # trade; the unconfirmed-jump breaker would (rightly) stop the hedge for a person at
        # the first one, and this simulation measures recovery, not that breaker.
        breakers={"unconfirmed_jump": False},
    )
    keeper = Keeper("sim", hedge, port, clock, journal, EventLog(journal, NullLogger()), seed=seed)
    await clock.run(keeper.prepare())
    worst_over = ZERO
    worst_drift = ZERO
    ticks = int(hours * 3600 / tick_seconds)

    async def step() -> None:
        candle = await feed.next()
        await clock.advance(tick_seconds)
        venue.update_price(SYMBOL, clock.now(), candle.close)
        with contextlib.suppress(ExchangeError):  # a failed tick is measured by what it left behind
            await clock.run(keeper.tick())

    for n in range(ticks):
        if n % 30 == 0:
            change = Decimal(rng.choice([-1, 1])) * Decimal(rng.randint(1, 150)) / 100
            venue.deposit(Wallet.SPOT, "BTC", change)
        await step()
        plan = keeper.last_plan
        if plan is not None and plan.blocked is None and not plan.actions:
            # The keeper finished its work on a fresh snapshot: measure what it left.
            worst_over = max(worst_over, plan.short - plan.target * (1 + hedge.band))
            if plan.target > 0:
                worst_drift = max(worst_drift, abs(plan.drift) / plan.target)

    port.enabled = False
    recovered_after: int | None = None
    for n in range(recovery_ticks):
        await step()
        plan = keeper.last_plan
        if plan is not None and plan.in_band and not journal.open_intents():
            recovered_after = n + 1
            break

    orders = venue.orders
    done = {i.client_id: i for i in journal.intents() if i.kind == "order" and i.status is IntentStatus.DONE}
    mismatches = sum(
        1 for cid, intent in done.items() if cid not in orders or Decimal((intent.outcome or {}).get("filled", "-1")) != orders[cid].filled
    ) + sum(1 for cid in orders if cid not in done)
    all_ids = [i.client_id for i in journal.intents()]
    # A duplicate execution is one intent executed twice, or one need executed
    # under two intents; the first shows as a venue order no intent owns or an
    # id used twice, the second as an over-hedge beyond the band.
    duplicates = (len(all_ids) - len(set(all_ids))) + sum(1 for cid in orders if cid not in set(all_ids))
    final = keeper.last_plan
    return FaultSimResult(
        seed=seed,
        ticks=ticks,
        faults_injected=sum(port.injected.values()),
        faults_by_kind=dict(port.injected),
        partial_fills=sum(1 for o in orders.values() if o.filled < o.amount),
        venue_orders=len(orders),
        journal_orders_done=len(done),
        duplicate_executions=duplicates,
        growth_overshoots=overshoots,
        journal_mismatches=mismatches,
        open_intents_left=len(journal.open_intents()),
        worst_over_hedge=worst_over,
        worst_drift_ratio=worst_drift,
        ticks_to_recover=recovered_after,
        final_in_band=bool(final and final.in_band),
    )

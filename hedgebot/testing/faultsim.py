"""A deterministic fault simulation: hours of market time against a faulty venue.

The real keeper trades a paper venue through `FaultyPort` while the price
wanders and spot deposits and withdrawals arrive. Then faults stop and the
hedge must settle back inside its band. Everything is seeded; the figures
come from the venue's own record compared with the journal's.
"""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

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
    late_executions: int = 0  # requests answered "status unknown" (503, -1007) that the exchange carried out afterwards
    unknown_settled: int = 0  # intents whose outcome was unknown when first sent, settled afterwards


class _PaperExchange:
    """The paper venue, stepped in simulated time."""

    def __init__(self, seed: int, tick_seconds: float, partial_fill_probability: float, start: float) -> None:
        self.clock = SimClock(start=start)
        market = default_market(SYMBOL)
        assert market is not None
        self.market = market
        self.venue = PaperVenue(
            self.clock,
            [PaperMarket(market, ConstantFunding(Decimal("0.0001")))],
            spot={"BTC": Decimal("5"), "USDT": Decimal("500000")},
            futures={"USDT": Decimal("200000")},
            fill_model=FillModel(partial_fill_probability, seed=seed),
        )
        self.venue.update_price(SYMBOL, self.clock.now(), Decimal("40000"))
        self.overshoots = 0
        seen = 0

        def watch_fills(_: object) -> None:
            # A fill that grows the short must never carry it past the target: a
            # doubled order (a blind resend under a new id) would.
            nonlocal seen
            if len(self.venue.orders) == seen:
                return
            seen = len(self.venue.orders)
            last = next(reversed(self.venue.orders.values()))
            if last.symbol == SYMBOL and last.side.value == "sell":
                self._check_overshoot(self.venue._legs_of(SYMBOL).short.size, self.venue.spot.get("BTC", ZERO))

        self.venue.subscribe(watch_fills)

    def _check_overshoot(self, short: Decimal, spot: Decimal) -> None:
        if short - spot > self.market.amount_step:
            self.overshoots += 1

    async def drive(self, awaitable: Any) -> Any:
        return await self.clock.run(awaitable)

    async def advance(self, seconds: float, price: Decimal) -> None:
        await self.clock.advance(seconds)
        self.venue.update_price(SYMBOL, self.clock.now(), price)

    def deposit(self, amount: Decimal) -> None:
        self.venue.deposit(Wallet.SPOT, "BTC", amount)

    def orders(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Return every executed order: client id -> (amount, filled)."""
        return {cid: (o.amount, o.filled) for cid, o in self.venue.orders.items()}

    def inject(self, rng: random.Random) -> str | None:
        return None  # the paper venue has no wire to break; the port-level injector does it all

    async def close(self) -> None:
        return None

    def late_executions(self) -> int:
        """Return how many requests the venue carried out after answering "unknown" (none on paper: the port injects)."""
        return 0

    def executed_twice(self) -> int:
        """Return 0: the paper book keeps an id executed again under a suffix, which `orders` already shows as an order no intent owns."""
        return 0


class _EmulatorExchange(_PaperExchange):
    """The real ccxt venue talking HTTP to the Binance emulator, in stepping virtual time."""

    # Faults on the wire, beside the port-level injector: each leaves the request's fate to be looked up.
    WIRE_FAULTS = (
        ("drop_after", "/fapi/v1/order", "POST"),
        ("drop_before", "/fapi/v1/order", "POST"),
        ("drop_after", "/fapi/v1/positionMargin", "POST"),
        ("drop_after", "/sapi/v1/asset/transfer", "POST"),
        ("rate_limit", "/fapi/v3/positionRisk", "GET"),
        ("server_error", "/fapi/v3/account", "GET"),
        ("timestamp", "/fapi/v1/order", "POST"),
        ("order_unseen", "/fapi/v1/order", "GET"),
        # Binance's "execution status unknown" (503 or -1007), the order carried out seconds later.
        ("execute_later", "/fapi/v1/order", "POST"),
        ("execute_later", "/api/v3/order", "POST"),
        # Order reads (lookups and history) lag behind execution for a while.
        ("lookup_lag", "", ""),
    )
    # The longest delay of an execute-later order and of the lookup lag: below the venue's settle
    # delay (30 s), as hedgebot assumes of a real exchange (docs/exchanges.md).
    MAX_LATE_SECONDS = 8.0

    def __init__(self, seed: int, start: float) -> None:
        from hedgebot.exchange.ccxt_venue import CcxtVenue
        from hedgebot.exchange.dialects.binanceusdm import BinanceUsdm
        from hedgebot.testing.binance_emulator import Emulator
        from hedgebot.testing.clock import SteppingClock

        market = default_market(SYMBOL)
        assert market is not None
        self.market = market
        self.clock = SteppingClock(start)  # type: ignore[assignment]
        self.emulator = Emulator(now=self.clock.now)
        self.emulator.add_key("faultsim", "faultsim-secret")
        self.emulator.book.dual_side = True
        self.emulator.deposit("spot", "BTC", Decimal("5"))
        self.emulator.deposit("spot", "USDT", Decimal("500000"))
        self.emulator.deposit("futures", "USDT", Decimal("200000"))
        self.emulator.set_mark("BTCUSDT", Decimal("40000"))
        self.overshoots = 0
        self._runner: Any = None
        self._connect = lambda url: CcxtVenue.connect(
            BinanceUsdm(), self.clock, api_key="faultsim", secret="faultsim-secret", api_base_url=url,
            timeout_ms=2000, rate_limit=False,
        )

        def watch(order: dict[str, Any]) -> None:
            if order["side"] == "SELL" and order["positionSide"] == "SHORT":
                self._check_overshoot(
                    Decimal(self.emulator.position("BTCUSDT", "SHORT").amount), Decimal(self.emulator.book.spot.get("BTC", "0"))
                )

        self.emulator.order_listeners.append(watch)

    async def open(self) -> Any:
        from hedgebot.testing.binance_emulator import serve
        from hedgebot.testing.ports import free_port

        port = free_port()
        self._runner = await serve(self.emulator, "127.0.0.1", port)
        self.venue = self._connect(f"http://127.0.0.1:{port}")
        return self.venue

    async def drive(self, awaitable: Any) -> Any:
        return await awaitable

    async def advance(self, seconds: float, price: Decimal) -> None:
        self.clock.advance(seconds)  # type: ignore[attr-defined]
        self.emulator.set_mark("BTCUSDT", price)

    def deposit(self, amount: Decimal) -> None:
        held = Decimal(self.emulator.book.spot.get("BTC", "0"))
        self.emulator.deposit("spot", "BTC", max(amount, -held))

    def orders(self) -> dict[str, tuple[Decimal, Decimal]]:
        return {
            cid: (Decimal(o["origQty"]), Decimal(o["executedQty"])) for cid, o in self.emulator.futures_orders().items()
        } | {
            key.split("|", 2)[2]: (Decimal(o["origQty"]), Decimal(o["executedQty"]))
            for key, o in self.emulator.book.orders.items() if key.startswith("spot|")
        }

    def inject(self, rng: random.Random) -> str | None:
        from hedgebot.testing.binance_faults import Fault

        if rng.random() >= 0.15:
            return None
        kind, path, method = rng.choice(self.WIRE_FAULTS)
        if kind == "lookup_lag":
            # Every order executed from now on stays invisible to lookups and history this long.
            self.emulator.lookup_lag_seconds = rng.choice([0.0, 2.0, 5.0, self.MAX_LATE_SECONDS])
        elif kind == "execute_later":
            delay = round(rng.uniform(0.5, self.MAX_LATE_SECONDS), 1)
            self.emulator.inject(Fault(kind, path, method, delay=delay, retry_after=rng.choice([0, 1])))
        else:
            self.emulator.inject(Fault(kind, path, method))
        return f"wire_{kind}"

    def late_executions(self) -> int:
        """Return how many requests the emulator carried out after answering 503 or -1007."""
        return self.emulator.late_executions

    def executed_twice(self) -> int:
        """Return how many times an order was carried out again under an id already executed."""
        return len(self.emulator.executions) - len(set(self.emulator.executions))

    async def close(self) -> None:
        await self.venue.close()
        if self._runner is not None:
            await self._runner.cleanup()


async def run_fault_simulation(
    seed: int,
    hours: float = 6.0,
    tick_seconds: float = 10.0,
    rates: FaultRates | None = None,
    partial_fill_probability: float = 0.15,
    recovery_ticks: int = 30,
    exchange: str = "paper",
) -> FaultSimResult:
    """Run the simulation with `seed` and return its figures.

    `exchange` is "paper" (the paper venue in simulated time) or "emulator"
    (the real ccxt venue over HTTP to the strict Binance emulator, which adds
    faults on the wire: dropped answers, 429, 503, -1021, lagging order reads,
    orders answered 503 or -1007 and carried out seconds later, and order reads
    and history that lag behind execution for up to 8 s).
    """
    rng = random.Random(seed)
    start = 1_600_000_000.0
    if exchange == "paper":
        sim: _PaperExchange = _PaperExchange(seed, tick_seconds, partial_fill_probability, start)
        target: Any = sim.venue
    elif exchange == "emulator":
        emulated = _EmulatorExchange(seed, start)
        target = await emulated.open()
        sim = emulated
    else:
        raise ValueError(f"exchange must be 'paper' or 'emulator', not {exchange!r}")
    clock: Any = sim.clock
    feed = SyntheticFeed(Decimal("40000"), tick_seconds, volatility=1.5, jump_probability=0.001, jump_size=0.05, seed=seed)
    port = FaultyPort(target, seed=seed, rates=rates)
    wire: Counter[str] = Counter()
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
    try:
        await sim.drive(keeper.prepare())
        worst_over = ZERO
        worst_drift = ZERO
        ticks = int(hours * 3600 / tick_seconds)
        faults_on = True

        async def step() -> None:
            candle = await feed.next()
            await sim.advance(tick_seconds, candle.close)
            if faults_on:
                injected = sim.inject(rng)
                if injected:
                    wire[injected] += 1
            with contextlib.suppress(ExchangeError):  # a failed tick is measured by what it left behind
                await sim.drive(keeper.tick())

        for n in range(ticks):
            if n % 30 == 0:
                change = Decimal(rng.choice([-1, 1])) * Decimal(rng.randint(1, 150)) / 100
                sim.deposit(change)
            await step()
            plan = keeper.last_plan
            if plan is not None and plan.blocked is None and not plan.actions:
                # The keeper finished its work on a fresh snapshot: measure what it left.
                worst_over = max(worst_over, plan.short - plan.target * (1 + hedge.band))
                if plan.target > 0:
                    worst_drift = max(worst_drift, abs(plan.drift) / plan.target)

        port.enabled = False
        faults_on = False
        if isinstance(sim, _EmulatorExchange):
            sim.emulator.faults.clear()
        recovered_after: int | None = None
        for n in range(recovery_ticks):
            await step()
            plan = keeper.last_plan
            if plan is not None and plan.in_band and not journal.open_intents():
                recovered_after = n + 1
                break
        orders = sim.orders()
    finally:
        await sim.close()

    done = {i.client_id: i for i in journal.intents() if i.kind == "order" and i.status is IntentStatus.DONE}
    mismatches = sum(
        1 for cid, intent in done.items() if cid not in orders or Decimal((intent.outcome or {}).get("filled", "-1")) != orders[cid][1]
    ) + sum(1 for cid in orders if cid not in done)
    all_ids = [i.client_id for i in journal.intents()]
    # A duplicate execution is one intent executed twice, or one need executed
    # under two intents; the first shows as a venue order no intent owns or an
    # id used twice, the second as an over-hedge beyond the band.
    duplicates = (
        (len(all_ids) - len(set(all_ids))) + sum(1 for cid in orders if cid not in set(all_ids)) + sim.executed_twice()
    )
    final = keeper.last_plan
    by_kind = dict(port.injected) | dict(wire)
    return FaultSimResult(
        seed=seed,
        ticks=ticks,
        faults_injected=sum(by_kind.values()),
        faults_by_kind=by_kind,
        partial_fills=sum(1 for amount, filled in orders.values() if filled < amount),
        venue_orders=len(orders),
        journal_orders_done=len(done),
        duplicate_executions=duplicates,
        growth_overshoots=sim.overshoots,
        journal_mismatches=mismatches,
        open_intents_left=len(journal.open_intents()),
        worst_over_hedge=worst_over,
        worst_drift_ratio=worst_drift,
        ticks_to_recover=recovered_after,
        final_in_band=bool(final and final.in_band),
        late_executions=sim.late_executions(),
        unknown_settled=len(journal.events(kind="intent_settled")),
    )

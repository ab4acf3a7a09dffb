"""How fast a keeper reacts: from the news reaching it to the corrective order being sent.

Run: .venv/bin/python bench/reaction.py [--trials N] [--quick]

One process, a real event loop and the real clock, with 1, 10, 100 and 1,000 paper
hedges (each on its own paper account, its keeper running with a 1-hour
safety tick). Meanwhile every account's price wiggles every 50 ms inside its
plan's range, so the loop is busy with quiet prices as it would be live. Two
kinds of news, delivered to a random hedge at a time:
- a spot-balance change (0.5 BTC deposited, `notify_balance`): measured to
  the hedge order (`place_order`) reaching the venue;
- a price move past the margin guard's trigger (`notify_price`): measured to
  the margin top-up (`adjust_margin`, or the transfer that funds it) reaching
  the venue.
After each trial the account is put back as it was. Prints median and p99
per case and ends with a JSON object.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import time
from decimal import Decimal
from typing import Any

from _bench import emit, goal, machine, print_machine
from _bench import parser as bench_parser
from hedgebot.clock import RealClock
from hedgebot.config import HedgeConfig
from hedgebot.domain.model import Wallet
from hedgebot.engine.keeper import Keeper
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.funding import ConstantFunding
from hedgebot.exchange.paper import PaperMarket, PaperVenue
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import Journal

SYMBOL = "BTC/USDT:USDT"
PRICE = Decimal("50000")
GOAL_P99_MS = 5.0


class Hedge:
    """One paper account, its keeper, and a stopwatch on the venue calls that correct the hedge."""

    def __init__(self, index: int, clock: RealClock, journal: Journal, events: EventLog) -> None:
        market = default_market(SYMBOL)
        assert market is not None
        self.venue = PaperVenue(
            clock, [PaperMarket(market, ConstantFunding(Decimal("0.0001")))],
            spot={"BTC": Decimal(2), "USDT": Decimal(500_000)}, futures={"USDT": Decimal(100_000)},
        )
        self.venue.update_price(SYMBOL, clock.now(), PRICE)
        config = HedgeConfig(
            name=f"h{index}", asset="BTC", symbol=SYMBOL, ratio=Decimal(1), leverage=3, max_order=Decimal(5),
            tick_seconds=3600, margin_guard={"enabled": True},
            # Hundreds of scripted trials an hour would trip the order-rate breaker, which then holds the very
            # orders being timed: the bench measures reaction, so its limits sit far above what it sends.
            breakers={"max_orders": 1_000_000, "max_rejections": 1_000_000},
        )
        self.keeper = Keeper(f"acct{index}", config, self.venue, clock, journal, events, seed=index)
        self.sent: asyncio.Future[float] | None = None
        self.under_test = False
        for name in ("place_order", "adjust_margin", "transfer"):
            self._watch(name)

    def _watch(self, name: str) -> None:
        inner = getattr(self.venue, name)

        async def watched(*args: Any, **kwargs: Any) -> Any:
            if self.sent is not None and not self.sent.done():
                self.sent.set_result(time.perf_counter())
            return await inner(*args, **kwargs)

        setattr(self.venue, name, watched)


async def settle(keepers: list[Hedge]) -> None:
    """Wait until no keeper has anything to do."""
    for _ in range(1000):
        await asyncio.sleep(0.002)
        if not any(h.keeper.wake.is_set() for h in keepers):
            return


async def wiggle(hedges: list[Hedge], clock: RealClock, rng: random.Random) -> None:
    """Move every account's price a little every 50 ms, inside its plan's range (a quiet market)."""
    while True:
        for h in hedges:
            if h.under_test:
                continue
            price = PRICE * (1 + Decimal(rng.randint(-20, 20)) / 10000)
            h.venue.update_price(SYMBOL, clock.now(), price)
            h.keeper.notify_price(price)
            # A stream hands the loop one message at a time, and other work runs between them;
            # 1,000 updates in one synchronous batch would be a bench artifact, not a market.
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)


async def measure(count: int, trials: int, seed: int) -> dict[str, dict[str, float]]:
    clock = RealClock()
    journal = Journal(":memory:", clock)
    events = EventLog(journal, NullLogger())
    hedges = [Hedge(i, clock, journal, events) for i in range(count)]
    for h in hedges:
        await h.keeper.prepare()
    tasks = [asyncio.ensure_future(h.keeper.run()) for h in hedges]
    await settle(hedges)
    rng = random.Random(seed)
    background = asyncio.ensure_future(wiggle(hedges, clock, rng))
    await asyncio.sleep(0.1)
    spot_ms: list[float] = []
    trigger_ms: list[float] = []
    loop = asyncio.get_running_loop()
    for trial in range(trials):
        h = rng.choice(hedges)
        h.under_test = True
        # A spot change: 0.5 BTC arrives; the short must grow.
        h.sent = loop.create_future()
        h.venue.deposit(Wallet.SPOT, "BTC", Decimal("0.5"))
        started = time.perf_counter()
        h.keeper.notify_balance()
        spot_ms.append((await asyncio.wait_for(h.sent, 5) - started) * 1000)
        await settle(hedges)
        h.venue.deposit(Wallet.SPOT, "BTC", Decimal("-0.5"))
        h.keeper.notify_balance()
        await settle(hedges)
        # A price past the guard's trigger: margin must be topped up.
        plan = h.keeper.last_plan
        assert plan is not None and plan.valid_high is not None
        margin_before = {k: (v.size, v.entry, v.margin) for k, v in h.venue.legs.items()}
        cash_before = dict(h.venue.cash)
        spot_before = dict(h.venue.spot)
        price = (plan.valid_high * Decimal("1.01")).quantize(Decimal("0.01"))
        h.sent = loop.create_future()
        h.venue.update_price(SYMBOL, clock.now(), price)
        started = time.perf_counter()
        h.keeper.notify_price(price)
        trigger_ms.append((await asyncio.wait_for(h.sent, 5) - started) * 1000)
        await settle(hedges)
        # Put the account back as it was before the move.
        for key, (size, entry, margin) in margin_before.items():
            leg = h.venue.legs[key]
            leg.size, leg.entry, leg.margin = size, entry, margin
        h.venue.cash.clear()
        h.venue.cash.update(cash_before)
        h.venue.spot.clear()
        h.venue.spot.update(spot_before)
        h.venue.update_price(SYMBOL, clock.now(), PRICE)
        h.keeper.notify_balance()
        await settle(hedges)
        h.under_test = False
    background.cancel()
    for h in hedges:
        h.keeper.stop()
    await asyncio.gather(*tasks, background, return_exceptions=True)
    journal.close()

    def figures(samples: list[float]) -> dict[str, float]:
        ordered = sorted(samples)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        return {"p50_ms": round(statistics.median(ordered), 3), "p99_ms": round(p99, 3), "samples": len(ordered)}

    return {"spot_change": figures(spot_ms), "price_past_trigger": figures(trigger_ms)}


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--hedges", type=int, nargs="*", default=[1, 10, 100, 1000])
    args = parser.parse_args()
    counts, trials = ([1, 10], 3) if args.quick else (args.hedges, args.trials)
    print_machine()
    out: dict[str, Any] = {"machine": machine()}
    goals = []
    for count in counts:
        result = asyncio.run(measure(count, trials, seed=count))
        out[str(count)] = result
        for case, f in result.items():
            print(f"{count:>4} hedges, {case:<19} p50 {f['p50_ms']:7.3f} ms   p99 {f['p99_ms']:7.3f} ms   ({f['samples']} trials)", flush=True)
        worst_here = max(f["p99_ms"] for f in result.values())
        goals.append(goal(f"reaction p99 at {count} hedges", worst_here, GOAL_P99_MS, unit="ms"))
    out["worst_p99_ms"] = max(g["value"] for g in goals)
    out["goal_met"] = all(g["met"] for g in goals)
    emit(out, goals)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The daemon's wiring of prices and account updates to the keepers: paper price feeds, scripts, funding polls,
live streams and the venue's own events (liquidation, ADL, funding).

Owns stepping a paper venue's feeds (and replayed time with them), a paper account's scripted deposits, polling
live funding rates, attaching a live venue's streams and waking the keepers each update speaks for. It may not
trade, nor decide anything a keeper decides: it notifies the keepers and emits events.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Sequence
from typing import Any

from hedgebot.clock import Clock
from hedgebot.domain.model import Severity, Wallet
from hedgebot.engine.account_runtime import AccountRuntime
from hedgebot.engine.keeper import Keeper, Liquidation
from hedgebot.engine.streams import StreamState, attach_streams, route_order_updates, stream_metrics
from hedgebot.exchange.factory import FeedRun
from hedgebot.exchange.funding import LiveFunding
from hedgebot.exchange.paper import PaperVenue
from hedgebot.exchange.port import ExchangeError
from hedgebot.ops.events import EventLog
from hedgebot.ops.health import Operations
from hedgebot.replay_clock import ReplayClock, apply_candle
from hedgebot.store.journal import JournalStore


def _severity_of(kind: str) -> Severity:
    """Return how loudly a venue's own event is announced: a liquidation is critical; a forced or outside move, a warning."""
    if kind == "liquidation":
        return Severity.CRITICAL
    if kind in ("adl", "settlement", "account_update", "delivery"):  # delivery: a leg the roll left on a contract
        return Severity.WARNING
    return Severity.INFO


class FeedsAndStreams:
    """Carry prices and account updates to the keepers (a part of Daemon)."""

    # The daemon's state this part reads or sets (Daemon.__init__ makes it):
    accounts: list[AccountRuntime]
    clock: Clock
    events: EventLog | None
    journal: JournalStore | None
    log: Any
    ops: Operations

    def _follow_replay(self, run: FeedRun, candle_time: float) -> None:
        """Move replayed time to the candle about to be applied."""
        if run.replayed and isinstance(self.clock, ReplayClock):
            self.clock.move_to(candle_time)

    def _mark_time(self, run: FeedRun, candle_time: float) -> float:
        """Stamp a mark with the exchange's time for live prices (so a stale one is seen), else with ours."""
        if run.exchange_time and candle_time == candle_time:  # not NaN
            return candle_time
        return self.clock.now()

    def _feed_log(self, runtime: AccountRuntime, symbol: str) -> Any:
        """Return the log bound to the account and the hedges a price feed serves."""
        hedges = ",".join(k.hedge.name for k in runtime.keepers if k.hedge.symbol == symbol) or "-"
        return self.log.bind(account=runtime.config.name, hedge=hedges)

    async def _drive(self, runtime: AccountRuntime, run: FeedRun) -> None:
        assert runtime.setup is not None and runtime.setup.simulated is not None
        await self._step_feed(runtime.setup.simulated, run, self._feed_log(runtime, run.symbol), runtime.keepers)

    async def _step_feed(self, venue: PaperVenue, run: FeedRun, log: Any, keepers: Sequence[Keeper]) -> None:
        """Apply a price feed's candles to a paper venue, one every step, waking the keepers that trade its symbol."""
        failures = 0
        while True:
            try:
                candle = await run.feed.next()
            except ExchangeError as exc:
                # Back off on a failing source; the keeper blocks on the ageing mark meanwhile.
                failures += 1
                log.warning("price_feed_failed", symbol=run.symbol, error=str(exc), failures=failures)
                await self.clock.sleep(min(run.step_seconds * 2 ** min(failures, 6), 300.0))
                continue
            failures = 0
            if candle is None:
                log.warning("price_feed_ended", symbol=run.symbol)
                return
            self._follow_replay(run, candle.time)
            try:
                apply_candle(venue, run.symbol, candle, self._mark_time(run, candle.time))
            except ExchangeError as exc:
                log.warning("price_rejected", symbol=run.symbol, error=str(exc))
                await self.clock.sleep(run.step_seconds)
                continue
            for keeper in keepers:
                if keeper.hedge.symbol == run.symbol:
                    keeper.notify_price(candle.close)
                else:
                    keeper.notify_holding_price(run.symbol, candle.close)  # a beta hedge's holding is priced here
            await self.clock.sleep(run.step_seconds)

    async def _script(self, runtime: AccountRuntime, number: int, script: Any) -> None:
        """Apply a script's deposits: the first `start_after_seconds` after start, then every `every_seconds`.

        How far the cycle has gone is kept in the paper account's saved state, so a
        restart carries on with the next amount instead of starting the cycle again.
        """
        assert runtime.setup is not None and runtime.setup.simulated is not None and self.events is not None
        venue = runtime.setup.simulated
        key = f"{number}:{script.asset}"
        await self.clock.sleep(script.start_after_seconds)
        while True:
            index = venue.script_positions.get(key, 0)
            amount = script.amounts[index % len(script.amounts)]
            venue.script_positions[key] = index + 1  # saved with the deposit below, in one write
            moved = venue.deposit(Wallet.SPOT, script.asset, amount)
            hedge = next((k.hedge.name for k in runtime.keepers if k.market and k.market.base == script.asset), "-")
            self.events.emit(runtime.config.name, hedge, "paper_spot_change", asset=script.asset, amount=moved)
            for keeper in runtime.keepers:
                keeper.notify_balance()
            await self.clock.sleep(script.every_seconds)

    async def _poll_funding(self, funding: LiveFunding, every: float) -> None:
        while True:
            try:
                await funding.refresh()
            except ExchangeError as exc:
                self.log.warning("funding_rate_failed", symbol=funding.symbol, error=str(exc), last_rate=funding.rate)
            await self.clock.sleep(every)

    def _on_venue_event(self, runtime: AccountRuntime, event: Any) -> None:
        if event is None:
            return  # a plain price move or our own fill: the feed driver wakes keepers on moves
        assert self.events is not None
        keeper_of = next((k for k in runtime.keepers if k.trades(event.symbol)), None)
        hedge = keeper_of.hedge.name if keeper_of else "-"
        liquidated = event.kind == "liquidation"
        figures: dict[str, Any] = {"margin_lost": event.margin_lost} if liquidated else {}
        if event.rate is not None:
            figures["rate"] = event.rate
        self.events.emit(
            runtime.config.name, hedge, event.kind, _severity_of(event.kind),
            at=event.at, symbol=event.symbol, side=event.side, amount=event.amount, price=event.price,
            **figures, detail=event.detail,
        )
        if liquidated and keeper_of is not None and event.side == keeper_of.policy.side.value:
            cause = f"the exchange closed it ({event.detail})" if event.detail else "the exchange reported it"
            keeper_of.notify_liquidation(Liquidation(event.at, event.price, event.amount, event.margin_lost, cause))
        elif event.kind == "adl" and keeper_of is not None and event.side == keeper_of.policy.side.value:
            keeper_of.notify_deleveraging()
        for keeper in runtime.keepers:
            keeper.notify_balance()

    def _attach_streams(self, runtime: AccountRuntime) -> None:
        """Stream a live venue's updates: they wake the keepers at once; REST polling stands in while a stream is down."""
        account = runtime.config
        if account.mode != "live" or not account.streams:
            return
        venue = runtime.venue
        subscribe = getattr(venue, "subscribe", None)
        if subscribe is not None:
            subscribe(functools.partial(self._on_venue_event, runtime))  # funding, liquidation, ADL from the user stream
        stale_after = min(h.staleness_seconds for h in account.hedges)
        symbols = list(dict.fromkeys(h.symbol for h in account.hedges))
        attached = attach_streams(
            venue, symbols, self.clock, stale_after, functools.partial(self._on_stream_update, runtime),
            seed=zlib.crc32(account.name.encode()),  # each account's backoff and reconciliation drawn apart from the others'
            reconcile_seconds=account.stream_reconcile_seconds,
        )
        if attached is None:
            return
        runtime.venue, runtime.streams = attached
        # While an action's outcome is open the cached figures are not served: every look reads REST.
        attached[0].in_doubt = lambda: self.journal is not None and bool(self.journal.open_intents(account.name))
        self.ops.extra_metrics.append(stream_metrics(account.name, runtime.streams, attached[0].cache))

    def _on_stream_update(self, runtime: AccountRuntime, name: str, update: Any) -> None:
        """Wake the keepers a stream speaks for: a mark only when it moved enough, anything else at once."""
        assert runtime.streams is not None
        if update is None:
            health = next((h for h in runtime.streams.health() if h.name == name), None)
            if health is not None and health.state is StreamState.DOWN:
                self.log.warning("stream_down", account=runtime.config.name, stream=name, error=health.error,
                                 reconnects=health.reconnects, note="polling REST until it is back")
        quote = next((s.quote for s in runtime.streams.specs() if s.name == name and s.quote is not None), None)
        route_order_updates(runtime.venue, runtime.keepers, name, update)  # an ended order settles its intent
        for keeper in runtime.keepers:
            if name.endswith(keeper.hedge.symbol) or " " not in name:
                if quote is not None and update is not None:
                    keeper.notify_price(quote(update).price)
                else:
                    keeper.wake.set()  # an account update, or a stream that failed or went quiet: read (poll) now

    def stream_status(self) -> dict[str, Any]:
        """Return every account's stream health and whether REST polling stands in for a stream."""
        out: dict[str, Any] = {}
        for runtime in self.accounts:
            if runtime.streams is not None:
                out[runtime.config.name] = {
                    "polling": runtime.streams.polling,
                    "streams": [h.to_json() for h in runtime.streams.health()],
                }
        return out

"""Many keepers: accounts, locks, start-up checks, recovery, and a clean stop.

Start-up, in order: take each account's lock (a second daemon is refused),
open the journal, build each venue (paper state restored from disk), check
the position mode (hedge mode, or set it on a flat account, else refuse),
put each contract in the configured margin mode and leverage, settle every
journaled action whose outcome is unknown, and only then start the keepers.

Stop (SIGINT/SIGTERM): keepers finish the action in flight and start no new
one; positions are left exactly as they are. Only `unwind` closes a hedge.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import structlog

from hedgebot.clock import Clock
from hedgebot.config import AccountConfig, LiveFeedConfig, PaperConfig, ReplayFeedConfig, Settings, SyntheticFeedConfig
from hedgebot.domain.model import PositionMode, Severity, Wallet
from hedgebot.engine.keeper import Keeper, Liquidation, StartupRefused
from hedgebot.exchange.feeds import LiveFeed, PriceFeed, ReplayFeed, SyntheticFeed, read_candles
from hedgebot.exchange.funding import ConstantFunding, FundingSource, LiveFunding, ReplayFunding
from hedgebot.exchange.paper import FillModel, PaperMarket, PaperVenue
from hedgebot.exchange.port import ExchangeError, ExchangePort, ModeError
from hedgebot.ops.events import EventLog
from hedgebot.ops.figures import iso_utc
from hedgebot.store.journal import Journal

STATUS_FILE = "status.json"


class AccountLocked(StartupRefused):
    """Another daemon holds this account."""


class AccountLock:
    """An exclusive lock on one account for the daemon's life (flock: a dead holder frees it)."""

    def __init__(self, state_dir: Path, account: str) -> None:
        self.path = state_dir / f"{account}.lock"
        self._handle: TextIO | None = None

    def acquire(self) -> None:
        """Take the lock, or raise AccountLocked naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise AccountLocked(
                f"account {self.path.stem!r} is already run by a daemon (pid {holder}); "
                "two daemons on one account would trade against each other"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Let the lock go."""
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def held_elsewhere(self) -> bool:
        """Tell whether a live process holds the lock now (without taking it)."""
        if not self.path.exists():
            return False
        with self.path.open("a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False


def _funding_source(config: Any, exchange_id: str, symbol: str) -> FundingSource:
    if config.live:
        return LiveFunding(exchange_id, symbol, config.interval_hours)
    if config.file is not None:
        return ReplayFunding.from_csv(config.file)
    return ConstantFunding(config.rate, config.interval_hours)


def build_paper_venue(account: AccountConfig, paper: PaperConfig, clock: Clock, state_dir: Path | None) -> PaperVenue:
    """Create an account's paper venue, restored from its saved state when there is one."""
    # A new paper account starts as Binance's does (cross, 20x); the keepers
    # then set the margin mode and leverage the config asks for.
    markets = [PaperMarket(m.market(), _funding_source(m.funding, account.exchange, m.symbol)) for m in paper.markets]
    venue = PaperVenue(
        clock,
        markets,
        spot=dict(paper.spot),
        futures=dict(paper.futures),
        spot_fee=paper.spot_fee,
        slippage=paper.slippage,
        position_mode=paper.position_mode,
        state_path=state_dir / f"paper-{account.name}.json" if state_dir else None,
        fill_model=FillModel(paper.partial_fill_probability, seed=1),
    )
    venue.load()
    return venue


def build_feed(config: Any, venue: PaperVenue, symbol: str, clock: Clock) -> tuple[PriceFeed, float]:
    """Return a paper market's price feed and how often it is stepped."""
    match config:
        case SyntheticFeedConfig():
            saved = venue.marks.get(symbol)
            start = saved[0] if saved else config.start_price
            feed = SyntheticFeed(
                start, config.step_seconds, volatility=config.volatility, drift=config.drift,
                jump_probability=config.jump_probability, jump_size=config.jump_size,
                seed=config.seed, start_time=clock.now(),
            )
            return feed, config.step_seconds
        case ReplayFeedConfig():
            return ReplayFeed(read_candles(config.path), loop=config.loop), config.step_seconds
        case LiveFeedConfig():
            return LiveFeed(config.exchange, symbol), config.poll_seconds
    raise AssertionError(f"unknown feed {config!r}")


@dataclass
class AccountRuntime:
    """Everything the daemon runs for one account."""

    config: AccountConfig
    venue: ExchangePort
    keepers: list[Keeper]
    lock: AccountLock
    feeds: list[tuple[str, PriceFeed, float]] = field(default_factory=list)


class Daemon:
    """Runs every configured hedge until asked to stop."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        *,
        allow_live: bool = False,
        venue_factory: Callable[[AccountConfig], ExchangePort] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.allow_live = allow_live
        self.venue_factory = venue_factory
        self.state_dir = settings.daemon.state_dir
        self.log = structlog.get_logger("hedgebot.daemon")
        self.journal: Journal | None = None
        self.events: EventLog | None = None
        self.accounts: list[AccountRuntime] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._keeper_tasks: list[asyncio.Task[None]] = []

    @property
    def keepers(self) -> list[Keeper]:
        """Return every keeper of every account."""
        return [k for a in self.accounts for k in a.keepers]

    # ---- start-up -----------------------------------------------------------------

    async def start(self) -> None:
        """Run the start-up sequence and start every task; raise StartupRefused when unsafe."""
        live = [a.name for a in self.settings.accounts if a.mode == "live"]
        if live and not self.allow_live:
            raise StartupRefused(
                f"account(s) {', '.join(live)} are live: pass --live to trade real money (nothing was started)"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            for account in self.settings.accounts:
                lock = AccountLock(self.state_dir, account.name)
                lock.acquire()
                self.accounts.append(AccountRuntime(account, None, [], lock))  # type: ignore[arg-type]
            self.journal = Journal(self.settings.journal.path, self.clock)
            self.events = EventLog(self.journal, self.log)
            for runtime in self.accounts:
                try:
                    await self._start_account(runtime)
                except ExchangeError as exc:
                    raise StartupRefused(f"account {runtime.config.name!r}: the venue did not answer at start-up: {exc}") from exc
        except BaseException:
            await self._release()
            raise
        for runtime in self.accounts:
            for symbol, feed, step in runtime.feeds:
                self._tasks.append(asyncio.create_task(self._drive(runtime, symbol, feed, step)))
            if runtime.config.paper is not None:
                for script in runtime.config.paper.script:
                    self._tasks.append(asyncio.create_task(self._script(runtime, script)))
                for market in runtime.config.paper.markets:
                    funding = runtime.venue.markets[market.symbol].funding  # type: ignore[attr-defined]
                    if isinstance(funding, LiveFunding):
                        self._tasks.append(asyncio.create_task(self._poll_funding(funding, market.funding.poll_seconds)))
            for keeper in runtime.keepers:
                self._keeper_tasks.append(asyncio.create_task(keeper.run()))
        self._tasks.append(asyncio.create_task(self._write_status_forever()))
        for task in [*self._tasks, *self._keeper_tasks]:
            task.add_done_callback(self._task_ended)
        self.log.info("daemon_started", accounts=[a.config.name for a in self.accounts], hedges=len(self.keepers))

    def _make_venue(self, account: AccountConfig) -> ExchangePort:
        if self.venue_factory is not None:
            return self.venue_factory(account)
        if account.mode == "paper":
            assert account.paper is not None
            return build_paper_venue(account, account.paper, self.clock, self.state_dir)
        raise StartupRefused(
            f"account {account.name!r}: live trading through ccxt is not built yet; "
            "use mode = \"paper\" (a live price feed is available to paper accounts)"
        )

    async def _start_account(self, runtime: AccountRuntime) -> None:
        account = runtime.config
        assert self.journal is not None and self.events is not None
        venue = self._make_venue(account)
        runtime.venue = venue
        if isinstance(venue, PaperVenue) and account.paper is not None:
            for market in account.paper.markets:
                feed, step = build_feed(market.feed, venue, market.symbol, self.clock)
                runtime.feeds.append((market.symbol, feed, step))
                if market.symbol not in venue.marks:
                    # Prime the mark so the first tick has a price; a feed that
                    # fails here leaves the keeper blocked until prices arrive.
                    try:
                        candle = await feed.next()
                        if candle is not None:
                            venue.update_price(market.symbol, self.clock.now(), candle.close)
                    except ExchangeError as exc:
                        self.log.warning("price_feed_failed", symbol=market.symbol, error=str(exc))
            venue.subscribe(functools.partial(self._on_venue_event, runtime))
        await self._ensure_hedge_mode(runtime)
        for index, hedge in enumerate(account.hedges):
            keeper = Keeper(
                account.name, hedge, venue, self.clock, self.journal, self.events, seed=index,
                alert_repeat_seconds=self.settings.alerts.repeat_seconds,
            )
            await keeper.prepare()
            runtime.keepers.append(keeper)
        for keeper in runtime.keepers:
            # Recovery before trading: settle what the journal left open.
            if not await keeper.settle_open_intents():
                raise StartupRefused(
                    f"{account.name}/{keeper.hedge.name}: cannot settle earlier actions with unknown outcomes; "
                    "the venue did not answer the lookups"
                )
        await self._report_surprises(runtime)

    async def _ensure_hedge_mode(self, runtime: AccountRuntime) -> None:
        venue = runtime.venue
        mode = await venue.fetch_position_mode()
        if mode is PositionMode.HEDGE:
            return
        try:
            await venue.set_position_mode(PositionMode.HEDGE)
        except ModeError as exc:
            raise StartupRefused(
                f"account {runtime.config.name!r} is in {mode.value} position mode and cannot be switched to "
                f"hedge mode now ({exc}). hedgebot keeps its short as a separate SHORT leg, which needs hedge "
                "mode: close the positions or switch the mode on the exchange, then start again"
            ) from exc
        self.log.info("position_mode_set", account=runtime.config.name, mode="hedge")

    async def _report_surprises(self, runtime: AccountRuntime) -> None:
        """Compare each short with what the journal's fills say it should be."""
        assert self.journal is not None and self.events is not None
        for keeper in runtime.keepers:
            expected = Decimal(0)
            for intent in self.journal.intents(runtime.config.name, keeper.hedge.name):
                outcome = intent.outcome or {}
                if intent.kind != "order" or "filled" not in outcome or outcome.get("position_side") != "short":
                    continue
                filled = Decimal(outcome["filled"])
                expected += filled if outcome.get("side") == "sell" else -filled
            legs = await runtime.venue.fetch_legs(keeper.hedge.symbol)
            if legs.short.size != expected:
                self.events.emit(
                    runtime.config.name, keeper.hedge.name, "position_differs_from_journal", Severity.WARNING,
                    venue_short=legs.short.size, journal_short=expected,
                    note="changes hedgebot did not make (manual trades, liquidation, another tool)",
                )

    # ---- running ------------------------------------------------------------------

    def _on_venue_event(self, runtime: AccountRuntime, event: Any) -> None:
        if event is None:
            return  # a plain price move or our own fill: the feed driver wakes keepers on moves
        assert self.events is not None
        keeper_of = next((k for k in runtime.keepers if k.hedge.symbol == event.symbol), None)
        hedge = keeper_of.hedge.name if keeper_of else "-"
        liquidated = event.kind == "liquidation"
        figures: dict[str, Any] = {"margin_lost": event.margin_lost} if liquidated else {}
        if event.rate is not None:
            figures["rate"] = event.rate
        self.events.emit(
            runtime.config.name, hedge, event.kind, Severity.CRITICAL if liquidated else Severity.INFO,
            at=event.at, symbol=event.symbol, side=event.side, amount=event.amount, price=event.price,
            **figures, detail=event.detail,
        )
        if liquidated and keeper_of is not None and event.side == "short":
            keeper_of.notify_liquidation(Liquidation(event.at, event.price, event.amount, event.margin_lost))
        for keeper in runtime.keepers:
            keeper.notify_balance()

    async def _drive(self, runtime: AccountRuntime, symbol: str, feed: PriceFeed, step: float) -> None:
        venue = runtime.venue
        assert isinstance(venue, PaperVenue)
        while True:
            try:
                candle = await feed.next()
            except ExchangeError as exc:
                self.log.warning("price_feed_failed", symbol=symbol, error=str(exc))
                await self.clock.sleep(step)
                continue
            if candle is None:
                self.log.warning("price_feed_ended", symbol=symbol)
                return
            try:
                venue.update_price(symbol, self.clock.now(), candle.close, open_=candle.open, high=candle.high, low=candle.low)
            except ExchangeError as exc:
                self.log.warning("price_rejected", symbol=symbol, error=str(exc))
                await self.clock.sleep(step)
                continue
            for keeper in runtime.keepers:
                if keeper.hedge.symbol == symbol:
                    keeper.notify_price(candle.close)
            await self.clock.sleep(step)

    async def _script(self, runtime: AccountRuntime, script: Any) -> None:
        venue = runtime.venue
        assert isinstance(venue, PaperVenue) and self.events is not None
        await self.clock.sleep(script.start_after_seconds)
        index = 0
        while True:
            await self.clock.sleep(script.every_seconds)
            amount = script.amounts[index % len(script.amounts)]
            index += 1
            moved = venue.deposit(Wallet.SPOT, script.asset, amount)
            hedge = next((k.hedge.name for k in runtime.keepers if k.market and k.market.base == script.asset), "-")
            self.events.emit(runtime.config.name, hedge, "paper_spot_change", asset=script.asset, amount=moved)
            for keeper in runtime.keepers:
                keeper.notify_balance()

    async def _poll_funding(self, funding: LiveFunding, every: float) -> None:
        while True:
            try:
                await funding.refresh()
            except ExchangeError as exc:
                self.log.warning("funding_rate_failed", symbol=funding.symbol, error=str(exc), last_rate=funding.rate)
            await self.clock.sleep(every)

    async def _write_status_forever(self) -> None:
        while True:
            await self.clock.sleep(self.settings.daemon.status_interval_seconds)
            self.write_status()

    def write_status(self) -> None:
        """Write every hedge's status to the state directory (atomically)."""
        data = {
            "pid": os.getpid(),
            "updated_at": iso_utc(self.clock.now()),
            "hedges": [k.status.to_json() for k in self.keepers],
        }
        path = self.state_dir / STATUS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, path)

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        self.log.critical("daemon_task_failed", task=task.get_name(), error=repr(task.exception()))

    # ---- stop ---------------------------------------------------------------------

    async def stop(self) -> None:
        """Let each keeper finish its action in flight, then stop everything; positions stay as they are."""
        for keeper in self.keepers:
            keeper.stop()
        if self._keeper_tasks:
            await asyncio.gather(*self._keeper_tasks, return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for runtime in self.accounts:
            for _, feed, _ in runtime.feeds:
                if isinstance(feed, LiveFeed):
                    await feed.close()
            if isinstance(runtime.venue, PaperVenue):
                for pm in runtime.venue.markets.values():
                    if isinstance(pm.funding, LiveFunding):
                        await pm.funding.close()
                runtime.venue.save()
        if self.accounts:
            self.write_status()
        self.log.info("daemon_stopped", note="positions left as they were")
        await self._release()

    async def _release(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = None
        for runtime in self.accounts:
            runtime.lock.release()

    async def run(self, stop: asyncio.Event) -> None:
        """Start, run until `stop` is set, then stop cleanly."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

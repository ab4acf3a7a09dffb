"""Many keepers: accounts, locks, start-up checks, recovery, and a clean stop.

Start-up, in order: take each account's lock (a second daemon is refused),
open the journal, build each venue (paper state restored from disk), check
the position mode (hedge mode, or set it on a flat account, else refuse),
put each contract in the configured margin mode and leverage, settle every
journaled action whose outcome is unknown, and only then start the keepers.

Stop (SIGINT/SIGTERM): keepers finish the action in flight and start no new
one; positions are left exactly as they are. Only `unwind` closes a hedge.

The Daemon composes its parts, one concern each: the account lock (engine.account_lock), leases and failover
(engine.daemon_leases), the journal's integrity (engine.daemon_journal), starting and reconciling an account
(engine.daemon_startup), comparing it with the journal (engine.daemon_compare), feeds and streams
(engine.daemon_feeds), holdings accounts and refills (engine.daemon_holdings), the status file
(engine.daemon_status), the operations surface (engine.daemon_ops) and reloading the config (engine.daemon_reload).
This module owns the start-up order, the tasks it starts, and the stop.
"""

from __future__ import annotations

import asyncio
import json  # noqa: F401 - tests patch hedgebot.engine.daemon.json.dumps (the status writer's encoder)
import math
import os
import secrets
import socket
import threading
from collections.abc import Callable
from typing import Any

import structlog

from hedgebot.clock import Clock, RealClock, monotonic_of
from hedgebot.config import AccountConfig, ConfigError, ReplayFeedConfig, Settings
from hedgebot.domain.schedule import CalendarEvent
from hedgebot.engine.account_lock import AccountLock
from hedgebot.engine.account_runtime import AccountRuntime
from hedgebot.engine.clock_step import ClockStepWatch
from hedgebot.engine.daemon_compare import AccountComparison
from hedgebot.engine.daemon_feeds import FeedsAndStreams
from hedgebot.engine.daemon_holdings import HoldingsAccounts
from hedgebot.engine.daemon_journal import JournalChecks
from hedgebot.engine.daemon_leases import AccountLeases
from hedgebot.engine.daemon_ops import OperationsSurface
from hedgebot.engine.daemon_reload import Reloading
from hedgebot.engine.daemon_startup import AccountStartup
from hedgebot.engine.daemon_status import STATUS_FILE, StatusWriting  # noqa: F401 - the CLI reads STATUS_FILE from here
from hedgebot.engine.keeper import Keeper, StartupRefused
from hedgebot.engine.ownership import identity_lock
from hedgebot.engine.refill import Refill
from hedgebot.exchange.factory import VenueSetup
from hedgebot.exchange.port import ExchangeError, ExchangePort
from hedgebot.ops import systemd
from hedgebot.ops.events import EventLog
from hedgebot.ops.fdguard import OutOfFilesLog
from hedgebot.ops.health import Operations
from hedgebot.ops.http import OpsServer
from hedgebot.ops.senders import AlertDispatcher
from hedgebot.replay_clock import ReplayClock
from hedgebot.store.journal import Journal, JournalStore, JournalUnavailable
from hedgebot.store.lease import Lease, LeaseChange, LeaseTiming
from hedgebot.store.space import DiskGuard


def uses_replay_time(settings: Settings) -> bool:
    """Tell whether a paper account replays a candle file, so the daemon lives in the replay's time."""
    return any(
        isinstance(m.feed, ReplayFeedConfig) for a in settings.accounts if a.paper is not None for m in a.paper.markets
    )


class Daemon(
    AccountLeases, JournalChecks, AccountStartup, AccountComparison, FeedsAndStreams, HoldingsAccounts, StatusWriting,
    OperationsSurface, Reloading,
):
    """Runs every configured hedge until asked to stop."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        *,
        allow_live: bool = False,
        venue_factory: Callable[[AccountConfig], ExchangePort | VenueSetup] | None = None,
        serve_http: bool = False,
        only: tuple[str, str] | None = None,
        standby: bool = False,
    ) -> None:
        self.settings = settings
        self.only = only
        self.standby = standby
        # Who holds a lease: this process, unmistakably (a restarted daemon is a new holder).
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.serve_http = serve_http
        if uses_replay_time(settings):
            clock = ReplayClock(clock)
        self.ops = Operations(settings.http, clock.now, monotonic=monotonic_of(clock))
        self.alerts: AlertDispatcher | None = None
        self.http: OpsServer | None = None
        self._http_failed = False
        self.clock = clock
        self.allow_live = allow_live
        self.venue_factory = venue_factory
        self.state_dir = settings.daemon.state_dir
        self.log = structlog.get_logger("hedgebot.daemon")
        self.journal: JournalStore | None = None
        self._disk_guard: DiskGuard | None = None
        self.events: EventLog | None = None
        self.accounts: list[AccountRuntime] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._keeper_tasks: list[asyncio.Task[None]] = []
        self._journal_checked_at: float | None = None
        # Each hedge's status as last rendered: a keeper replaces its status when it ticks, so one not replaced
        # since the last round is not rendered again (with the default 10 s tick and 2 s status interval, 4 rounds of 5).
        self._rendered: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}
        self._status_lock = threading.Lock()
        # Each hedge's rendered status as JSON text, by the rendered dict's id (the dict kept alive beside it).
        self._status_texts: dict[int, tuple[dict[str, Any], str]] = {}
        self._status_seen: Any = None  # the streams and leases (ages aside) the status file last showed
        self._status_written_at = -math.inf
        self._status_clock = monotonic_of(clock)
        self._real_time = isinstance(clock, RealClock)
        self._stopping = False
        self._stop_asked: asyncio.Event | None = None  # run()'s stop: ends a start still waiting for the journal
        self.clock_watch = ClockStepWatch(settings.daemon.clock_step_seconds)
        self.out_of_files = OutOfFilesLog(self.log)
        self._loop_handler: Any = None
        self.calendar: tuple[CalendarEvent, ...] = ()  # the events schedules and `until` name, read at start and on reload
        # The venues of holdings accounts (coins only, read-only), by account name.
        self._holdings: dict[str, VenueSetup] = {}
        self._refills: dict[str, Refill] = {}  # per holdings account: the withdrawals that refill buffers from it

    @property
    def keepers(self) -> list[Keeper]:
        """Return every keeper of every account."""
        return [k for a in self.accounts for k in a.keepers]

    # ---- start-up -----------------------------------------------------------------

    async def start(self) -> None:
        """Run the start-up sequence and start every task; raise StartupRefused when unsafe."""
        try:
            self.calendar = self.settings.calendar_events()
            for account in self.settings.accounts:
                for hedge in account.hedges:
                    hedge.schedule_of(self.calendar)
        except ConfigError as exc:
            raise StartupRefused(f"{exc} (nothing was started)") from None
        live = [a.name for a in self.settings.accounts if a.mode == "live" and a.hedges]  # holdings accounts are only read
        if live and not self.allow_live:
            raise StartupRefused(
                f"account(s) {', '.join(live)} are live: pass --live to trade real money (nothing was started)"
            )
        shared = self.settings.journal.url is not None
        if self.standby and not shared:
            raise StartupRefused(
                "--standby needs a journal shared with the leader: set [journal] url to a PostgreSQL database "
                "(nothing was started)"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # `Too many open files` from the loop's accepts once a minute, not once a refused connection.
        loop = asyncio.get_running_loop()
        self._loop_handler = loop.get_exception_handler()
        loop.set_exception_handler(self.out_of_files)
        try:
            for account in self._accounts_to_run():
                # The account itself first (whatever the state_dir), then this config's own lock for the CLI.
                # On a shared journal the account's lease is the lock, across machines, and this one is taken shared:
                # a standby beside the leader on this machine is not refused, a daemon on its own journal is.
                owner = identity_lock(self.settings, account, venue_given=self.venue_factory is not None)
                journal: object = self.settings.journal.path
                if shared:
                    from hedgebot.store.pg_journal import redacted_url

                    journal = redacted_url(self.settings.journal.url)  # type: ignore[arg-type]
                owner.acquire(shared=shared, account=account.name, state_dir=self.state_dir.resolve(), journal=journal)
                lock = AccountLock(self.state_dir, account.name)
                runtime = AccountRuntime(account, None, [], lock, owner)  # type: ignore[arg-type]
                self.accounts.append(runtime)
                lock.acquire()
            if shared:
                self.journal = await self._open_shared_journal()
            else:
                await self._refuse_a_damaged_journal()
                self.journal = Journal(self.settings.journal.path, self.clock)
            self.events = EventLog(self.journal, self.log)
            for runtime in self.accounts:
                if runtime.identity is not None:
                    self.events.emit(
                        runtime.config.name, "-", "account_lock_taken", identity=runtime.identity.identity.label,
                        lock=str(runtime.identity.path), pid=os.getpid(), state_dir=str(self.state_dir.resolve()),
                    )
            self._start_operations(self.events)
            await self._open_holdings()
            if shared:
                self.ops.extra_figures.append(lambda: {"leases": self.lease_status()})
                self.ops.extra_metrics.append(self._lease_metrics)
                self.ops.extra_readiness.append(self._lease_readiness)
                self.ops.may_lead_nothing = True
            else:
                self._report_recovery()
            for runtime in self.accounts:
                if shared:
                    runtime.lease = Lease(
                        self.journal, runtime.config.name, self.holder,  # type: ignore[arg-type]
                        LeaseTiming(self.settings.journal.lease_seconds, self.settings.journal.lease_margin_seconds),
                        monotonic_of(self.clock),
                    )
                    # The venue first (no request is sent: the fence refuses any), so that a takeover starts at once.
                    try:
                        await self._open_venue(runtime)
                    except ConfigError as exc:
                        raise StartupRefused(f"account {runtime.config.name!r}: {exc}") from exc
                    if (
                        self.standby or not self._room_to_lead() or self._lets_a_warmer_go(runtime, 0.0)
                        or self._refresh_lease(runtime) is not LeaseChange.TAKEN
                    ):
                        # Another daemon leads it, or this one has just started (a restart after a crash may find the
                        # lease lapsed) and lets a warm standby take it first: it waits for the lease (see _lead).
                        continue
                    self._lease_taken(runtime)
                    await self._renewing(runtime, self._start_account_refusing(runtime))
                    continue
                await self._start_account_refusing(runtime)
            self.ops.attach(self.keepers)
            serving = await self._start_http() if self.serve_http and self.settings.http.enabled else True
        except BaseException:
            await self._close_venues()
            await self._release()
            raise
        for runtime in self.accounts:
            if runtime.setup is not None and (runtime.lease is None or runtime.keepers):
                self._run_account(runtime)  # a standby's venue (built, never used) waits for its lease
            if runtime.lease is not None:
                self._tasks.append(asyncio.create_task(self._lead(runtime), name=f"lease {runtime.config.name}"))
        self._tasks.append(asyncio.create_task(self._write_status_forever(), name="status writer"))
        if not serving:
            self._tasks.append(asyncio.create_task(self._retry_http()))
        assert self.alerts is not None
        await self.alerts.start()
        if self.settings.alerts.startup_summary:
            self._tasks.append(asyncio.create_task(self._startup_summary()))
        interval = systemd.watchdog_interval()
        if interval:
            self._tasks.append(asyncio.create_task(self._feed_watchdog(interval), name="watchdog"))
        for task in [*self._tasks, *self._keeper_tasks]:
            task.add_done_callback(self._task_ended)
        self.log.info(
            "daemon_started", accounts=[a.config.name for a in self.accounts], hedges=len(self.keepers),
            leading=[a.config.name for a in self.accounts if a.leading],
        )
        systemd.notify("READY=1\nSTATUS=" + ("hedging" if self.keepers else "standby: waiting for a lease"))

    def _run_account(self, runtime: AccountRuntime) -> list[asyncio.Task[None]]:
        """Start the account's price feeds, scripts, funding polls, streams and keepers; return the tasks started."""
        setup = runtime.setup
        assert setup is not None
        own: list[asyncio.Task[None]] = []
        name = runtime.config.name
        if runtime.tasks is None:  # feeds, polls and streams run once per venue, across lease changes
            for run in setup.feeds:
                own.append(asyncio.create_task(self._drive(runtime, run), name=f"price feed {name}/{run.symbol}"))
            if setup.simulated is not None and runtime.config.paper is not None and self.only is None:
                for number, script in enumerate(runtime.config.paper.script):
                    own.append(asyncio.create_task(self._script(runtime, number, script)))
            for funding, every in setup.funding_polls:
                own.append(asyncio.create_task(self._poll_funding(funding, every), name=f"funding poll {funding.symbol}"))
            self._tasks.extend(own)
            runtime.tasks = []
        if runtime.streams is not None:
            runtime.streams.start()  # stopped again when the lease is lost: a standby keeps no stream of the account
        keepers = [asyncio.create_task(k.run(), name=f"keeper {k.account}/{k.hedge.name}") for k in runtime.keepers]
        runtime.tasks = keepers
        self._keeper_tasks.extend(keepers)
        return [*own, *keepers]

    # ---- stop ---------------------------------------------------------------------

    async def stop(self) -> None:
        """Let each keeper finish its action in flight, then stop everything; positions stay as they are."""
        systemd.notify("STOPPING=1")
        self._stopping = True
        # Everything below is bounded by shutdown_seconds on the loop's (monotonic) clock: an exchange call that
        # hangs must not keep the daemon from stopping. A keeper cut off mid-action leaves its intent journaled;
        # the next start settles it, as after a crash.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.daemon.shutdown_seconds

        def left() -> float:
            return max(deadline - loop.time(), 0.0)

        for keeper in self.keepers:
            keeper.stop()
        if self._keeper_tasks:
            _, stuck = await asyncio.wait(self._keeper_tasks, timeout=left() * 0.6)
            for task in stuck:
                self.log.warning("keeper_cut_off_at_stop", task=task.get_name(), note="its action in flight is settled at the next start")
                task.cancel()
            if stuck:
                await asyncio.wait(stuck, timeout=1.0)
        for runtime in self.accounts:
            if runtime.streams is not None:
                await self._bounded("stream_stop", runtime.streams.stop(), left())
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=1.0)
        if self.events is not None:
            await self._bounded("account_snapshot", self._record_account_snapshots(), left() * 0.5)
        await self._bounded("venue_close", self._close_venues(), left())
        if self.accounts:
            self.write_status()
        self.log.info("daemon_stopped", note="positions left as they were")
        await self._release()

    async def _bounded(self, what: str, work: Any, seconds: float) -> None:
        """Run one step of the stop for at most `seconds`; one that hangs is abandoned, said in the log."""
        try:
            await asyncio.wait_for(work, timeout=max(seconds, 0.1))
        except TimeoutError:
            self.log.warning("stop_step_abandoned", step=what, seconds=round(seconds, 1))

    async def _close_venues(self) -> None:
        for setup in self._holdings.values():
            try:
                await setup.close()
            except ExchangeError as exc:
                self.log.warning("venue_close_failed", error=str(exc))
        self._holdings.clear()
        self._refills.clear()
        for runtime in self.accounts:
            if runtime.setup is not None:
                try:
                    await runtime.setup.close()
                except ExchangeError as exc:
                    self.log.warning("venue_close_failed", account=runtime.config.name, error=str(exc))
                runtime.setup = None

    async def _release(self) -> None:
        await self._stop_operations()
        asyncio.get_running_loop().set_exception_handler(self._loop_handler)
        for runtime in self.accounts:
            if runtime.lease is not None and runtime.lease.epoch is not None:
                try:
                    runtime.lease.release()  # a standby takes over at once, not after the lease expires
                    self.log.info("lease_released", account=runtime.config.name, epoch=runtime.led_epoch)
                except JournalUnavailable as exc:
                    self.log.warning("lease_not_released", account=runtime.config.name, error=str(exc))
        if self.journal is not None:
            self.journal.close()
            self.journal = None
        for runtime in self.accounts:
            runtime.lock.release()
            if runtime.identity is not None:
                runtime.identity.release()

    async def run(self, stop: asyncio.Event) -> None:
        """Start, run until `stop` is set, then stop cleanly."""
        self._stop_asked = stop
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

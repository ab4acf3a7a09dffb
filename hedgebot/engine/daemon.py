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
import math
import os
import secrets
import socket
import sqlite3
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import structlog
from pydantic import ValidationError

from hedgebot.access import unreadable
from hedgebot.clock import Clock, RealClock, monotonic_of
from hedgebot.config import AccountConfig, ConfigError, HedgeConfig, ReplayFeedConfig, Settings, load_config
from hedgebot.domain.model import PositionMode, Severity, Wallet
from hedgebot.domain.schedule import CalendarEvent
from hedgebot.engine.clock_step import ClockStepWatch
from hedgebot.engine.fencing import FencedPort
from hedgebot.engine.holdings import AccountHoldings
from hedgebot.engine.refill import Refill
from hedgebot.engine.startup_checks import UNRESTRICTED_KEY, key_problems
from hedgebot.engine.keeper import Keeper, Liquidation, StartupDeferred, StartupRefused, StartupStopped
from hedgebot.engine.ownership import AccountLocked, IdentityLock, identity_lock
from hedgebot.engine.put_leg import live_put_leg, paper_put_leg
from hedgebot.engine.streams import StreamState, StreamSupervisor, attach_streams, route_order_updates, stream_metrics
from hedgebot.exchange.factory import FeedRun, VenueSetup, build_holdings, build_venue, paper_setup
from hedgebot.exchange.funding import LiveFunding
from hedgebot.exchange.paper import PaperVenue
from hedgebot.exchange.port import AuthenticationFailed, ExchangeError, ExchangePort, ModeError
from hedgebot.exchange.ratelimit import gates_for
from hedgebot.ops import systemd
from hedgebot.ops.senders import AlertDispatcher, build_dispatcher, startup_summary
from hedgebot.ops.events import EventLog
from hedgebot.ops.figures import Figure, Precision, booked, iso_utc, render
from hedgebot.ops.fdguard import OutOfFilesLog
from hedgebot.ops.health import Operations
from hedgebot.ops.http import OpsServer
from hedgebot.replay_clock import ReplayClock, apply_candle
from hedgebot.store import integrity
from hedgebot.store.space import MB, DiskGuard
from hedgebot.store.journal import Journal, JournalStore, JournalUnavailable
from hedgebot.store.lease import Lease, LeaseChange, LeaseTiming

STATUS_FILE = "status.json"
STATUS_HEARTBEAT_SECONDS = 30.0  # the status file is rewritten at least this often, changed or not
_LEASE_AGES = ("lease_age_seconds", "may_send_seconds")  # they change every round: not a change by themselves
# How far back start-up looks for orders another hedgebot daemon sent to a live account.
FOREIGN_ORDER_WINDOW_SECONDS = 24 * 3600
HTTP_RETRY_SECONDS = 30.0
# An OK free-space reading serves every hedge for this long: one statvfs a second, not one per hedge per tick.
# Filling the disk from the warning threshold to the stop one inside it is not a realistic race, and a write
# that fails anyway is refused by the journal and makes the guard ask again (the keeper calls DiskGuard.forget on JournalUnavailable).
DISK_READING_MAX_AGE_SECONDS = 1.0
# Hedge settings a reload cannot change under a running keeper: they are set on
# the exchange at start, or name a different contract.
RESTART_ONLY_HEDGE_FIELDS = ("asset", "symbol", "instrument", "side", "leverage", "margin_mode")


class JournalDamaged(StartupRefused):
    """The journal fails its integrity check: trading on it could send an order twice."""


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


@dataclass(frozen=True)
class ReloadResult:
    """What a reload changed, and what only a restart can change."""

    applied: list[str]
    needs_restart: list[str]
    error: str | None = None


@dataclass
class AccountRuntime:
    """Everything the daemon runs for one account."""

    config: AccountConfig
    venue: ExchangePort
    keepers: list[Keeper]
    lock: AccountLock
    identity: IdentityLock | None = None
    setup: VenueSetup | None = None
    streams: StreamSupervisor | None = None
    lease: Lease | None = None  # on the PostgreSQL journal: this daemon's lease on the account
    fence: FencedPort | None = None
    tasks: list[asyncio.Task[None]] | None = None  # the account's own tasks while this daemon leads it
    taken_at: float | None = None  # when this daemon last took the lease (its clock)
    led_epoch: int | None = None  # the epoch this daemon last led the account under

    @property
    def leading(self) -> bool:
        """Tell whether this daemon trades the account now (always, on the SQLite journal)."""
        return self.lease is None or (self.lease.epoch is not None and bool(self.keepers))

    @property
    def feeds(self) -> list[FeedRun]:
        """Return the price feeds the daemon steps for this account (paper only)."""
        return self.setup.feeds if self.setup else []


def uses_replay_time(settings: Settings) -> bool:
    """Tell whether a paper account replays a candle file, so the daemon lives in the replay's time."""
    return any(
        isinstance(m.feed, ReplayFeedConfig) for a in settings.accounts if a.paper is not None for m in a.paper.markets
    )


def _amounts(balances: dict[str, dict[str, str]]) -> dict[str, dict[str, Decimal]]:
    return {wallet: {k: Decimal(v) for k, v in book.items()} for wallet, book in balances.items()}


def _hedgebot_id(client_id: str | None) -> bool:
    """Tell whether a client id has the shape hedgebot gives its orders (`hb`, then letters and digits)."""
    return bool(client_id) and client_id.startswith("hb") and client_id.isalnum()  # type: ignore[union-attr]


def _severity_of(kind: str) -> Severity:
    """Return how loudly a venue's own event is announced: a liquidation is critical; a forced or outside move, a warning."""
    if kind == "liquidation":
        return Severity.CRITICAL
    if kind in ("adl", "settlement", "account_update", "delivery"):  # delivery: a leg the roll left on a contract
        return Severity.WARNING
    return Severity.INFO


class Daemon:
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

    async def _start_account_refusing(self, runtime: AccountRuntime) -> None:
        """Open the account's venue and reconcile it; turn what stops it into StartupRefused naming the account."""
        try:
            await self._start_account(runtime)
        except ConfigError as exc:
            raise StartupRefused(f"account {runtime.config.name!r}: {exc}") from exc
        except AuthenticationFailed as exc:
            raise StartupRefused(
                f"account {runtime.config.name!r}: the exchange refused the API key ({exc}); check the key, "
                "the secret, the key's permissions (reading and futures trading) and its IP restriction"
            ) from exc
        except ExchangeError as exc:
            raise StartupRefused(f"account {runtime.config.name!r}: the venue did not answer at start-up: {exc}") from exc

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

    # ---- leases on the shared (PostgreSQL) journal ----------------------------------

    async def _open_shared_journal(self) -> JournalStore:
        """Open the PostgreSQL journal (migrating it); refuse the start naming the URL, never the password.

        A database that does not answer yet is waited for, with back-off, for `start_patience_seconds`:
        after a reboot the daemon may come up before it. Then the start is deferred (exit 75, restarted
        by the unit), never refused for good; a wrong password, database or permission is refused at once.
        """
        from hedgebot.store.pg_journal import JournalNotAnswering, PgJournal, redacted_url  # psycopg only when used

        config = self.settings.journal
        assert config.url is not None
        began = self.clock.now()
        delay = 1.0
        while True:
            try:
                return PgJournal(config.conninfo(), self.clock, where=redacted_url(config.url))
            except JournalNotAnswering as exc:
                waited = self.clock.now() - began
                if waited + delay > config.start_patience_seconds:
                    raise StartupDeferred(
                        f"{exc}; waited {waited:.0f}s (start_patience_seconds {config.start_patience_seconds:g}); "
                        "exiting 75 so that the service manager starts the daemon again (nothing was started)"
                    ) from exc
                self.log.error("journal_waiting", error=str(exc), waited_seconds=round(waited, 1), retry_in_seconds=delay,
                               note="the database does not answer yet: waiting for it before anything starts")
                # The unit is Type=notify with a start timeout shorter than the patience: each retry extends it,
                # so systemd waits with us instead of killing a start that is only waiting for the database.
                extend = int((delay + 30) * 1_000_000)
                systemd.notify(f"EXTEND_TIMEOUT_USEC={extend}\nSTATUS=waiting for the journal: {exc}")
                if self._stop_asked is not None and await self.clock.wait_for(self._stop_asked, delay):
                    raise StartupStopped("stopped while waiting for the journal (nothing was started)") from exc
                if self._stop_asked is None:
                    await self.clock.sleep(delay)
                delay = min(delay * 2, 30.0)
            except (JournalUnavailable, ConfigError) as exc:
                raise StartupRefused(f"{exc} (nothing was started)") from exc

    def _room_to_lead(self) -> bool:
        """Tell whether this daemon may take one more lease ([daemon] max_accounts)."""
        limit = self.settings.daemon.max_accounts
        held = sum(1 for r in self.accounts if r.lease is not None and r.lease.epoch is not None)
        return limit is None or held < limit

    def _refresh_lease(self, runtime: AccountRuntime) -> LeaseChange | None:
        """Take or renew the account's lease once; None when the journal did not answer (the lease then ages)."""
        assert runtime.lease is not None
        try:
            return runtime.lease.refresh()
        except JournalUnavailable as exc:
            self.log.warning("lease_refresh_failed", account=runtime.config.name, error=str(exc),
                             remaining=round(runtime.lease.remaining(), 3))
            return None

    def _lease_taken(self, runtime: AccountRuntime) -> None:
        assert runtime.lease is not None and self.events is not None
        runtime.taken_at = self.clock.now()
        runtime.led_epoch = runtime.lease.epoch
        previous = self._lease_row(runtime)
        self.events.emit(
            runtime.config.name, "-", "lease_taken", Severity.WARNING if self.standby or runtime.tasks is not None else Severity.INFO,
            epoch=runtime.lease.epoch, holder=self.holder, lease_seconds=runtime.lease.timing.seconds,
            taken_at_db=previous.get("taken_at") if previous else None,
            note="this daemon leads the account now: open intents are settled, legs and wallets compared and funds "
            "movements looked for before it trades",
        )

    def _lease_row(self, runtime: AccountRuntime) -> dict[str, Any] | None:
        read = getattr(self.journal, "lease", None)
        if read is None:
            return None
        try:
            row = read(runtime.config.name)
        except JournalUnavailable:
            return None
        return None if row is None else {"holder": row.holder, "epoch": row.epoch, "expires_in": row.expires_in, "age": row.age}

    async def _lead(self, runtime: AccountRuntime) -> None:
        """Keep the account's lease: renew it every third of its length; wait for it, take it and reconcile when not held.

        A renewal that fails, or a lease found taken by another, stops every keeper of the account; so does a
        lease not renewed within lease_seconds - margin by the monotonic clock (a frozen process), whose keepers'
        calls the fence refuses meanwhile. A lapsed lease is waited out and taken anew under a higher epoch.
        """
        lease = runtime.lease
        assert lease is not None
        every = lease.timing.renew_every
        monotonic = monotonic_of(self.clock)
        standing_since = monotonic()
        while True:
            if runtime.keepers:
                standing_since = monotonic()  # standing by begins anew once the lease is lost
                # Wake at the next renewal, or at the moment the lease stops covering sends if that comes first.
                await self.clock.sleep(min(every, lease.remaining() + 0.001))
                if not lease.may_send():
                    await self._lose(runtime, f"not renewed for {lease.age() or 0:.1f}s, over lease_seconds - margin "
                                     f"({lease.timing.seconds - lease.timing.margin:.1f}s): fenced itself off")
                    lease.lapse()
                    continue
                change = self._refresh_lease(runtime)
                if change is LeaseChange.LOST:
                    await self._lose(runtime, "another daemon holds the lease now")
                elif change is LeaseChange.TAKEN:  # lapsed in the database and retaken: another may have traded meanwhile
                    await self._lose(runtime, "the lease lapsed in the database before it was renewed")
                    await self._take_over(runtime)
                continue
            standing = monotonic() - standing_since
            change = self._refresh_lease(runtime) if self._room_to_lead() and not self._lets_a_warmer_go(runtime, standing) else None
            if change is LeaseChange.TAKEN:
                await self._take_over(runtime)
            elif change is LeaseChange.RENEWED:
                pass  # held, but its keepers failed to start: _take_over released it already; nothing to do
            else:
                await self.clock.sleep(lease.timing.watch_every)

    @staticmethod
    def _lets_a_warmer_go(runtime: AccountRuntime, standing: float) -> bool:
        """Tell whether this standby leaves a lapsed lease to another for now: its venue still regains its pacing.

        A standby started moments ago would pace its takeover's requests (ccxt's rate, with no burst regained yet)
        and reach the band seconds later than one that has stood by a while. It lets such a one go first, for at
        most one lease period after it began standing by; alone, it then takes the lease itself.
        """
        lease, setup = runtime.lease, runtime.setup
        if lease is None or setup is None or standing >= lease.timing.seconds:
            return False
        return setup.venue.warm_in() > 0

    async def _renewing(self, runtime: AccountRuntime, work: Any) -> None:
        """Run `work` (a start-up or a takeover's reconciliation) while the lease is renewed beside it.

        Reconciling may take longer than the lease: unrenewed, the fence would refuse its own calls.
        """
        lease = runtime.lease
        assert lease is not None

        async def renew() -> None:
            while True:
                await self.clock.sleep(lease.timing.renew_every)
                if self._refresh_lease(runtime) in (LeaseChange.LOST, LeaseChange.TAKEN):
                    lease.lapse()  # lost, or lapsed and retaken under a new epoch: this reconciliation is void
                    return

        renewal = asyncio.create_task(renew(), name=f"lease renewal {runtime.config.name}")
        try:
            await work
        finally:
            renewal.cancel()
            await asyncio.gather(renewal, return_exceptions=True)
        if lease.epoch is None or lease.epoch != runtime.led_epoch:
            raise StartupRefused(
                f"account {runtime.config.name!r}: the lease (epoch {runtime.led_epoch}) was lost while reconciling; "
                "nothing was traded"
            )

    async def _take_over(self, runtime: AccountRuntime) -> None:
        """Reconcile the account under the lease just taken, then start its keepers; on failure, let the lease go."""
        assert runtime.lease is not None and self.events is not None
        self._lease_taken(runtime)
        name = runtime.config.name
        try:
            await self._renewing(runtime, self._start_account(runtime))
        except (StartupRefused, ConfigError, ExchangeError, JournalUnavailable) as exc:
            self.events.emit(
                name, "-", "takeover_failed", Severity.CRITICAL, epoch=runtime.lease.epoch, error=str(exc),
                message=f"took the lease on account {name!r} (epoch {runtime.lease.epoch}) but could not reconcile it "
                f"({exc}); the lease is let go and taken again after lease_seconds",
            )
            for keeper in runtime.keepers:
                keeper.stop()
            runtime.keepers = []
            try:
                runtime.lease.release()
            except JournalUnavailable:
                runtime.lease.lapse()
            await self.clock.sleep(runtime.lease.timing.seconds)
            return
        started = self._run_account(runtime)
        for task in started:
            task.add_done_callback(self._task_ended)
        self.ops.attach(self.keepers)
        systemd.notify("STATUS=hedging")

    async def _lose(self, runtime: AccountRuntime, reason: str) -> None:
        """Stop every keeper of an account whose lease this daemon no longer holds; journal and raise lease_lost."""
        assert runtime.lease is not None and self.events is not None
        tasks = runtime.tasks or []
        for keeper in runtime.keepers:
            keeper.stop()
        for task in tasks:
            if task in self._keeper_tasks:
                self._keeper_tasks.remove(task)
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
        runtime.keepers = []
        runtime.tasks = []
        if runtime.streams is not None:
            await runtime.streams.stop()
        self.ops.attach(self.keepers)
        self.events.emit(
            runtime.config.name, "-", "lease_lost", Severity.CRITICAL, epoch=runtime.led_epoch,
            holder=self.holder, reason=reason,
            message=f"this daemon no longer leads account {runtime.config.name!r} ({reason}): it sends nothing more to "
            "it; a standby takes over, or this daemon takes the lease again under a new epoch once it expires",
        )

    def lease_status(self) -> dict[str, Any]:
        """Return, per account, whether this daemon leads it, under which epoch, and how old its lease is."""
        out: dict[str, Any] = {}
        for runtime in self.accounts:
            lease = runtime.lease
            if lease is None:
                continue
            age = lease.age()
            out[runtime.config.name] = {
                "leading": runtime.leading, "epoch": lease.epoch, "holder": self.holder,
                "lease_age_seconds": None if age is None else round(age, 3),
                "may_send_seconds": round(lease.remaining(), 3), "lease_seconds": lease.timing.seconds,
                "refused_calls": runtime.fence.refused if runtime.fence else 0,
            }
        return out

    def _lease_readiness(self) -> list[str]:
        """Say why the daemon is not ready as far as leases go: it leads no account (a standby)."""
        if any(r.lease is None or r.leading for r in self.accounts):
            return []
        return ["standby: this daemon leads no account (waiting for a lease)"]

    def _lease_metrics(self) -> list[Any]:
        from prometheus_client.core import GaugeMetricFamily

        leading = GaugeMetricFamily("hedgebot_lease_leading", "1 while this daemon leads the account", labels=["account"])
        epoch = GaugeMetricFamily("hedgebot_lease_epoch", "The epoch of this daemon's lease on the account (0: none)", labels=["account"])
        age = GaugeMetricFamily("hedgebot_lease_age_seconds", "Seconds since this daemon last renewed its lease", labels=["account"])
        refused = GaugeMetricFamily("hedgebot_lease_refused_calls", "Exchange calls refused unsent for a lapsed lease", labels=["account"])
        for name, lease in self.lease_status().items():
            leading.add_metric([name], 1.0 if lease["leading"] else 0.0)
            epoch.add_metric([name], float(lease["epoch"] or 0))
            if lease["lease_age_seconds"] is not None:
                age.add_metric([name], float(lease["lease_age_seconds"]))
            refused.add_metric([name], float(lease["refused_calls"]))
        return [leading, epoch, age, refused]

    # ---- the journal's integrity ----------------------------------------------------

    async def _refuse_a_damaged_journal(self) -> None:
        """Check the journal before anything trades; a damaged one refuses the start, with a critical alert saying what to do."""
        path = self.settings.journal.path
        if not path.exists():
            return
        problems = await asyncio.to_thread(integrity.quick_check, path)
        if not problems:
            return
        message = f"the journal {path} is damaged ({'; '.join(problems[:3])}): nothing was started; {integrity.damage_advice(path)}"
        self.log.critical("journal_damaged", path=str(path), problems=problems[:10], message=message)
        # The senders do not need the journal: the alert goes out before the start is refused.
        dispatcher = build_dispatcher(self.settings, self.clock)
        await dispatcher.start()
        dispatcher.send("journal_damaged", Severity.CRITICAL, message, path=str(path))
        await dispatcher.stop()
        raise JournalDamaged(message)

    async def check_journal(self) -> list[str]:
        """Run PRAGMA quick_check on the journal off the event loop; a damaged one stops every keeper sending anything."""
        assert self.journal is not None
        path = self.settings.journal.path
        problems = await asyncio.to_thread(integrity.quick_check, path)
        if problems and self.journal is not None and self.journal.damage is None:
            self.journal.damage = "; ".join(problems[:3])
            self.log.critical("journal_damaged", path=str(path), problems=problems[:10], advice=integrity.damage_advice(path))
            for keeper in self.keepers:
                keeper.wake.set()  # each keeper raises its critical alert and stops sending now, not at its next tick
        return problems

    async def _check_journal_when_due(self) -> None:
        """Check the journal when check_interval_seconds have passed since the last check (called by the status writer)."""
        if self.settings.journal.url is not None:
            return  # PostgreSQL checks its own pages; quick_check is SQLite's
        now = self.clock.now()
        if self._journal_checked_at is not None and now - self._journal_checked_at < self.settings.journal.check_interval_seconds:
            return
        self._journal_checked_at = now
        try:
            await self.check_journal()
        except (OSError, sqlite3.Error) as exc:
            self.log.error("journal_check_failed", path=str(self.settings.journal.path), error=str(exc))

    def _report_recovery(self) -> None:
        """Say once, at the first start after `hedgebot journal recover`, that the journal was rebuilt and is reconciled now."""
        assert self.journal is not None and self.events is not None
        recovered = self.journal.meta("recovered_at")
        if recovered is None or self.journal.meta("recovery_reported") == recovered:
            return
        self.events.emit(
            "daemon", "", "journal_recovered", Severity.WARNING, recovered_from=self.journal.meta("recovered_from"),
            note="the journal was rebuilt from a damaged one: orders left open are looked up on the exchange and each "
            "short is compared with the fills the journal still holds before trading; rows that could not be read are "
            "missing from history",
        )
        self.journal.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('recovery_reported', ?)", (recovered,))

    # ---- operations: metrics, alerts, the HTTP endpoint ----------------------------

    def _start_operations(self, events: EventLog) -> None:
        events.subscribe(self.ops.tally.count)
        self.alerts = build_dispatcher(self.settings, self.clock)
        events.subscribe(self.alerts.on_event)
        self.ops.extra_figures.append(self.alerts.figures)
        self.ops.extra_figures.append(lambda: {"streams": self.stream_status()})
        self.ops.extra_metrics.append(self.alerts.metrics)
        self.ops.extra_metrics.append(gates_for(self.clock).metrics)  # request weight by host and account (live venues)

    async def _start_http(self) -> bool:
        """Serve the operations endpoint; return False (after a critical event) when the address is taken.

        A taken port does not stop the daemon: hedges unattended for want of a
        monitoring port would be worse. It says so loudly and keeps trying.
        """
        config = self.settings.http
        try:
            token = config.token.resolve("http.token") if config.token is not None else None
        except ConfigError as exc:
            raise StartupRefused(str(exc)) from exc
        server = OpsServer(self.ops, config, token)
        try:
            await server.start()
        except OSError as exc:
            if self.events is not None and self.http is None and not self._http_failed:
                self.events.emit(
                    "daemon", "", "http_unavailable", Severity.CRITICAL,
                    message=f"cannot serve /healthz, /metrics and /status on {config.host}:{config.port}: "
                    f"{exc.strerror or exc}; hedging goes on, and the endpoint is retried every {HTTP_RETRY_SECONDS:.0f}s",
                )
            self._http_failed = True
            return False
        self.http = server
        self.log.info("http_listening", host=config.host, port=server.port)
        return True

    async def _retry_http(self) -> None:
        while not await self._start_http():
            await self.clock.sleep(HTTP_RETRY_SECONDS)

    async def _startup_summary(self, patience: float = 60.0) -> None:
        """Once every keeper has ticked (or after `patience`), send the start-up summary."""
        waited = 0.0
        while waited < patience and any(k.status.updated_at is None for k in self.keepers):
            await self.clock.sleep(0.5)
            waited += 0.5
        severity, text = startup_summary(self.ops)
        assert self.events is not None
        self.events.emit("daemon", "", "startup_summary", severity, message=text)

    async def _feed_watchdog(self, interval: float) -> None:
        """Feed systemd's watchdog from the event loop: a blocked loop stops feeding it."""
        while True:
            if not self.ops.dead_tasks:
                systemd.notify("WATCHDOG=1")  # a daemon with a dead task must not look alive
            await self.clock.sleep(interval)

    # ---- reload ---------------------------------------------------------------------

    def reload_file(self, path: Path) -> ReloadResult:
        """Re-read the config (SIGHUP): apply ratios, bands and guards at the next tick; keep the old one when invalid."""
        try:
            new = load_config(path)
        except ConfigError as exc:
            return self._reload_rejected(f"invalid config {path}: {exc}")
        except OSError as exc:
            return self._reload_rejected(unreadable(path, exc))
        return self.reload(new)

    def _reload_rejected(self, message: str) -> ReloadResult:
        if self.events is not None:
            self.events.emit("daemon", "", "config_reload_rejected", Severity.WARNING, message=f"{message}; the running config stays in force")
        else:
            self.log.warning("config_reload_rejected", message=message)
        return ReloadResult([], [], message)

    def reload(self, new: Settings) -> ReloadResult:
        """Apply what can change while running; name what needs a restart."""
        try:
            # Read once; every hedge's new schedule is judged on this reading before anything is applied.
            calendar = new.calendar_events()
            for account_config in new.accounts:
                for hedge_config in account_config.hedges:
                    hedge_config.schedule_of(calendar)
        except ConfigError as exc:
            return self._reload_rejected(str(exc))
        applied: list[str] = []
        restart: list[str] = []
        old_names = [a.config.name for a in self.accounts]
        new_accounts = {a.name: a for a in new.accounts}
        for name in sorted(set(new_accounts) - set(old_names)):
            restart.append(f"account {name!r} was added: adding an account needs a restart")
        for name in sorted(set(old_names) - set(new_accounts)):
            restart.append(f"account {name!r} was removed: removing an account needs a restart")
        for section in ("daemon", "journal", "http", "alerts"):
            if getattr(new, section) != getattr(self.settings, section):
                restart.append(f"[{section}] changed: needs a restart")
        changed_calendar = calendar if calendar != self.calendar else None
        if changed_calendar is not None:
            self.calendar = calendar
            applied.append(f"calendar: {len(calendar)} event(s)")
        for runtime in self.accounts:
            account = new_accounts.get(runtime.config.name)
            if account is None:
                continue
            applied += self._reload_account(runtime, account, restart, changed_calendar)
        if self.events is not None:
            self.events.emit(
                "daemon", "", "config_reloaded", Severity.WARNING if restart else Severity.INFO,
                applied=applied, needs_restart=restart,
                message=("applied: " + "; ".join(applied) if applied else "no change to apply")
                + ("; needs a restart: " + "; ".join(restart) if restart else ""),
            )
        systemd.notify(f"STATUS=config reloaded ({len(applied)} change(s) applied, {len(restart)} need a restart)")
        return ReloadResult(applied, restart)

    def _reload_account(
        self, runtime: AccountRuntime, account: AccountConfig, restart: list[str],
        calendar: tuple[CalendarEvent, ...] | None = None,
    ) -> list[str]:
        name = account.name
        if account.model_copy(update={"hedges": runtime.config.hedges}) != runtime.config:
            restart.append(f"account {name!r}: exchange, mode, credentials, paper or alert settings changed: needs a restart")
        old = {h.name: h for h in runtime.config.hedges}
        new = {h.name: h for h in account.hedges}
        for hedge in sorted(set(new) ^ set(old)):
            restart.append(f"hedge {name}/{hedge} was {'added' if hedge in new else 'removed'}: needs a restart")
        applied = []
        for keeper in runtime.keepers:
            wanted = new.get(keeper.hedge.name)
            if wanted is None:
                continue  # removed: a restart is needed, and until then it keeps the schedule it runs on
            if wanted == keeper.hedge:
                if calendar is not None:
                    keeper.reconfigure(keeper.hedge, calendar)
                continue
            fixed = [f for f in RESTART_ONLY_HEDGE_FIELDS if getattr(wanted, f) != getattr(keeper.hedge, f)]
            if fixed:
                restart.append(f"hedge {name}/{wanted.name}: {', '.join(fixed)} changed: needs a restart")
                try:
                    wanted = HedgeConfig(**{**wanted.model_dump(), **{f: getattr(keeper.hedge, f) for f in fixed}})
                except ValidationError:
                    # The other changes only make sense with the new side or instrument (a long's amount): they wait too.
                    restart[-1] += "; the hedge's other changes go with it and wait for the restart as well"
                    continue
            if wanted != keeper.hedge:
                changed = [f for f in HedgeConfig.model_fields if getattr(wanted, f) != getattr(keeper.hedge, f)]
                keeper.reconfigure(wanted, calendar)
                applied.append(f"hedge {name}/{wanted.name}: {', '.join(changed)}")
        return applied

    def _accounts_to_run(self) -> list[AccountConfig]:
        """Return the accounts to run: all that have hedges (holdings accounts are only read), or with `only`, one hedge."""
        if self.only is None:
            return [a for a in self.settings.accounts if a.hedges]
        account_name, hedge_name = self.only
        account = next(a for a in self.settings.accounts if a.name == account_name)
        hedge = next(h for h in account.hedges if h.name == hedge_name)
        return [account.model_copy(update={"hedges": (hedge,)})]

    def _make_venue(self, account: AccountConfig) -> VenueSetup:
        if self.venue_factory is not None:
            made = self.venue_factory(account)
            if isinstance(made, VenueSetup):
                return made
            if isinstance(made, PaperVenue):
                return paper_setup(account, made, self.clock)
            return VenueSetup(made)
        return build_venue(account, self.clock, self.state_dir)

    async def _start_account(self, runtime: AccountRuntime) -> None:
        if runtime.setup is None:
            await self._open_venue(runtime)
        await self._reconcile(runtime)

    async def _open_venue(self, runtime: AccountRuntime) -> None:
        """Build the account's venue (fenced by its lease on a shared journal) and attach its streams."""
        account = runtime.config
        setup = self._make_venue(account)
        runtime.setup = setup
        runtime.venue = setup.venue
        simulated = setup.simulated
        if simulated is not None:
            for run in setup.feeds:
                if run.symbol not in simulated.marks:
                    # Prime the mark so the first tick has a price; a feed that
                    # fails here leaves the keeper blocked until prices arrive.
                    try:
                        candle = await run.feed.next()
                        if candle is not None:
                            self._follow_replay(run, candle.time)
                            simulated.update_price(run.symbol, self._mark_time(run, candle.time), candle.close)
                    except ExchangeError as exc:
                        self._feed_log(runtime, run.symbol).warning("price_feed_failed", symbol=run.symbol, error=str(exc))
            simulated.subscribe(functools.partial(self._on_venue_event, runtime))
            self._report_restore(runtime, simulated)
        if runtime.lease is not None:
            runtime.fence = FencedPort(runtime.venue, runtime.lease)
            runtime.venue = runtime.fence  # type: ignore[assignment]
        self._attach_streams(runtime)

    async def _reconcile(self, runtime: AccountRuntime) -> None:
        """Check the account, build its keepers, settle open intents, and compare legs and wallets with the journal."""
        account = runtime.config
        assert self.journal is not None and self.events is not None
        epoch = runtime.lease.epoch if runtime.lease is not None else None
        await self._check_account(runtime)
        await self._refuse_another_writer(runtime)
        await self._ensure_hedge_mode(runtime)
        for index, hedge in enumerate(account.hedges):
            if hedge.instrument.option:  # long puts on the options book (paper, or the live account's), kept by their own leg
                assert runtime.setup is not None
                if runtime.setup.simulated is not None:
                    leg = paper_put_leg(account, hedge, runtime.venue, runtime.setup.simulated, self.clock, self.journal,
                                        self.events, self.state_dir)
                else:
                    leg = live_put_leg(account, hedge, runtime.venue, runtime.setup, self.clock, self.journal, self.events)
                await leg.prepare()
                runtime.keepers.append(leg)  # type: ignore[arg-type]
                continue
            keeper = Keeper(
                account.name, hedge, runtime.venue, self.clock, self.journal, self.events, seed=index,
                alert_repeat_seconds=self.settings.alerts.repeat_seconds, calendar=self.calendar,
                holdings=[
                    AccountHoldings(
                        name, self._holdings[name].venue, hedge.exposure.accounts_max_age_seconds,
                        price_symbol=self._holding_price_symbol(name, hedge.symbol),
                    )
                    for name in hedge.exposure.accounts
                ],
                refill=self._refill_of(hedge),
            )
            if not await self._refill_address_checked(runtime, hedge):
                keeper.refill = None  # an address not proven this account's own is never paid: deposits by hand
            journal_config = self.settings.journal
            if journal_config.url is None:  # PostgreSQL keeps its files on its own server
                if self._disk_guard is None:  # one guard for every hedge: they all journal to the same file
                    self._disk_guard = DiskGuard(
                        journal_config.path, journal_config.free_space_warning_mb * MB,
                        journal_config.free_space_stop_mb * MB, max_age=DISK_READING_MAX_AGE_SECONDS,
                    )
                keeper.disk = self._disk_guard
            await keeper.prepare()
            runtime.keepers.append(keeper)
        was_open = len(self.journal.open_intents(account.name))
        for keeper in runtime.keepers:
            # Recovery before trading: settle what the journal left open.
            await keeper.settle_open_intents()  # what stays unknown holds risk-adding orders, not the start
            if keeper.lookup_failed:
                raise StartupRefused(
                    f"{account.name}/{keeper.hedge.name}: cannot settle earlier actions with unknown outcomes; "
                    "the venue did not answer the lookups"
                )
        if epoch is not None:
            still = len(self.journal.open_intents(account.name))
            self.events.emit(account.name, "-", "reconcile_step", step="open_intents_settled", epoch=epoch,
                             open_before=was_open, settled=was_open - still, still_unknown=still)
        await self._report_surprises(runtime)
        if epoch is not None:
            self.events.emit(account.name, "-", "reconcile_step", step="legs_wallets_funds_compared", epoch=epoch,
                             figures=await self._account_figures(runtime),
                             note="differences and funds movements since the journal's last account snapshot are "
                             "raised as their own events (short_changed, account_changed_while_stopped)")

    def _follow_replay(self, run: FeedRun, candle_time: float) -> None:
        """Move replayed time to the candle about to be applied."""
        if run.replayed and isinstance(self.clock, ReplayClock):
            self.clock.move_to(candle_time)

    def _report_restore(self, runtime: AccountRuntime, venue: PaperVenue) -> None:
        """Say that a paper account was restored, and warn when the config's starting balances changed since."""
        paper = runtime.config.paper
        if venue.restored_from is None or paper is None:
            return
        path = venue.restored_from
        self.log.info("paper_account_restored", account=runtime.config.name, file=str(path))
        configured = {
            "spot": {k: str(v) for k, v in paper.spot.items()}, "futures": {k: str(v) for k, v in paper.futures.items()},
        }
        created = venue.created_with
        if created is not None and _amounts(created) != _amounts(configured):
            self.log.warning(
                "paper_starting_balances_changed", account=runtime.config.name, file=str(path),
                config=configured, created_with=created,
                note=f"the paper account keeps its saved balances; to start afresh with the config's, stop the daemon "
                f"and delete {path}",
            )

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

    def _mark_time(self, run: FeedRun, candle_time: float) -> float:
        """Stamp a mark with the exchange's time for live prices (so a stale one is seen), else with ours."""
        if run.exchange_time and candle_time == candle_time:  # not NaN
            return candle_time
        return self.clock.now()

    async def _check_account(self, runtime: AccountRuntime) -> None:
        """Refuse an account whose key or modes are unsafe; warn about a key without an IP restriction."""
        assert self.events is not None
        account = runtime.config
        facts = await runtime.venue.fetch_account_facts()
        problems = key_problems(account, facts)
        if problems:
            raise StartupRefused(problems[0])
        if not facts.ip_restricted:
            self.events.emit(
                account.name, "-", "api_key_unrestricted", Severity.WARNING,
                note=UNRESTRICTED_KEY,
            )

    async def _refuse_another_writer(self, runtime: AccountRuntime) -> None:
        """Refuse a live account whose short differs from the journal while hedgebot ids this journal never wrote trade on it.

        Such ids come from another daemon with another journal (a lock on this machine cannot see one on
        another machine): trading here would take its orders for a stranger's, and it ours. A manual trade
        (any other id) stays a warning, reported with the other surprises.
        """
        assert self.journal is not None
        account = runtime.config
        if account.mode != "live":
            return
        known = {i.client_id for i in self.journal.intents(account.name)}
        now = self.clock.now()
        for symbol in dict.fromkeys(h.symbol for h in account.hedges):
            journaled = sum(self._journaled_shorts(account.name, symbol).values(), Decimal(0))
            short = (await runtime.venue.fetch_legs(symbol)).short.size
            if short == journaled:
                continue
            history = await runtime.venue.fetch_order_history(symbol, now - FOREIGN_ORDER_WINDOW_SECONDS, now)
            unknown = sorted({o.client_id for o in history.orders if _hedgebot_id(o.client_id) and o.client_id not in known})
            # Ids under this journal's own prefix were written by this journal: a copy restored from a backup, or
            # recovered with lost rows, no longer holds them. Not another daemon: say so, and take the short as it is.
            prefixes = self.journal.own_prefixes()
            own = [c for c in unknown if c.startswith(prefixes)]
            foreign = [c for c in unknown if c not in own]
            if own and not foreign and self.events is not None:
                shown = ", ".join(own[:5]) + (f" and {len(own) - 5} more" if len(own) > 5 else "")
                self.events.emit(
                    account.name, "-", "journal_lost_orders", Severity.CRITICAL, symbol=symbol, venue_short=short,
                    journal_short=journaled, client_ids=own,
                    message=(
                        f"orders of the last {FOREIGN_ORDER_WINDOW_SECONDS // 3600:.0f} h carry this journal's own "
                        f"prefix but are not in it ({shown}): it was restored from a backup or recovered with rows "
                        f"lost. The {symbol} short is taken as the exchange shows it ({short}, the journal says "
                        f"{journaled}); their fills are missing from history and report"
                    ),
                )
            if foreign:
                shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
                raise StartupRefused(
                    f"account {account.name!r}: the {symbol} short is {short} on the exchange but {journaled} by this "
                    f"journal ({self.settings.journal.path}), and orders of the last "
                    f"{FOREIGN_ORDER_WINDOW_SECONDS // 3600:.0f} h carry hedgebot client ids this journal never wrote "
                    f"({shown}): another hedgebot daemon with another journal trades this account. Stop it, or run "
                    "one daemon on one journal, then start again (nothing was traded)"
                )

    async def _ensure_hedge_mode(self, runtime: AccountRuntime) -> None:
        if runtime.config.hedges and all(h.instrument.option for h in runtime.config.hedges):
            return  # puts send no futures order: the account's position mode stays the user's
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

    def _journaled_shorts(self, account: str, symbol: str) -> dict[str, Decimal]:
        """Return, per hedge name, the short on `symbol` that the account's journaled fills add up to."""
        assert self.journal is not None
        shorts: dict[str, Decimal] = {}
        for intent in self.journal.intents(account):
            outcome = intent.outcome or {}
            if intent.kind != "order" or "filled" not in outcome or outcome.get("position_side") != "short":
                continue
            if outcome.get("symbol", intent.detail.get("symbol")) != symbol:
                continue
            filled = Decimal(outcome["filled"])
            shorts[intent.hedge] = shorts.get(intent.hedge, Decimal(0)) + (filled if outcome.get("side") == "sell" else -filled)
        return shorts

    async def _report_surprises(self, runtime: AccountRuntime) -> None:
        """Compare each short with what the journal's fills say it should be, and say who holds any difference."""
        assert self.journal is not None and self.events is not None
        account = runtime.config.name
        configured = {h.name for h in runtime.config.hedges}
        for keeper in runtime.keepers:
            shorts = self._journaled_shorts(account, keeper.hedge.symbol)
            expected = shorts.get(keeper.hedge.name, Decimal(0))
            legs = await runtime.venue.fetch_legs(keeper.hedge.symbol)
            if legs.short.size == expected:
                continue
            # A hedge that was renamed or removed leaves its short behind under its old name.
            orphans = {name: size for name, size in shorts.items() if name not in configured and size != 0}
            explained = expected + sum(orphans.values(), Decimal(0))
            if orphans:
                self.events.emit(
                    account, keeper.hedge.name, "short_held_by_unconfigured_hedge", Severity.WARNING,
                    venue_short=legs.short.size, journal_short=expected, hedges=sorted(orphans),
                    unconfigured_short=sum(orphans.values(), Decimal(0)),
                    note=f"hedge(s) {', '.join(sorted(orphans))} of this account, no longer configured (renamed or "
                    f"removed), opened {sum(orphans.values(), Decimal(0))} of this short; hedge {keeper.hedge.name!r} "
                    "now keeps the whole short",
                )
            if legs.short.size != explained:
                self.events.emit(
                    account, keeper.hedge.name, "position_differs_from_journal", Severity.WARNING,
                    venue_short=legs.short.size, journal_short=explained,
                    note="changes hedgebot did not make (manual trades, liquidation, another tool)",
                )
        await self._report_orphans(runtime)
        await self._compare_with_last_stop(runtime)

    async def _report_orphans(self, runtime: AccountRuntime) -> None:
        """Name shorts opened by hedges since removed from the config, on contracts no configured hedge keeps."""
        assert self.journal is not None and self.events is not None
        account = runtime.config.name
        if self.only is not None:
            return  # running one hedge for an unwind: the others are configured, just not run here
        kept = {h.symbol for h in runtime.config.hedges}
        configured = {h.name for h in runtime.config.hedges}
        symbols = {
            str(i.detail.get("symbol")) for i in self.journal.intents(account)
            if i.kind == "order" and i.hedge not in configured and i.detail.get("position_side") == "short"
        }
        for symbol in sorted(symbols - kept):
            owners = {n: q for n, q in self._journaled_shorts(account, symbol).items() if n not in configured and q != 0}
            if not owners:
                continue
            try:
                live = (await runtime.venue.fetch_legs(symbol)).short.size
            except ExchangeError as exc:
                live = f"unknown ({exc})"
            if live == 0:
                continue
            names = ", ".join(sorted(owners))
            self.events.emit(
                account, sorted(owners)[0], "orphaned_short", Severity.CRITICAL, symbol=symbol, venue_short=live,
                journal_short=sum(owners.values(), Decimal(0)), hedges=sorted(owners),
                note=f"hedge(s) {names} no longer in the config opened a short on {symbol} that is still open "
                f"({live}); nothing keeps it now, and its margin is not guarded. Put the hedge back in the config "
                f"and close it with `hedgebot unwind --hedge {sorted(owners)[0]}`, or close it on the exchange",
            )

    async def _account_figures(self, runtime: AccountRuntime) -> dict[str, str]:
        """Return both legs of every hedged contract and both wallets, as journal-ready strings."""
        venue = runtime.venue
        figures: dict[str, str] = {}
        for keeper in runtime.keepers:
            symbol = keeper.market.symbol if keeper.market is not None else keeper.hedge.symbol  # a quarterly's contract
            legs = await venue.fetch_legs(symbol)
            shown = Precision.of(keeper.market)
            figures[f"{symbol} long"] = render(legs.long.size, Figure.AMOUNT, shown)
            figures[f"{symbol} short"] = render(legs.short.size, Figure.AMOUNT, shown)
        for asset, amount in sorted((await venue.fetch_spot_balances()).items()):
            figures[f"spot {asset}"] = booked(amount)
        for quote in sorted({k.market.margin_asset for k in runtime.keepers if k.market is not None}):
            figures[f"futures {quote}"] = booked((await venue.fetch_futures_balance(quote)).wallet)
        return figures

    async def _compare_with_last_stop(self, runtime: AccountRuntime) -> None:
        """Report what changed in the legs and wallets since the journal last saw them (at the last clean stop)."""
        assert self.journal is not None and self.events is not None
        name = runtime.config.name
        saved = self.journal.events(account=name, kind="account_snapshot")
        if not saved:
            return
        before = {k: v for k, v in saved[-1].detail.items() if k != "note"}
        now = await self._account_figures(runtime)
        changed = {
            key: f"{before.get(key, '0')} -> {now.get(key, '0')}"
            for key in sorted(set(before) | set(now))
            if Decimal(before.get(key, "0")) != Decimal(now.get(key, "0"))
        }
        if changed:
            self.events.emit(
                name, "-", "account_changed_while_stopped", Severity.WARNING, **changed,
                note="legs or wallets moved since the last clean stop (funding, deposits, manual trades, liquidation)",
            )

    async def _record_account_snapshots(self) -> None:
        """Journal every account's legs and wallets at a clean stop, for the next start to compare."""
        assert self.events is not None
        for runtime in self.accounts:
            if runtime.setup is None or not runtime.keepers:
                continue
            try:
                figures = await self._account_figures(runtime)
            except ExchangeError as exc:
                self.log.warning("account_snapshot_failed", account=runtime.config.name, error=str(exc))
                continue
            self.events.emit(runtime.config.name, "-", "account_snapshot", **figures, note="recorded at a clean stop")

    # ---- running ------------------------------------------------------------------

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

    async def _write_status_forever(self) -> None:
        failing_since: float | None = None
        self._journal_checked_at = self.clock.now()  # checked at start-up
        while True:
            await self.clock.sleep(self.settings.daemon.status_interval_seconds)
            # The journal's integrity check rides on this loop: no timer of its own to move a stepping clock on.
            await self._check_journal_when_due()
            self._check_clock_step()
            try:
                await self._write_status_if_changed()
            except OSError as exc:
                # A full disk must not end the status writer: say so once a minute and keep trying.
                now = self.clock.now()
                if failing_since is None or now - failing_since >= 60:
                    self.log.error("status_not_written", path=str(self.state_dir / STATUS_FILE), error=str(exc))
                    failing_since = now
            else:
                failing_since = None

    def _check_clock_step(self) -> None:
        """Raise a critical clock_step alert when the wall clock stepped, either way, since the last look."""
        step = self.clock_watch.check()
        if step is None or self.events is None:
            return
        direction = "back" if step < 0 else "forward"
        self.events.emit(
            "daemon", "", "clock_step", Severity.CRITICAL, step_seconds=round(step, 3),
            message=f"the system's wall clock stepped {direction} by {abs(step):.0f}s: waits, timeouts and rate limits "
            "run on the monotonic clock and carry on, but signed requests carry the wall time and the exchange refuses "
            "them outside its window, and journal times jump; check the time source (NTP)",
        )

    def _statuses_pending(self) -> tuple[list[tuple[tuple[str, str], Any, dict[str, Any] | None]], bool]:
        """Return every hedge's status with its rendering when one is held (None: still to render), and whether any
        status was replaced since the last round. Cheap: identities only, so it runs on the event loop."""
        rendered: dict[tuple[str, str], tuple[Any, dict[str, Any] | None]] = {}
        for keeper in self.keepers:
            status = keeper.status
            key = (status.account, status.name)
            held = self._rendered.get(key)
            rendered[key] = held if held is not None and held[0] is status else (status, None)
        fresh = rendered.keys() != self._rendered.keys() or any(rendered[k] is not self._rendered[k] for k in rendered)
        self._rendered = rendered  # hedges removed by a reload are forgotten
        return [(key, status, json_) for key, (status, json_) in rendered.items()], fresh

    def _render(self, pending: list[tuple[tuple[str, str], Any, dict[str, Any] | None]]) -> list[dict[str, Any]]:
        """Render the statuses not rendered yet (a status is immutable: this may run on a worker thread) and keep them."""
        out = []
        for key, status, json_ in pending:
            if json_ is None:
                json_ = status.to_json()
                held = self._rendered.get(key)
                if held is not None and held[0] is status:
                    self._rendered[key] = (status, json_)
            out.append(json_)
        return out

    async def _write_status_if_changed(self) -> None:
        """Write the status file when a hedge's status, a stream or a lease changed, or once a heartbeat is due.

        An idle daemon of many hedges neither renders nor rewrites them each round. On the real clock the file is
        serialized and written on a worker thread, off the event loop the keepers run on; in simulated time it is
        written inline, so that a replay stays deterministic.
        """
        data, fresh = self._status_document(rendered=False)
        now = self._status_clock()  # monotonic: a wall clock stepped back must not hold the heartbeat
        leases = {name: {k: v for k, v in lease.items() if k not in _LEASE_AGES} for name, lease in data.get("leases", {}).items()}
        seen = (data["streams"], leases)
        if not fresh and seen == self._status_seen and now - self._status_written_at < STATUS_HEARTBEAT_SECONDS:
            return
        try:
            if self._real_time:
                # Rendering a thousand statuses takes a while: on the worker thread too, not between two fills.
                await asyncio.to_thread(self._finish_and_write, data)
            else:
                self._finish_and_write(data)
        except BaseException:
            # The change this round carried is not on disk: the next round writes, changed since or not.
            self._status_written_at = -math.inf
            raise
        self._status_seen, self._status_written_at = seen, now

    def write_status(self, document: dict[str, Any] | None = None) -> None:
        """Write the status file (atomically): `document`, or every hedge's status now, whether or not it changed."""
        self._write_status_document(document if document is not None else self._status_document()[0])

    def _status_document(self, rendered: bool = True) -> tuple[dict[str, Any], bool]:
        """Return the status file's content, and whether a hedge's status was replaced since the last round.

        With `rendered` false the hedges are left to `_finish` (statuses not rendered yet), which may run off the loop.
        """
        hedges, fresh = self._statuses_pending()
        data = {"pid": os.getpid(), "updated_at": iso_utc(self.clock.now()), "hedges": hedges, "streams": self.stream_status()}
        if self.settings.journal.url is not None:
            data["leases"] = self.lease_status()
        if rendered:
            self._finish(data)
        return data, fresh

    def _finish_and_write(self, data: dict[str, Any]) -> None:
        self._finish(data)
        self.write_status(data)

    def _finish(self, data: dict[str, Any]) -> None:
        """Render the document's hedges; running one hedge, keep the others' last known status from the file."""
        hedges = self._render(data["hedges"])
        path = self.state_dir / STATUS_FILE
        if self.only is not None and path.exists():
            # Running one hedge (an unwind with no daemon up): keep the others' last known status.
            ours = {(h["account"], h["name"]) for h in hedges}
            try:
                saved = json.loads(path.read_text()).get("hedges", [])
            except (OSError, ValueError):
                saved = []
            hedges = [h for h in saved if (h.get("account"), h.get("name")) not in ours] + hedges
        data["hedges"] = hedges

    def _write_status_document(self, data: dict[str, Any]) -> None:
        path = self.state_dir / STATUS_FILE
        with self._status_lock:  # the stop's last write may meet a worker thread's
            tmp = path.with_suffix(".tmp")
            tmp.write_text(self._status_text(data))
            os.replace(tmp, path)

    def _status_text(self, data: dict[str, Any]) -> str:
        """Return the status file's text: one line a hedge, a hedge's line serialized again only once it was re-rendered.

        Called with the status lock held. The C encoder (no `indent`) serializes each line: a thousand hedges in
        the pure-Python indenting encoder took most of the writer's time.
        """
        texts: dict[int, tuple[dict[str, Any], str]] = {}
        for hedge in data["hedges"]:
            held = self._status_texts.get(id(hedge))
            texts[id(hedge)] = held if held is not None and held[0] is hedge else (hedge, json.dumps(hedge))
        self._status_texts = texts
        fields = []
        for key, value in data.items():
            if key == "hedges":
                lines = ",\n    ".join(texts[id(h)][1] for h in value)
                fields.append(f'  "hedges": [\n    {lines}\n  ]' if value else '  "hedges": []')
            else:
                fields.append(f"  {json.dumps(key)}: {json.dumps(value)}")
        return "{\n" + ",\n".join(fields) + "\n}\n"

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """A task that dies (or a keeper that ends while nobody asked it to stop) leaves the daemon unable to hedge:
        it says so loudly, turns unhealthy, and stops feeding systemd's watchdog so that systemd restarts it."""
        if task.cancelled() or self._stopping:
            return
        error = task.exception()
        if error is None and task not in self._keeper_tasks:
            return  # a feed that ended, a summary sent: their work is done
        reason = repr(error) if error is not None else "the keeper stopped by itself"
        self.ops.dead_tasks[task.get_name()] = reason
        message = (
            f"daemon task {task.get_name()} died ({reason}): the daemon cannot do all its work, reports itself "
            "unhealthy and stops feeding the systemd watchdog, so systemd restarts it"
        )
        if self.events is not None:
            self.events.emit("daemon", "", "daemon_task_failed", Severity.CRITICAL, task=task.get_name(), error=reason, message=message)
        else:
            self.log.critical("daemon_task_failed", task=task.get_name(), error=reason, message=message)
        systemd.notify(f"STATUS=unhealthy: task {task.get_name()} died")

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

    async def _open_holdings(self) -> None:
        """Build a venue for each holdings account (coins only, no hedges), read-only; warn of a key that can trade.

        Nothing is sent to a holdings account but reads of its spot wallet and price, at each look of a hedge that counts
        it, and (where a buffer allows it) the refill withdrawals of `engine.refill`.
        """
        assert self.events is not None
        for account in self.settings.accounts:
            if account.hedges or account.name in self._holdings:
                continue
            try:
                # A paper holdings account keeps no state: its coins are what the config says, every start.
                setup = self._make_venue(account) if self.venue_factory is not None else build_holdings(account, self.clock, None)
            except ConfigError as exc:
                raise StartupRefused(f"holdings account {account.name!r}: {exc}") from exc
            self._holdings[account.name] = setup
            if setup.simulated is not None:
                # A paper holdings account's prices (what its coins are valued at there) move by its own feeds.
                log = self.log.bind(account=account.name, hedge="-")
                self._tasks.extend(
                    asyncio.create_task(self._step_feed(setup.simulated, run, log, ()), name=f"price feed {account.name}/{run.symbol}")
                    for run in setup.feeds
                )
            if account.mode != "live":
                continue
            try:
                facts = await setup.venue.fetch_account_facts()
            except ExchangeError as exc:
                self.events.emit(account.name, "-", "holdings_key_unchecked", Severity.WARNING, error=str(exc),
                                 message=f"the key of holdings account {account.name!r} could not be checked: {exc}")
                continue
            refills = any(
                h.buffer is not None and h.buffer.allow_withdraw and h.buffer.refill_from == account.name
                for a in self.settings.accounts for h in a.hedges
            )  # the config lets it withdraw the buffer's refill: that power is asked for
            powers = [name for name, held in (("withdraw", facts.can_withdraw and not refills), ("trade spot", facts.can_trade_spot),
                                              ("trade futures", facts.can_trade_futures)) if held]
            if powers:
                self.events.emit(
                    account.name, "-", "holdings_key_can_trade", Severity.WARNING, powers=", ".join(powers),
                    message=f"the key of holdings account {account.name!r} can {', '.join(powers)}: hedgebot only reads "
                    "its balances; give it a read-only key",
                )

    def _refill_of(self, hedge: HedgeConfig) -> Refill | None:
        """Return the shared refill of the holdings account a buffered hedge withdraws from (None: deposits by hand).

        One per holdings account, whichever hedges refill from it, so that they never withdraw for the same gap
        twice; it starts knowing every withdrawal from that account the journal holds.
        """
        buffer = hedge.buffer
        if buffer is None or buffer.refill_from is None:
            return None
        name = buffer.refill_from
        venue = self._holdings[name].venue
        if buffer.allow_withdraw and not getattr(venue, "withdrawals_supported", False):
            raise StartupRefused(
                f"hedge {hedge.name!r}: buffer.allow_withdraw, but hedgebot cannot withdraw from account "
                f"{name!r} ({type(venue).__name__}) yet: set allow_withdraw = false and deposit by hand"
            )
        refill = self._refills.get(name)
        if refill is None:
            assert self.journal is not None
            refill = self._refills[name] = Refill(name, venue)  # type: ignore[arg-type]  # checked above when it may withdraw
            completed = [str(e.detail.get("client_id")) for e in self.journal.events(kind="withdrawal_completed")]
            refill.remember(self.journal.intents(), completed)
        return refill

    async def _refill_address_checked(self, runtime: AccountRuntime, hedge: HedgeConfig) -> bool:
        """Tell whether a refill may pay its address: refuse the start when it is not the hedging account's own.

        An address the venue cannot confirm now (its read failed, or it cannot say) is never paid: the refill is off
        until a restart confirms it, with a critical event saying so.
        """
        buffer = hedge.buffer
        if buffer is None or not buffer.allow_withdraw or buffer.withdraw_address is None:
            return True
        settle = hedge.symbol.rpartition(":")[2]  # the contract's settlement asset margins it
        ask = getattr(runtime.venue, "fetch_deposit_address", None)
        try:
            own = await ask(settle, buffer.withdraw_network) if ask is not None else None
        except ExchangeError as exc:
            own, why = None, f"its deposit address could not be read ({exc})"
        else:
            why = "the venue cannot say its deposit address"
        if own is None:
            assert self.events is not None
            self.events.emit(
                runtime.config.name, hedge.name, "refill_disabled", Severity.CRITICAL, address=buffer.withdraw_address,
                message=f"{why}: {buffer.withdraw_address} cannot be confirmed as this account's own, so the buffer's "
                "refill is off until a restart confirms it; deposit by hand",
            )
            return False
        if own != buffer.withdraw_address:
            raise StartupRefused(
                f"hedge {hedge.name!r}: buffer.withdraw_address {buffer.withdraw_address} is not account "
                f"{runtime.config.name!r}'s deposit address for {settle} ({own}): a refill would pay "
                "someone else; set it to the account's own address"
            )
        return True

    def _holding_price_symbol(self, account: str, symbol: str) -> str | None:
        """Return the symbol a holdings account prices the hedged coins by: a live one's, or a paper one's listed market."""
        config = next(a for a in self.settings.accounts if a.name == account)
        if config.paper is None:
            return symbol  # a live exchange: its contract of that name, or (a spot-only one) its spot pair
        return symbol if any(m.symbol == symbol for m in config.paper.markets) else None

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

    async def _stop_operations(self) -> None:
        if self.http is not None:
            await self.http.stop()
            self.http = None
        if self.alerts is not None:
            await self.alerts.stop()

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

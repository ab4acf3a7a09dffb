"""The daemon's leadership of accounts on the shared (PostgreSQL) journal: leases, takeover and failover.

Owns opening the shared journal, taking, renewing, losing and releasing each account's lease, and the lease
figures shown on /status and /metrics. It may not reconcile an account itself (it asks the start-up part,
`_start_account`, under a renewed lease) nor send anything to a venue; the fence (`engine.fencing`) refuses a
lapsed lease's calls.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hedgebot.clock import Clock, monotonic_of
from hedgebot.config import ConfigError, Settings
from hedgebot.domain.model import Severity
from hedgebot.engine.account_runtime import AccountRuntime
from hedgebot.engine.keeper import Keeper, StartupDeferred, StartupRefused, StartupStopped
from hedgebot.exchange.port import ExchangeError
from hedgebot.ops import systemd
from hedgebot.ops.events import EventLog
from hedgebot.ops.health import Operations
from hedgebot.store.journal import JournalStore, JournalUnavailable
from hedgebot.store.lease import LeaseChange


class AccountLeases:
    """Lead accounts under a lease on the shared journal (a part of Daemon)."""

    # The daemon's state this part reads or sets (Daemon.__init__ makes it):
    _keeper_tasks: list[asyncio.Task[None]]
    _stop_asked: asyncio.Event | None
    accounts: list[AccountRuntime]
    clock: Clock
    events: EventLog | None
    holder: str
    journal: JournalStore | None
    keepers: list[Keeper]
    log: Any
    ops: Operations
    settings: Settings
    standby: bool

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

"""Starting one account: build its venue, check the key and the position mode, build its keepers and reconcile.

Owns everything between an account's lock and its keepers' first tick: the venue (fenced by a lease when there
is one), the key and mode checks, refusing a second writer, building each keeper or put leg, and settling the
journal's open intents. It may not take locks or leases (`engine.daemon`, `engine.daemon_leases`) nor start the
keepers' tasks; comparing legs and wallets with the journal is `engine.daemon_compare`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from hedgebot.clock import Clock
from hedgebot.config import AccountConfig, ConfigError, Settings
from hedgebot.domain.model import PositionMode, Severity
from hedgebot.domain.schedule import CalendarEvent
from hedgebot.engine.account_runtime import AccountRuntime
from hedgebot.engine.fencing import FencedPort
from hedgebot.engine.holdings import AccountHoldings
from hedgebot.engine.keeper import Keeper, StartupRefused
from hedgebot.engine.put_leg import live_put_leg, paper_put_leg
from hedgebot.engine.startup_checks import UNRESTRICTED_KEY, key_problems
from hedgebot.exchange.factory import VenueSetup, build_venue, paper_setup
from hedgebot.exchange.paper import PaperVenue
from hedgebot.exchange.port import AuthenticationFailed, ExchangeError, ExchangePort, ModeError
from hedgebot.ops.events import EventLog
from hedgebot.store.journal import JournalStore
from hedgebot.store.space import MB, DiskGuard


# How far back start-up looks for orders another hedgebot daemon sent to a live account.
FOREIGN_ORDER_WINDOW_SECONDS = 24 * 3600
# An OK free-space reading serves every hedge for this long: one statvfs a second, not one per hedge per tick.
# Filling the disk from the warning threshold to the stop one inside it is not a realistic race, and a write
# that fails anyway is refused by the journal and makes the guard ask again (the keeper calls DiskGuard.forget on JournalUnavailable).
DISK_READING_MAX_AGE_SECONDS = 1.0


def _amounts(balances: dict[str, dict[str, str]]) -> dict[str, dict[str, Decimal]]:
    return {wallet: {k: Decimal(v) for k, v in book.items()} for wallet, book in balances.items()}


def _hedgebot_id(client_id: str | None) -> bool:
    """Tell whether a client id has the shape hedgebot gives its orders (`hb`, then letters and digits)."""
    return bool(client_id) and client_id.startswith("hb") and client_id.isalnum()  # type: ignore[union-attr]


class AccountStartup:
    """Open and reconcile an account before its keepers run (a part of Daemon)."""

    # The daemon's state this part reads or sets (Daemon.__init__ makes it):
    _disk_guard: DiskGuard | None
    _holdings: dict[str, VenueSetup]
    calendar: tuple[CalendarEvent, ...]
    clock: Clock
    events: EventLog | None
    journal: JournalStore | None
    log: Any
    only: tuple[str, str] | None
    settings: Settings
    state_dir: Path
    venue_factory: Callable[[AccountConfig], ExchangePort | VenueSetup] | None

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

"""Holdings accounts (coins only, read-only) and the buffer refills that withdraw from them.

Owns building a venue for each holdings account, checking its key's powers, the shared Refill per holdings
account and confirming a refill's address as the hedging account's own. It may not send anything to a holdings
account but reads and the refills' withdrawals, nor trade on any account.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from hedgebot.clock import Clock
from hedgebot.config import AccountConfig, ConfigError, HedgeConfig, Settings
from hedgebot.domain.model import Severity
from hedgebot.engine.account_runtime import AccountRuntime
from hedgebot.engine.keeper import StartupRefused
from hedgebot.engine.refill import Refill
from hedgebot.exchange.factory import VenueSetup, build_holdings
from hedgebot.exchange.port import ExchangeError, ExchangePort
from hedgebot.ops.events import EventLog
from hedgebot.store.journal import JournalStore


class HoldingsAccounts:
    """Read holdings accounts and refill buffers from them (a part of Daemon)."""

    # The daemon's state this part reads or sets (Daemon.__init__ makes it):
    _holdings: dict[str, VenueSetup]
    _refills: dict[str, Refill]
    _tasks: list[asyncio.Task[None]]
    clock: Clock
    events: EventLog | None
    journal: JournalStore | None
    log: Any
    settings: Settings
    venue_factory: Callable[[AccountConfig], ExchangePort | VenueSetup] | None

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

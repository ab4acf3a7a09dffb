"""What the daemon runs for one account: its config, venue, keepers, locks, streams and lease.

Owns the AccountRuntime record only. It starts, stops and decides nothing: the daemon's parts fill it in.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hedgebot.config import AccountConfig
from hedgebot.engine.account_lock import AccountLock
from hedgebot.engine.fencing import FencedPort
from hedgebot.engine.keeper import Keeper
from hedgebot.engine.ownership import IdentityLock
from hedgebot.engine.streams import StreamSupervisor
from hedgebot.exchange.factory import FeedRun, VenueSetup
from hedgebot.exchange.port import ExchangePort
from hedgebot.store.lease import Lease


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

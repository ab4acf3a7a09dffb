"""Withdrawals from one exchange account to another's deposit address: what a venue that may send them promises.

Only the buffer's refill uses them (`[accounts.hedges.buffer] allow_withdraw`): the margin asset withdrawn
from a holdings account to the hedging account's deposit address, which must be on the sending exchange's
whitelist (its address book with whitelisting on: the exchange itself refuses any other address). A
withdrawal carries the client id of its journaled intent (Binance `withdrawOrderId`), so one whose answer
was lost is found again by that id and never sent twice.

The paper network stands in for the chain between paper accounts of one daemon: a withdrawal leaves the
sender at once and arrives at the address's account only after the sender's `withdrawal_seconds`, the
harsh branch of "processing may take" on every exchange.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from hedgebot.clock import Clock


@dataclass(frozen=True)
class WithdrawalRequest:
    """A withdrawal to send: how much of which asset, to which address (and network), under which client id."""

    asset: str
    amount: Decimal
    address: str
    network: str | None
    client_id: str


@dataclass(frozen=True)
class Withdrawal:
    """A withdrawal as the sending exchange recorded it."""

    venue_id: str
    client_id: str
    asset: str
    amount: Decimal
    address: str
    status: str  # "processing", "completed", "failed" (cancelled or rejected after it was accepted)
    timestamp: float


class Withdrawer(Protocol):
    """A venue that may send withdrawals (a holdings account the buffer refills from)."""

    async def free_spot_balance(self, asset: str) -> Decimal:
        """Return how much of `asset` the spot wallet (which a withdrawal is paid from) holds free."""
        ...

    async def withdrawal_whitelisted(self, asset: str, address: str, network: str | None) -> bool:
        """Tell whether the exchange's whitelist holds `address` for `asset` (and network)."""
        ...

    async def withdraw(self, request: WithdrawalRequest) -> Withdrawal:
        """Send a withdrawal; raise the port's errors (an ambiguous one leaves it to `find_withdrawal`)."""
        ...

    async def find_withdrawal(self, client_id: str, since: float) -> Withdrawal | None:
        """Find a withdrawal by its client id among those sent since `since` (None: not seen)."""
        ...


@dataclass
class _InFlight:
    address: str
    asset: str
    amount: Decimal
    arrives_at: float
    arrived: Callable[[], object]  # tells the sender it completed


@dataclass
class PaperNetwork:
    """The chain between the paper accounts of one clock: addresses, and the withdrawals on their way."""

    accounts: dict[str, Callable[[str, Decimal], object]] = field(default_factory=dict)  # address -> credit its spot
    in_flight: list[_InFlight] = field(default_factory=list)

    def register(self, address: str, credit: Callable[[str, Decimal], object]) -> None:
        """Let `address` receive: `credit(asset, amount)` books an arrival in that paper account's spot."""
        self.accounts[address] = credit

    def send(self, address: str, asset: str, amount: Decimal, arrives_at: float, arrived: Callable[[], object]) -> None:
        """Put a withdrawal on its way to `address`; `arrived` is called when it is credited."""
        self.in_flight.append(_InFlight(address, asset, amount, arrives_at, arrived))

    def deliver(self, now: float) -> None:
        """Credit every withdrawal whose time has come to its address's account (an unknown address keeps it)."""
        due = [w for w in self.in_flight if w.arrives_at <= now and w.address in self.accounts]
        for withdrawal in due:
            self.in_flight.remove(withdrawal)
            self.accounts[withdrawal.address](withdrawal.asset, withdrawal.amount)
            withdrawal.arrived()



_NETWORKS: weakref.WeakKeyDictionary[Clock, PaperNetwork] = weakref.WeakKeyDictionary()


def paper_network(clock: Clock) -> PaperNetwork:
    """Return the paper network of the accounts that share `clock` (one daemon's)."""
    network = _NETWORKS.get(clock)
    if network is None:
        network = _NETWORKS[clock] = PaperNetwork()
    return network

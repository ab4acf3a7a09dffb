"""The account as the user-data streams push it: legs and balances served without a REST read while it can be trusted.

Each figure (one contract's legs, one futures asset's balance, the spot wallet)
is seeded by a REST read and then kept by the exchange's pushes (`AccountPush`).
A figure is served from here only while all of these hold:

- every stream that carries its kind is live, on the same connection as when
  the figure was seeded (a reconnect may have lost pushes: read again at once);
- no action of the account is under way or in doubt since the seed (an order,
  a margin change, a transfer, a lookup of an earlier action), and no fill was
  reported since: the balance push for a fill may lag or be lost, so the first
  read after any of these goes to REST;
- no push for the figure arrived while its REST read was under way (which of
  the two is newer cannot be told: read again);
- the seed is younger than the reconciliation interval (drawn for each seed within 12.5 % either side of
  it, seeded, so that the accounts of one IP started together do not all read at the same minute);
- for a futures balance: no cross leg is open on the asset, since the free
  balance of a cross account moves with the price and no push says so.

Anything else is read over REST, and the answer seeds the figure again.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hedgebot.domain.model import PositionSide
from hedgebot.exchange.port import FuturesBalance, Legs
from hedgebot.exchange.streaming import AccountPush

FUTURES = "futures"
SPOT = "spot"


# The reconciliation of each figure falls due within this fraction of the interval either side of it.
RECONCILE_SPREAD = 0.125


@dataclass
class _Entry:
    value: Any
    due: float  # when the slow reconciliation reads it again
    connection: int  # the carrying streams' connection count when seeded
    dirty: bool = False


@dataclass
class _Read:
    """A REST read under way: what it must not have missed."""

    pushes: int
    touches: int
    connection: int


class AccountCache:
    """The streamed figures of one account, and when each may be served instead of a REST read."""

    def __init__(self, now: Callable[[], float], reconcile_seconds: float, seed: int = 0) -> None:
        self.now = now
        self.reconcile_seconds = reconcile_seconds
        self._random = random.Random(seed)
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._pushes: dict[tuple[str, str], int] = {}  # pushes seen per figure, to tell one that came during a read
        self._touches = 0  # actions, lookups and fills seen: a read that spans one is not trusted
        self.hits: dict[str, int] = {}
        self.reads: dict[str, int] = {}

    # ---- what changes it --------------------------------------------------------------

    def touch(self) -> None:
        """Forget that any figure is current: an action or a lookup may have changed the account."""
        self._touches += 1
        for entry in self._entries.values():
            entry.dirty = True

    def apply(self, push: AccountPush) -> None:
        """Take a push: its figures replace the cached ones; a fill or a bare spot delta sends the next reads to REST."""
        for (symbol, side), leg in push.legs.items():
            key = ("legs", symbol)
            self._count(key)
            entry = self._entries.get(key)
            if entry is not None:
                legs: Legs = entry.value
                entry.value = Legs(leg if side is PositionSide.LONG else legs.long, leg if side is PositionSide.SHORT else legs.short)
        for asset, (wallet, cross) in push.futures.items():
            key = (FUTURES, asset)
            self._count(key)
            entry = self._entries.get(key)
            if entry is None:
                continue
            balance: FuturesBalance = entry.value
            if balance.cross_wallet is None:
                entry.dirty = True  # a venue that reads no cross wallet cannot move its free balance by the push
                continue
            # Free moves with the cross wallet while no cross leg is open (then nothing else moves it; see _cross_open).
            entry.value = FuturesBalance(wallet, max(Decimal(0), balance.free + cross - balance.cross_wallet), cross)
        if push.spot:
            key = (SPOT, "")
            self._count(key)
            entry = self._entries.get(key)
            if entry is not None:
                held = dict(entry.value)
                for asset, total in push.spot.items():
                    if total:
                        held[asset] = total
                    else:
                        held.pop(asset, None)
                entry.value = held
        for symbol in push.reread:
            self._count(("legs", symbol))
            entry = self._entries.get(("legs", symbol))
            if entry is not None:
                entry.dirty = True
        if push.fills:
            self.touch()
        if push.spot_moved:
            self._count((SPOT, ""))
            entry = self._entries.get((SPOT, ""))
            if entry is not None:
                entry.dirty = True

    def _count(self, key: tuple[str, str]) -> None:
        self._pushes[key] = self._pushes.get(key, 0) + 1

    # ---- serving ----------------------------------------------------------------------

    def get(self, kind: str, key: str, connection: int | None) -> Any | None:
        """Return the cached figure when it may be served now (`connection`: the carrying streams' count, None when not live)."""
        entry = self._entries.get((kind, key))
        if (
            entry is None or connection is None or entry.dirty or entry.connection != connection
            or self.now() >= entry.due
            or (kind == FUTURES and self._cross_open())
        ):
            return None
        self.hits[kind] = self.hits.get(kind, 0) + 1
        return entry.value

    def _cross_open(self) -> bool:
        return any(
            leg.is_open and leg.margin == 0
            for (kind, _), entry in self._entries.items() if kind == "legs"
            for leg in (entry.value.long, entry.value.short)
        )

    def start_read(self, kind: str, key: str, connection: int | None) -> _Read:
        """Note what a REST read of a figure must not miss (call before sending it)."""
        self.reads[kind] = self.reads.get(kind, 0) + 1
        return _Read(self._pushes.get((kind, key), 0), self._touches, connection if connection is not None else -1)

    def seed(self, kind: str, key: str, value: Any, read: _Read) -> None:
        """Keep a REST answer; it is served only if no push, action or reconnect came while it was read."""
        spanned = self._pushes.get((kind, key), 0) != read.pushes or self._touches != read.touches
        due = self.now() + self.reconcile_seconds * self._random.uniform(1 - RECONCILE_SPREAD, 1 + RECONCILE_SPREAD)
        self._entries[(kind, key)] = _Entry(value, due, read.connection, dirty=spanned or read.connection < 0)

    def peek(self, kind: str, key: str) -> Any | None:
        """Return the cached figure whether or not it may be served (for status and tests)."""
        entry = self._entries.get((kind, key))
        return None if entry is None else entry.value

"""Coins of a hedge's asset held outside the account it trades on: where they are counted, and what a count may do.

A hedge may count coins held elsewhere beside its account's spot (`[accounts.hedges.exposure]`):
- `file`: a custody system's file (parsed by `hedgebot.engine.custody`), counted when the file says;
- `accounts`: the spot wallets of other accounts of the config, read-only, counted when read.

Each is a `HoldingsSource`. The keeper asks every source at each look and keeps each one's last good
count; `held_elsewhere` folds them into the one reading the policy judges (`domain.model.HeldElsewhere`):
their sum; stale when a count is older than its source's limit (growth is held, reductions and top-ups
go on); unknown while a source has never been read (the leg is held both ways: coins that cannot be read
are not gone). This module may read files and venues; it never trades.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from hedgebot.domain.model import ZERO, HeldElsewhere
from hedgebot.engine.custody import CustodyCount, CustodyFileError, read_custody_file
from hedgebot.exchange.port import ExchangeError, ExchangePort
from hedgebot.ops.figures import duration


class HoldingsUnreadable(Exception):
    """A source of holdings could not be read now."""


class HoldingsSource(Protocol):
    """Somewhere coins of the asset are held and counted."""

    name: str  # how messages and status name it ("custody file /var/...", "account cold")
    max_age: float  # seconds a count may grow the hedge for

    async def count(self, asset: str, now: float) -> CustodyCount:
        """Return how many coins of `asset` the source holds and when they were counted; raise HoldingsUnreadable."""
        ...


@dataclass(frozen=True)
class FileHoldings:
    """A custody system's file, counted when the file says."""

    path: Path
    max_age: float

    @property
    def name(self) -> str:
        """Name the source as messages do."""
        return f"custody file {self.path}"

    async def count(self, asset: str, now: float) -> CustodyCount:
        """Read the file (small and local: read inline, so simulated time stays deterministic)."""
        try:
            return read_custody_file(self.path, asset, now)
        except CustodyFileError as exc:
            raise HoldingsUnreadable(str(exc)) from None
        except (ArithmeticError, ValueError, OSError) as exc:  # whatever a file holds, it is a read that failed
            raise HoldingsUnreadable(f"{self.name}: {exc}") from None


@dataclass(frozen=True)
class AccountHoldings:
    """The spot wallet of another account of the config, read-only, counted when read.

    With `price_symbol`, the account's price of the asset is read beside the count: the price the holding is
    valued at where it is held, which `status` compares with the hedging venue's mark.
    """

    account: str
    venue: ExchangePort
    max_age: float
    price_symbol: str | None = None

    @property
    def name(self) -> str:
        """Name the source as messages do."""
        return f"account {self.account}"

    async def count(self, asset: str, now: float) -> CustodyCount:
        """Read the account's spot balances."""
        try:
            balances = await self.venue.fetch_spot_balances()
        except ExchangeError as exc:
            raise HoldingsUnreadable(f"account {self.account}: {exc}") from None
        return CustodyCount(balances.get(asset, ZERO), now)

    async def price(self) -> Decimal | None:
        """Read the asset's price on the account (None when it has none or the read fails)."""
        if self.price_symbol is None:
            return None
        try:
            price = (await self.venue.fetch_mark_price(self.price_symbol)).price
        except (ExchangeError, KeyError, ArithmeticError):
            return None
        return price if price.is_finite() and price > 0 else None


def held_elsewhere(
    sources: Sequence[HoldingsSource], counts: Mapping[str, CustodyCount], errors: Mapping[str, str], now: float,
) -> HeldElsewhere | None:
    """Fold each source's last good count (and its last read's error) into one reading (None: no source)."""
    if not sources:
        return None
    names = ", ".join(s.name for s in sources)
    error = "; ".join(errors[s.name] for s in sources if s.name in errors) or None
    unread = [s for s in sources if s.name not in counts]
    if unread:
        return HeldElsewhere(ZERO, None, names, error=error or f"{unread[0].name}: no count yet")
    stale: list[str] = []
    for source in sources:
        age = now - counts[source.name].at
        if age > source.max_age:
            failed = f"; the last read failed: {errors[source.name]}" if source.name in errors else ""
            stale.append(f"the count of {source.name} is {duration(age)} old (limit {duration(source.max_age)}){failed}")
    amount = sum((counts[s.name].amount for s in sources), Decimal(0))
    oldest = min(counts[s.name].at for s in sources)
    # Only a price read at this look: an old one beside a fresh mark would show a spread that is not there.
    priced = next((s for s in sources if counts[s.name].price is not None and s.name not in errors), None)
    return HeldElsewhere(
        amount, oldest, names, stale="; ".join(stale) or None, error=error,
        price=counts[priced.name].price if priced is not None else None, price_source=priced.name if priced is not None else "",
        parts=tuple((s.name, counts[s.name].amount, counts[s.name].at) for s in sources),
    )

"""What `status` shows of a put leg: the PutLegStatus record and its JSON form.

Owns the status record only; the put leg (`engine.put_leg`) makes a new one each tick. It may not read a venue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class PutLegStatus:
    """What `status` shows of a put leg."""

    account: str
    name: str
    floor: Decimal
    strike: Decimal | None
    expiry: float | None
    held: Decimal
    target: Decimal
    premium_paid: Decimal  # premiums and fees of every purchase, quote currency
    premium_last_30d: Decimal
    put_payoff: Decimal  # sales and settlements received
    mark_value: Decimal
    delta: Decimal  # coins: the held puts' delta times their amount (negative)
    waiting: str | None
    updated_at: float | None  # None before the first tick
    state: str = "starting"  # "active", "waiting" while the leg waits for a quote or for premium, "stopped" after a stop

    def to_json(self) -> dict[str, Any]:
        """Return the status as JSON-safe values."""
        def iso(at: float | None) -> str | None:
            return None if at is None else datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")

        return {
            "account": self.account, "name": self.name, "instrument": "put", "floor": str(self.floor),
            "strike": None if self.strike is None else str(self.strike), "expiry": iso(self.expiry),
            "held": str(self.held), "target": str(self.target), "premium_paid": str(self.premium_paid),
            "premium_last_30d": str(self.premium_last_30d), "put_payoff": str(self.put_payoff),
            "mark_value": str(self.mark_value), "delta": str(self.delta), "waiting": self.waiting, "state": self.state,
            "updated_at": iso(self.updated_at),
        }

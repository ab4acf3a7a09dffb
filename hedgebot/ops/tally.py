"""Running totals per hedge, counted from the events as they pass.

What a scrape of /metrics or a look at /status needs beyond the keeper's
latest status: orders by result, fees, top-ups and funding.
They count from the daemon's start; `hedgebot report` reads the same figures
from the journal for any period.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from hedgebot.ops.events import EventRecord

ZERO = Decimal(0)

ORDER_RESULTS = {
    "order_filled": "filled",
    "action_rejected": "rejected",
    "action_not_executed": "not_executed",
    "outcome_unknown": "unknown",
}


def number(value: Any) -> Decimal | None:
    """Return a journaled figure as a Decimal, or None when it is not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


@dataclass
class HedgeTally:
    """Totals for one hedge since the daemon started."""

    orders: Counter[str] = field(default_factory=Counter)
    fees: Decimal = ZERO
    topups: int = 0
    topup_amount: Decimal = ZERO
    released_amount: Decimal = ZERO
    funding_received: Decimal = ZERO
    funding_paid: Decimal = ZERO

    def to_json(self) -> dict[str, Any]:
        """Return the totals as JSON-ready data, amounts as strings."""
        return {
            "orders": dict(self.orders),
            "fees": str(self.fees),
            "topups": self.topups,
            "topup_amount": str(self.topup_amount),
            "margin_released": str(self.released_amount),
            "funding_received": str(self.funding_received),
            "funding_paid": str(self.funding_paid),
        }


class Tally:
    """Count every hedge's events; subscribe `count` to the EventLog."""

    def __init__(self) -> None:
        self.hedges: dict[tuple[str, str], HedgeTally] = {}

    def of(self, account: str, hedge: str) -> HedgeTally:
        """Return one hedge's totals (zeros when nothing happened yet)."""
        return self.hedges.setdefault((account, hedge), HedgeTally())

    def count(self, event: EventRecord) -> None:
        """Add one event to its hedge's totals."""
        tally = self.of(event.account, event.hedge)
        detail = event.detail
        kind = event.kind
        if kind in ORDER_RESULTS and detail.get("action", "order") == "order":
            tally.orders[ORDER_RESULTS[kind]] += 1
        if kind == "order_filled":
            tally.fees += number(detail.get("fee")) or ZERO
        elif kind == "margin_adjusted":
            amount = number(detail.get("amount")) or ZERO
            if amount > 0:
                tally.topups += 1
                tally.topup_amount += amount
            else:
                tally.released_amount += -amount
        elif kind == "funding":
            amount = number(detail.get("amount")) or ZERO
            if amount >= 0:
                tally.funding_received += amount
            else:
                tally.funding_paid += -amount

"""Changes to the short that hedgebot did not make, and their likely cause.

The keeper knows what the short should be: what it saw last, moved by its own
fills (journaled, partial fills included). When the venue shows something
else, someone or something else acted on the leg:
- it shrank or vanished past the liquidation price: a liquidation;
- it shrank while the short was in profit: auto-deleveraging (the exchange
  closes profitable positions against bankrupt ones);
- it shrank otherwise: unknown (a manual trade, another tool);
- it grew: someone else is trading the leg (a person, a second bot).

Nothing here knows which venue it runs on: it compares sizes and prices.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hedgebot.domain.model import Snapshot

LIQUIDATION = "liquidation"
ADL = "auto-deleveraging"
UNKNOWN = "unknown"
FOREIGN = "someone else's trade"


@dataclass(frozen=True)
class Surprise:
    """The short is not what our own fills say it should be."""

    expected: Decimal
    seen: Decimal
    cause: str
    explanation: str

    @property
    def change(self) -> Decimal:
        """Return the unexplained change of the short (negative: it shrank)."""
        return self.seen - self.expected


def likely_cause(
    expected: Decimal, snapshot: Snapshot, liquidation_price: Decimal | None, liquidated: bool, deleveraged: bool = False
) -> tuple[str, str]:
    """Name the likely cause of the short moving from `expected` to what `snapshot` shows, and explain it.

    `liquidated` and `deleveraged` say the venue itself reported a liquidation or an
    auto-deleveraging of the short since the last observation.
    """
    seen = snapshot.short.size
    mark = snapshot.mark_price
    if seen > expected:
        return FOREIGN, "the short grew without an order of ours: someone else trades this leg (a person or another bot)"
    if liquidated or (liquidation_price is not None and mark >= liquidation_price):
        where = f" (liquidation price {liquidation_price}, mark {mark})" if liquidation_price is not None else ""
        return LIQUIDATION, f"the mark crossed the short's liquidation price{where}"
    if deleveraged:
        return ADL, "the exchange reported auto-deleveraging of the short (its own order closed it against a bankrupt trader)"
    entry = snapshot.short.entry_price
    if seen > 0 and 0 < mark < entry:
        return ADL, f"the short was in profit (entry {entry}, mark {mark}): the exchange's auto-deleveraging is likely"
    return UNKNOWN, "no liquidation price was crossed: a manual trade or another tool is likely"


class ShortWatch:
    """What the short should be, from what was last seen and our own fills since."""

    def __init__(self) -> None:
        self.expected: Decimal | None = None

    def our_fill(self, change: Decimal) -> None:
        """Move the expectation by a fill of ours (positive: the short grew)."""
        if self.expected is not None:
            self.expected += change

    def forget(self) -> None:
        """Drop the expectation (an outcome is unknown); the next observation sets it afresh."""
        self.expected = None

    def check(
        self, snapshot: Snapshot, liquidation_price: Decimal | None, liquidated: bool, deleveraged: bool = False
    ) -> Surprise | None:
        """Compare the venue's short with the expectation; return the surprise, if any, and expect what is seen now."""
        expected, seen = self.expected, snapshot.short.size
        self.expected = seen
        if expected is None or seen == expected:
            return None
        cause, explanation = likely_cause(expected, snapshot, liquidation_price, liquidated, deleveraged)
        return Surprise(expected, seen, cause, explanation)

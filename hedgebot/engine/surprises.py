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

from hedgebot.domain.model import PositionSide, Snapshot

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
    expected: Decimal, snapshot: Snapshot, liquidation_price: Decimal | None, liquidated: bool, deleveraged: bool = False,
    side: PositionSide = PositionSide.SHORT, previous_entry: Decimal | None = None,
) -> tuple[str, str]:
    """Name the likely cause of the short moving from `expected` to what `snapshot` shows, and explain it.

    `liquidated` and `deleveraged` say the venue itself reported a liquidation or an
    auto-deleveraging of the short since the last observation. `previous_entry` is the leg's
    entry price when it was last seen: a leg closed whole has no entry price of its own.
    """
    leg = snapshot.leg_of(side)
    name = side.value
    seen = leg.size
    mark = snapshot.mark_price
    if seen > expected:
        return FOREIGN, f"the {name} grew without an order of ours: someone else trades this leg (a person or another bot)"
    # A short is liquidated by a rally (mark at or above its liquidation price), a long by a fall.
    crossed = liquidation_price is not None and (
        mark >= liquidation_price if side is PositionSide.SHORT else mark <= liquidation_price
    )
    if liquidated or crossed:
        where = f" (liquidation price {liquidation_price}, mark {mark})" if liquidation_price is not None else ""
        return LIQUIDATION, f"the mark crossed the {name}'s liquidation price{where}"
    if deleveraged:
        return ADL, f"the exchange reported auto-deleveraging of the {name} (its own order closed it against a bankrupt trader)"
    entry = leg.entry_price
    if seen > 0 and mark > 0 and leg.unrealized_pnl(mark) > 0:
        return ADL, f"the {name} was in profit (entry {entry}, mark {mark}): the exchange's auto-deleveraging is likely"
    if seen == 0 and mark > 0 and previous_entry is not None and previous_entry > 0:
        # Closed whole: judged on the entry it had. Whether the polling or the exchange's own report comes
        # first must not change the cause a user reads.
        in_profit = mark < previous_entry if side is PositionSide.SHORT else mark > previous_entry
        if in_profit:
            return ADL, (
                f"the {name} was in profit (entry {previous_entry}, mark {mark}) and was closed whole: "
                "the exchange's auto-deleveraging is likely"
            )
    return UNKNOWN, "no liquidation price was crossed: a manual trade or another tool is likely"


class ShortWatch:
    """What the short should be, from what was last seen and our own fills since."""

    def __init__(self, side: PositionSide = PositionSide.SHORT) -> None:
        self.side = side  # the hedge's leg: the short, or the long of a long hedge
        self.expected: Decimal | None = None
        self.entry: Decimal | None = None  # the leg's entry price when last seen open

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
        leg = snapshot.leg_of(self.side)
        expected, seen, entry = self.expected, leg.size, self.entry
        self.expected = seen
        if seen > 0:
            self.entry = leg.entry_price
        if expected is None or seen == expected:
            return None
        cause, explanation = likely_cause(expected, snapshot, liquidation_price, liquidated, deleveraged, self.side, entry)
        return Surprise(expected, seen, cause, explanation)

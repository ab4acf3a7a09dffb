"""Circuit breakers: stop a hedge that behaves as no healthy hedge does.

Each breaker watches one kind of trouble in a rolling window of the keeper's
clock and, when it trips, names the trading state the hedge must move to and
why. The keeper records the change; only a person (`hedgebot resume`) moves
the hedge back.

- too many orders, or too much notional, in the window: `reducing`
  (a runaway loop is stopped from growing the short; reductions still go);
- repeated rejections by the venue: `halted` (something is wrong with the
  account or the requests; a person must look);
- a second liquidation within the window: `halted`;
- a price jump beyond the guard that the next reading did not confirm:
  `reducing` (the price source cannot be trusted to grow the short on).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal

from hedgebot.config import BreakersConfig
from hedgebot.domain.trading import TradingState


@dataclass(frozen=True)
class Trip:
    """A breaker that tripped: the state the hedge moves to, and why."""

    breaker: str
    state: TradingState
    reason: str


class CircuitBreakers:
    """The breakers of one hedge, fed by the keeper with what happened and when."""

    def __init__(self, config: BreakersConfig) -> None:
        self.config = config
        self._orders: deque[tuple[float, Decimal]] = deque()
        self._rejections: deque[float] = deque()
        self._liquidations: deque[float] = deque()
        self._busy: deque[float] = deque()

    def reset(self) -> None:
        """Forget what was counted: a person looked and resumed the hedge."""
        self._orders.clear()
        self._rejections.clear()
        self._liquidations.clear()

    @staticmethod
    def _trim(window: deque, now: float, seconds: float, key: int | None = None) -> None:
        while window and (window[0][key] if key is not None else window[0]) <= now - seconds:
            window.popleft()

    def order_filled(self, now: float, notional: Decimal) -> Trip | None:
        """Count an order that went through; trip when the window holds too many or too much."""
        config = self.config
        if not config.enabled:
            return None
        self._orders.append((now, notional))
        self._trim(self._orders, now, config.window_seconds, key=0)
        count = len(self._orders)
        total = sum((n for _, n in self._orders), Decimal(0))
        window = f"{config.window_seconds:g}s"
        if count > config.max_orders:
            return Trip("order_rate", TradingState.REDUCING, f"{count} orders in {window}, limit {config.max_orders}")
        if config.max_notional is not None and total > config.max_notional:
            return Trip("order_notional", TradingState.REDUCING, f"{total:.2f} notional traded in {window}, limit {config.max_notional}")
        return None

    def order_rejected(self, now: float, error: str) -> Trip | None:
        """Count a rejection; trip when they repeat."""
        config = self.config
        if not config.enabled:
            return None
        self._rejections.append(now)
        self._trim(self._rejections, now, config.rejection_window_seconds)
        count = len(self._rejections)
        if count >= config.max_rejections:
            return Trip(
                "rejections", TradingState.HALTED,
                f"{count} rejections in {config.rejection_window_seconds:g}s (last: {error})",
            )
        return None

    def exchange_busy(self, now: float) -> float | None:
        """Count a busy answer (a throttle, price protection); past the limit, return until when to slow down.

        Unlike rejections, busy answers never halt the hedge: they say the exchange is struggling, not
        that our requests are wrong.
        """
        config = self.config
        if not config.enabled:
            return None
        self._busy.append(now)
        self._trim(self._busy, now, config.busy_window_seconds)
        if len(self._busy) >= config.max_busy:
            return now + config.busy_window_seconds
        return None

    def liquidated(self, now: float) -> Trip | None:
        """Count a liquidation of the short; trip on the second within the window."""
        config = self.config
        if not config.enabled:
            return None
        self._liquidations.append(now)
        self._trim(self._liquidations, now, config.liquidation_window_seconds)
        if len(self._liquidations) >= 2:
            return Trip(
                "second_liquidation", TradingState.HALTED,
                f"{len(self._liquidations)} liquidations within {config.liquidation_window_seconds:g}s",
            )
        return None

    def jump_unconfirmed(self, suspect: Decimal, price: Decimal) -> Trip | None:
        """Trip on a jumped price that the next reading did not confirm."""
        if not (self.config.enabled and self.config.unconfirmed_jump):
            return None
        return Trip(
            "unconfirmed_jump", TradingState.REDUCING,
            f"the price jumped to {suspect} and the next reading ({price}) did not confirm it",
        )

"""Crossings worth telling: a hedge leaving and re-entering its band, and the
short's liquidation distance falling below the warning level and recovering.

The band crossings are one event each, so reports can measure the time spent
outside the band from the journal. A low liquidation distance is an alert of
its own code in the hedge's AlertBook: raised once when the distance crosses
below the level, kept while it stays there (the book repeats it at its
interval), and resolved when the distance climbs back over the level.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hedgebot.domain.model import Severity
from hedgebot.domain.policy import Plan
from hedgebot.ops.alerts import AlertBook
from hedgebot.ops.figures import Figure, Precision, render

LIQUIDATION_LOW = "liquidation_distance_low"
UNDER_HEDGED = "under_hedged"
# A stretch outside the band ended because the hedge stopped being meant to follow its target.
BAND_UNWATCHED = "band_unwatched"
# The distance must climb this far above the warning level (relatively) before
# the warning counts as resolved, so a price hovering at the level is one crossing.
_REARM = Decimal("1.1")

Emit = Callable[..., None]


class HedgeWatch:
    """Follow one hedge's plans and announce each crossing."""

    def __init__(self, alerts: AlertBook, emit: Emit, clock_now: Callable[[], float]) -> None:
        self._alerts = alerts
        self._emit = emit
        self._now = clock_now
        self._in_band: bool | None = None
        self._left_at: float | None = None
        self._low = False
        self._worst: Decimal | None = None
        self._under_since: float | None = None

    @property
    def distance_low(self) -> bool:
        """Return whether the liquidation distance is below the warning level now."""
        return self._low

    def observe(self, plan: Plan, warning_distance: Decimal, meant: bool = True) -> None:
        """Compare this plan with the previous one and announce the crossings.

        A hedge not `meant` to follow its target (closed, unwinding, paused by a person)
        has no band to leave: a stretch outside ends with `band_unwatched`, and no
        `band_left` is said until it is meant again.
        """
        if meant:
            self._band(plan)
        else:
            self._unwatch(plan)
        self._distance(plan, warning_distance)

    def _unwatch(self, plan: Plan) -> None:
        if self._in_band is False:
            outside = self._now() - self._left_at if self._left_at is not None else None
            self._emit(BAND_UNWATCHED, Severity.INFO, seconds_outside=outside, exposure=plan.exposure, short=plan.short)
        self._in_band = None
        self._left_at = None

    def _band(self, plan: Plan) -> None:
        if plan.in_band == self._in_band or (self._in_band is None and plan.in_band):
            self._in_band = plan.in_band
            return
        now = self._now()
        figures: dict[str, Any] = {"exposure": plan.exposure, "short": plan.short, "target": plan.target, "drift": plan.drift}
        if plan.in_band:
            outside = now - self._left_at if self._left_at is not None else None
            self._emit("band_returned", Severity.INFO, seconds_outside=outside, **figures)
            self._left_at = None
        else:
            self._emit("band_left", Severity.INFO, **figures)
            self._left_at = now
        self._in_band = plan.in_band

    def under_hedge(
        self, plan: Plan, cause: str | None, *, at_once: bool, after: float, in_flight: bool, asset: str,
        precision: Precision | None = None,
    ) -> None:
        """Raise one critical `under_hedged` alert while the short stays below its band, and resolve it back in band.

        `cause` is None when the hedge is not meant to be hedged now (closed, or paused by a person).
        Time with an order in flight does not count; a cause that no wait can cure (`at_once`: no margin,
        an order size the market refuses) raises it at once, any other after `after` seconds.
        """
        shown = precision or Precision()

        def coins(value: Decimal) -> str:
            return f"{render(value, Figure.AMOUNT, shown)} {asset}"

        under = cause is not None and plan.target > 0 and not plan.in_band and plan.drift < 0
        if not under:
            self._under_since = None
            if UNDER_HEDGED in self._alerts.active:
                why = "no longer meant to be hedged" if cause is None else "back in its band"
                self._alerts.resolve(
                    UNDER_HEDGED, f"{why}: short {coins(plan.short)} against a target of {coins(plan.target)}",
                    short=plan.short, target=plan.target, drift=plan.drift,
                )
            return
        now = self._now()
        if self._under_since is None:
            if in_flight:
                return
            self._under_since = now
        lasted = now - self._under_since
        if not (at_once or lasted >= after):
            return
        missing = -plan.drift
        self._alerts.raise_alert(
            UNDER_HEDGED, Severity.CRITICAL,
            f"under-hedged: short {coins(plan.short)} against a target of {coins(plan.target)}, "
            f"{coins(missing)} unhedged for {lasted:.0f}s; cause: {cause}",
            missing=missing, short=plan.short, target=plan.target, cause=cause, seconds=round(lasted, 3),
        )

    def _distance(self, plan: Plan, level: Decimal) -> None:
        distance = plan.distance
        if self._low and (distance is None or distance >= level * _REARM):
            self._low = False
            worst = f"; the worst was {self._worst:.2%}" if self._worst is not None else ""
            now = "the short is closed" if distance is None else f"liquidation distance back to {distance:.2%}"
            self._alerts.resolve(
                LIQUIDATION_LOW, f"{now} (warning level {level:.2%}){worst}",
                distance=distance, worst_distance=self._worst, level=level,
            )
            self._worst = None
            return
        if not self._low and (distance is None or distance >= level):
            return
        assert distance is not None
        self._low = True
        self._worst = distance if self._worst is None else min(self._worst, distance)
        self._alerts.raise_alert(
            LIQUIDATION_LOW, Severity.WARNING,
            f"liquidation distance {distance:.2%} is below the warning level {level:.2%}",
            distance=distance, level=level, worst_distance=self._worst, liquidation_price=plan.liquidation_price, short=plan.short,
        )

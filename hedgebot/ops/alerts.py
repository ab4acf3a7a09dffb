"""The alert lifecycle: raised when a condition begins, repeated while it lasts, resolved when it clears.

An alert is one kind of trouble (its `code`) on one hedge. The first time a
condition is seen it goes out at once as an `alert` event with state
`raised`; while it lasts it goes out again every `repeat_seconds` (state
`repeated`), so a person who missed it hears again without a flood; when it
clears an `alert_resolved` event says so, how long it lasted, and the figures
as they are at resolution (the raised message is kept as `raised_message`). Every one of
these passes through the `EventLog`, so alert senders and metrics subscribe
there and see exactly what the journal records.

The keeper calls `raise_alert` for each condition it sees during a tick and
`end_tick` once the tick is over: conditions not seen again are resolved, and
those still active are repeated when due.

Repeats are timed on the `pace` clock, the one a person waits on: in a replay
the events carry the candles' time, but a lasting alert is repeated every
`repeat_seconds` of the watcher's time, not every replayed quarter hour (which
would be a flood when a day is replayed in a minute). Elsewhere both clocks
are the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hedgebot.clock import Clock, monotonic_of
from hedgebot.domain.model import Severity
from hedgebot.ops.events import EventLog
from hedgebot.ops.figures import duration

DEFAULT_REPEAT_SECONDS = 900.0
ALERT = "alert"
ALERT_RESOLVED = "alert_resolved"

# Conditions of the keeper itself, judged on every tick. Every other code comes
# from the plan, which is only judged on a tick that got as far as planning.
KEEPER_CONDITIONS = frozenset({"trading_blocked", "venue_unreadable", "tick_failed", "keeper_error", "unsettled_actions"})


@dataclass
class ActiveAlert:
    """One condition that is going on now."""

    code: str
    severity: Severity
    message: str
    since: float
    last_sent: float  # on the pace clock
    repeats: int = 0
    detail: dict[str, Any] | None = None
    sticky: bool = False  # cleared only by `resolve`, not by a tick that does not see it
    began: float = 0.0  # on the monotonic clock: how long it lasted survives a step of the wall clock


class AlertBook:
    """The active alerts of one hedge, and the events that announce them."""

    def __init__(
        self,
        events: EventLog,
        clock: Clock,
        account: str,
        hedge: str,
        repeat_seconds: float = DEFAULT_REPEAT_SECONDS,
        pace: Clock | None = None,
    ) -> None:
        self.events = events
        self.clock = clock
        self.pace = pace or clock
        self._monotonic = monotonic_of(clock)
        self.account = account
        self.hedge = hedge
        self.repeat_seconds = repeat_seconds
        self.active: dict[str, ActiveAlert] = {}
        self._seen: set[str] = set()
        # Say the figures as they are now, for a resolution that brings no message of its own.
        self.describe: Callable[[str], str] | None = None

    def raise_alert(self, code: str, severity: Severity, message: str, *, sticky: bool = False, **detail: Any) -> None:
        """Say that `code` is going on: announce it at once if it is new (or more severe than before)."""
        self._seen.add(code)
        current = self.active.get(code)
        if current is not None and _rank(severity) <= _rank(current.severity):
            current.message, current.detail = message, detail
            return
        since = current.since if current is not None else self.clock.now()
        began = current.began if current is not None else self._monotonic()
        alert = ActiveAlert(code, severity, message, since, self.pace.now(), detail=detail, sticky=sticky, began=began)
        self.active[code] = alert
        self._send(alert, "raised")

    def resolve(self, code: str, message: str | None = None, **detail: Any) -> None:
        """Say that `code` has cleared, with `message` (else the figures now); announce it if it was active."""
        alert = self.active.pop(code, None)
        if alert is None:
            return
        self._seen.discard(code)
        lasted = self._monotonic() - alert.began
        now = message if message is not None else (self.describe(code) if self.describe is not None else "")
        text = f"{code} resolved after {duration(lasted)}" + (f": {now}" if now else "")
        self.events.emit(
            self.account, self.hedge, ALERT_RESOLVED, Severity.INFO, code=code, state="resolved",
            message=text, raised_message=alert.message, since=alert.since, lasted_seconds=round(lasted, 3),
            **detail,
        )

    def end_tick(self, plan_judged: bool) -> None:
        """Resolve what this tick did not see again, and repeat what is still going on and due."""
        for code in list(self.active):
            alert = self.active[code]
            if code in self._seen or alert.sticky:
                continue
            if code in KEEPER_CONDITIONS or plan_judged:
                self.resolve(code)
        self._seen.clear()
        self.repeat_due()

    def repeat_due(self) -> None:
        """Send again every active alert whose last announcement is `repeat_seconds` old."""
        now = self.pace.now()
        for alert in self.active.values():
            if now - alert.last_sent >= self.repeat_seconds:
                alert.repeats += 1
                alert.last_sent = now
                self._send(alert, "repeated")

    def codes(self) -> Iterable[str]:
        """Return the codes of the active alerts."""
        return tuple(self.active)

    def worst(self) -> Severity | None:
        """Return the highest severity among the active alerts."""
        return max((a.severity for a in self.active.values()), key=_rank, default=None)

    def _send(self, alert: ActiveAlert, state: str) -> None:
        self.events.emit(
            self.account, self.hedge, ALERT, alert.severity, code=alert.code, state=state, message=alert.message,
            since=alert.since, repeats=alert.repeats, **(alert.detail or {}),
        )


def _rank(severity: Severity) -> int:
    return [Severity.INFO, Severity.WARNING, Severity.CRITICAL].index(severity)

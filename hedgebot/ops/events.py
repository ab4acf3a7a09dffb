"""Events: what happened to a hedge, logged, journaled and handed to subscribers in one place.

Every figure a user might want (fills, top-ups, funding, alerts) is an event
with structured fields, not only a log line. Anything that wants to hear about
events (alert senders, metrics, reports) subscribes here rather than reading
the log, so that `EventLog.emit` stays the single place events pass through.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from hedgebot.clock import Clock
from hedgebot.domain.model import Severity
from hedgebot.ops.figures import Precision, render_detail
from hedgebot.store.journal import Journal, JournalUnavailable

_LEVELS = {Severity.INFO: "info", Severity.WARNING: "warning", Severity.CRITICAL: "critical"}


class NullLogger:
    """A logger that drops everything: backtests and simulations keep their events in the journal."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


@dataclass(frozen=True)
class EventRecord:
    """One event as subscribers receive it; `at` is seconds since the epoch on the daemon's clock."""

    at: float | None
    account: str
    hedge: str
    kind: str
    severity: Severity
    detail: dict[str, Any] = field(default_factory=dict)
    precision: Precision | None = None  # the steps of the hedge's market, for words made of the detail

    def shown(self) -> dict[str, Any]:
        """Return the detail with each figure as people read it: at the market's steps once they are known, else plain."""
        return render_detail(self.detail, self.precision)


EventListener = Callable[[EventRecord], None]


class EventLog:
    """Send events to the log, the journal and every subscriber, and count them."""

    def __init__(self, journal: Journal | None, logger: Any | None = None, clock: Clock | None = None) -> None:
        self.journal = journal
        self.log = logger or structlog.get_logger("hedgebot")
        self.clock = clock if clock is not None else (journal.clock if journal is not None else None)
        self.counts: Counter[str] = Counter()
        self._listeners: list[EventListener] = []
        # The steps each hedge's figures are shown at in log lines (the journal keeps them as recorded).
        self._precisions: dict[tuple[str, str], Precision] = {}

    def show_figures(self, account: str, hedge: str, precision: Precision) -> None:
        """Log the figures of `hedge`'s events at `precision` from now on."""
        self._precisions[(account, hedge)] = precision

    def subscribe(self, listener: EventListener) -> None:
        """Call `listener` with every event emitted from now on (after it is journaled)."""
        self._listeners.append(listener)

    def emit(
        self, account: str, hedge: str, kind: str, severity: Severity = Severity.INFO, *, at: float | None = None, **detail: Any
    ) -> None:
        """Record one event; `at` backdates it (a funding settlement reported after the fact)."""
        self.counts[kind] += 1
        when = at if at is not None else (self.clock.now() if self.clock is not None else None)
        if self.journal is not None:
            try:
                self.journal.record_event(account, hedge, kind, severity.value, detail, at=when)
            except JournalUnavailable as exc:
                # The journal is what failed: the event still reaches the log and the senders.
                self.log.error("event_not_journaled", kind=kind, account=account, hedge=hedge, error=str(exc))
        self._announce(EventRecord(when, account, hedge, kind, severity, detail))

    def journaled_elsewhere(self, records: Sequence[EventRecord]) -> None:
        """Log, count and hand out events the caller journaled itself (with an intent's outcome, in one transaction)."""
        for record in records:
            self.counts[record.kind] += 1
            self._announce(record)

    def _announce(self, record: EventRecord) -> None:
        if record.precision is None:
            record = replace(record, precision=self._precisions.get((record.account, record.hedge)))
        getattr(self.log, _LEVELS[record.severity])(record.kind, account=record.account, hedge=record.hedge, **record.shown())
        for listener in self._listeners:
            try:
                listener(record)
            except Exception as exc:  # noqa: BLE001 - a failing subscriber must not stop the hedge
                self.log.error("event_listener_failed", listener=repr(listener), error=repr(exc))

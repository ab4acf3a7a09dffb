"""Events: what happened to a hedge, logged and journaled in one place.

Every figure a user might want (fills, top-ups, funding, alerts) is an event
with structured fields, not only a log line, so later issues can send alerts
out and reports can sum them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import structlog

from hedgebot.domain.model import Severity
from hedgebot.store.journal import Journal

_LEVELS = {Severity.INFO: "info", Severity.WARNING: "warning", Severity.CRITICAL: "critical"}


class NullLogger:
    """A logger that drops everything: backtests and simulations keep their events in the journal."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


class EventLog:
    """Send events to the log and the journal, and count them."""

    def __init__(self, journal: Journal | None, logger: Any | None = None) -> None:
        self.journal = journal
        self.log = logger or structlog.get_logger("hedgebot")
        self.counts: Counter[str] = Counter()

    def emit(self, account: str, hedge: str, kind: str, severity: Severity = Severity.INFO, **detail: Any) -> None:
        """Record one event."""
        self.counts[kind] += 1
        if self.journal is not None:
            self.journal.record_event(account, hedge, kind, severity.value, detail)
        getattr(self.log, _LEVELS[severity])(kind, account=account, hedge=hedge, **detail)

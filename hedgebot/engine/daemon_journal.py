"""The journal's integrity, as the daemon sees it: refuse a damaged SQLite journal at start, check it while running.

Owns the start-up refusal (JournalDamaged, with its critical alert), the periodic quick_check and the one-time
report of a recovered journal. It may not repair the journal (that is `hedgebot journal recover`) nor stop a
keeper other than by marking the journal damaged and waking it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from hedgebot.clock import Clock
from hedgebot.config import Settings
from hedgebot.domain.model import Severity
from hedgebot.engine.keeper import Keeper, StartupRefused
from hedgebot.ops.events import EventLog
from hedgebot.ops.senders import build_dispatcher
from hedgebot.store import integrity
from hedgebot.store.journal import JournalStore


class JournalDamaged(StartupRefused):
    """The journal fails its integrity check: trading on it could send an order twice."""


class JournalChecks:
    """Check the journal before and while the keepers trade on it (a part of Daemon)."""

    # The daemon's state this part reads or sets (Daemon.__init__ makes it):
    _journal_checked_at: float | None
    clock: Clock
    events: EventLog | None
    journal: JournalStore | None
    keepers: list[Keeper]
    log: Any
    settings: Settings

    async def _refuse_a_damaged_journal(self) -> None:
        """Check the journal before anything trades; a damaged one refuses the start, with a critical alert saying what to do."""
        path = self.settings.journal.path
        if not path.exists():
            return
        problems = await asyncio.to_thread(integrity.quick_check, path)
        if not problems:
            return
        message = f"the journal {path} is damaged ({'; '.join(problems[:3])}): nothing was started; {integrity.damage_advice(path)}"
        self.log.critical("journal_damaged", path=str(path), problems=problems[:10], message=message)
        # The senders do not need the journal: the alert goes out before the start is refused.
        dispatcher = build_dispatcher(self.settings, self.clock)
        await dispatcher.start()
        dispatcher.send("journal_damaged", Severity.CRITICAL, message, path=str(path))
        await dispatcher.stop()
        raise JournalDamaged(message)

    async def check_journal(self) -> list[str]:
        """Run PRAGMA quick_check on the journal off the event loop; a damaged one stops every keeper sending anything."""
        assert self.journal is not None
        path = self.settings.journal.path
        problems = await asyncio.to_thread(integrity.quick_check, path)
        if problems and self.journal is not None and self.journal.damage is None:
            self.journal.damage = "; ".join(problems[:3])
            self.log.critical("journal_damaged", path=str(path), problems=problems[:10], advice=integrity.damage_advice(path))
            for keeper in self.keepers:
                keeper.wake.set()  # each keeper raises its critical alert and stops sending now, not at its next tick
        return problems

    async def _check_journal_when_due(self) -> None:
        """Check the journal when check_interval_seconds have passed since the last check (called by the status writer)."""
        if self.settings.journal.url is not None:
            return  # PostgreSQL checks its own pages; quick_check is SQLite's
        now = self.clock.now()
        if self._journal_checked_at is not None and now - self._journal_checked_at < self.settings.journal.check_interval_seconds:
            return
        self._journal_checked_at = now
        try:
            await self.check_journal()
        except (OSError, sqlite3.Error) as exc:
            self.log.error("journal_check_failed", path=str(self.settings.journal.path), error=str(exc))

    def _report_recovery(self) -> None:
        """Say once, at the first start after `hedgebot journal recover`, that the journal was rebuilt and is reconciled now."""
        assert self.journal is not None and self.events is not None
        recovered = self.journal.meta("recovered_at")
        if recovered is None or self.journal.meta("recovery_reported") == recovered:
            return
        self.events.emit(
            "daemon", "", "journal_recovered", Severity.WARNING, recovered_from=self.journal.meta("recovered_from"),
            note="the journal was rebuilt from a damaged one: orders left open are looked up on the exchange and each "
            "short is compared with the fills the journal still holds before trading; rows that could not be read are "
            "missing from history",
        )
        self.journal.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('recovery_reported', ?)", (recovered,))

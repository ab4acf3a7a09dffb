"""The daemon's status file (`<state_dir>/status.json`) and the clock-step watch that rides on its loop.

Owns rendering each hedge's status, writing the file atomically when something changed or a heartbeat is due
(off the event loop on the real clock), and the periodic journal check and clock-step alert the writer's round
triggers. It may not change a keeper's status, only read it.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hedgebot.clock import Clock
from hedgebot.config import Settings
from hedgebot.domain.model import Severity
from hedgebot.engine.clock_step import ClockStepWatch
from hedgebot.engine.keeper import Keeper
from hedgebot.ops.events import EventLog
from hedgebot.ops.figures import iso_utc


STATUS_FILE = "status.json"
STATUS_HEARTBEAT_SECONDS = 30.0  # the status file is rewritten at least this often, changed or not
_LEASE_AGES = ("lease_age_seconds", "may_send_seconds")  # they change every round: not a change by themselves


class StatusWriting:
    """Write every hedge's status to the status file (a part of Daemon)."""

    # The daemon's state this part reads or sets (Daemon.__init__ makes it):
    _journal_checked_at: float | None
    _real_time: bool
    _rendered: dict[tuple[str, str], tuple[Any, dict[str, Any]]]
    _status_clock: Callable[[], float]
    _status_lock: threading.Lock
    _status_seen: Any
    _status_texts: dict[int, tuple[dict[str, Any], str]]
    _status_written_at: float
    clock: Clock
    clock_watch: ClockStepWatch
    events: EventLog | None
    keepers: list[Keeper]
    log: Any
    only: tuple[str, str] | None
    settings: Settings
    state_dir: Path

    async def _write_status_forever(self) -> None:
        failing_since: float | None = None
        self._journal_checked_at = self.clock.now()  # checked at start-up
        while True:
            await self.clock.sleep(self.settings.daemon.status_interval_seconds)
            # The journal's integrity check rides on this loop: no timer of its own to move a stepping clock on.
            await self._check_journal_when_due()
            self._check_clock_step()
            try:
                await self._write_status_if_changed()
            except OSError as exc:
                # A full disk must not end the status writer: say so once a minute and keep trying.
                now = self.clock.now()
                if failing_since is None or now - failing_since >= 60:
                    self.log.error("status_not_written", path=str(self.state_dir / STATUS_FILE), error=str(exc))
                    failing_since = now
            else:
                failing_since = None

    def _check_clock_step(self) -> None:
        """Raise a critical clock_step alert when the wall clock stepped, either way, since the last look."""
        step = self.clock_watch.check()
        if step is None or self.events is None:
            return
        direction = "back" if step < 0 else "forward"
        self.events.emit(
            "daemon", "", "clock_step", Severity.CRITICAL, step_seconds=round(step, 3),
            message=f"the system's wall clock stepped {direction} by {abs(step):.0f}s: waits, timeouts and rate limits "
            "run on the monotonic clock and carry on, but signed requests carry the wall time and the exchange refuses "
            "them outside its window, and journal times jump; check the time source (NTP)",
        )

    def _statuses_pending(self) -> tuple[list[tuple[tuple[str, str], Any, dict[str, Any] | None]], bool]:
        """Return every hedge's status with its rendering when one is held (None: still to render), and whether any
        status was replaced since the last round. Cheap: identities only, so it runs on the event loop."""
        rendered: dict[tuple[str, str], tuple[Any, dict[str, Any] | None]] = {}
        for keeper in self.keepers:
            status = keeper.status
            key = (status.account, status.name)
            held = self._rendered.get(key)
            rendered[key] = held if held is not None and held[0] is status else (status, None)
        fresh = rendered.keys() != self._rendered.keys() or any(rendered[k] is not self._rendered[k] for k in rendered)
        self._rendered = rendered  # hedges removed by a reload are forgotten
        return [(key, status, json_) for key, (status, json_) in rendered.items()], fresh

    def _render(self, pending: list[tuple[tuple[str, str], Any, dict[str, Any] | None]]) -> list[dict[str, Any]]:
        """Render the statuses not rendered yet (a status is immutable: this may run on a worker thread) and keep them."""
        out = []
        for key, status, json_ in pending:
            if json_ is None:
                json_ = status.to_json()
                held = self._rendered.get(key)
                if held is not None and held[0] is status:
                    self._rendered[key] = (status, json_)
            out.append(json_)
        return out

    async def _write_status_if_changed(self) -> None:
        """Write the status file when a hedge's status, a stream or a lease changed, or once a heartbeat is due.

        An idle daemon of many hedges neither renders nor rewrites them each round. On the real clock the file is
        serialized and written on a worker thread, off the event loop the keepers run on; in simulated time it is
        written inline, so that a replay stays deterministic.
        """
        data, fresh = self._status_document(rendered=False)
        now = self._status_clock()  # monotonic: a wall clock stepped back must not hold the heartbeat
        leases = {name: {k: v for k, v in lease.items() if k not in _LEASE_AGES} for name, lease in data.get("leases", {}).items()}
        seen = (data["streams"], leases)
        if not fresh and seen == self._status_seen and now - self._status_written_at < STATUS_HEARTBEAT_SECONDS:
            return
        try:
            if self._real_time:
                # Rendering a thousand statuses takes a while: on the worker thread too, not between two fills.
                await asyncio.to_thread(self._finish_and_write, data)
            else:
                self._finish_and_write(data)
        except BaseException:
            # The change this round carried is not on disk: the next round writes, changed since or not.
            self._status_written_at = -math.inf
            raise
        self._status_seen, self._status_written_at = seen, now

    def write_status(self, document: dict[str, Any] | None = None) -> None:
        """Write the status file (atomically): `document`, or every hedge's status now, whether or not it changed."""
        self._write_status_document(document if document is not None else self._status_document()[0])

    def _status_document(self, rendered: bool = True) -> tuple[dict[str, Any], bool]:
        """Return the status file's content, and whether a hedge's status was replaced since the last round.

        With `rendered` false the hedges are left to `_finish` (statuses not rendered yet), which may run off the loop.
        """
        hedges, fresh = self._statuses_pending()
        data = {"pid": os.getpid(), "updated_at": iso_utc(self.clock.now()), "hedges": hedges, "streams": self.stream_status()}
        if self.settings.journal.url is not None:
            data["leases"] = self.lease_status()
        if rendered:
            self._finish(data)
        return data, fresh

    def _finish_and_write(self, data: dict[str, Any]) -> None:
        self._finish(data)
        self.write_status(data)

    def _finish(self, data: dict[str, Any]) -> None:
        """Render the document's hedges; running one hedge, keep the others' last known status from the file."""
        hedges = self._render(data["hedges"])
        path = self.state_dir / STATUS_FILE
        if self.only is not None and path.exists():
            # Running one hedge (an unwind with no daemon up): keep the others' last known status.
            ours = {(h["account"], h["name"]) for h in hedges}
            try:
                saved = json.loads(path.read_text()).get("hedges", [])
            except (OSError, ValueError):
                saved = []
            hedges = [h for h in saved if (h.get("account"), h.get("name")) not in ours] + hedges
        data["hedges"] = hedges

    def _write_status_document(self, data: dict[str, Any]) -> None:
        path = self.state_dir / STATUS_FILE
        with self._status_lock:  # the stop's last write may meet a worker thread's
            tmp = path.with_suffix(".tmp")
            tmp.write_text(self._status_text(data))
            os.replace(tmp, path)

    def _status_text(self, data: dict[str, Any]) -> str:
        """Return the status file's text: one line a hedge, a hedge's line serialized again only once it was re-rendered.

        Called with the status lock held. The C encoder (no `indent`) serializes each line: a thousand hedges in
        the pure-Python indenting encoder took most of the writer's time.
        """
        texts: dict[int, tuple[dict[str, Any], str]] = {}
        for hedge in data["hedges"]:
            held = self._status_texts.get(id(hedge))
            texts[id(hedge)] = held if held is not None and held[0] is hedge else (hedge, json.dumps(hedge))
        self._status_texts = texts
        fields = []
        for key, value in data.items():
            if key == "hedges":
                lines = ",\n    ".join(texts[id(h)][1] for h in value)
                fields.append(f'  "hedges": [\n    {lines}\n  ]' if value else '  "hedges": []')
            else:
                fields.append(f"  {json.dumps(key)}: {json.dumps(value)}")
        return "{\n" + ",\n".join(fields) + "\n}\n"

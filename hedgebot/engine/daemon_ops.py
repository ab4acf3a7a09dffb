"""The daemon's operations surface: alert senders, metrics, the HTTP endpoint, the start-up summary, systemd's watchdog.

Owns wiring the event log to the tally and the alert dispatcher, serving (and retrying) /healthz, /metrics and
/status, feeding the watchdog and declaring the daemon unhealthy when one of its tasks dies. It may not start or
stop keepers, nor write the status file (`engine.daemon_status`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from hedgebot.clock import Clock
from hedgebot.config import ConfigError, Settings
from hedgebot.domain.model import Severity
from hedgebot.engine.keeper import Keeper, StartupRefused
from hedgebot.exchange.ratelimit import gates_for
from hedgebot.ops import systemd
from hedgebot.ops.events import EventLog
from hedgebot.ops.health import Operations
from hedgebot.ops.http import OpsServer
from hedgebot.ops.senders import AlertDispatcher, build_dispatcher, startup_summary


HTTP_RETRY_SECONDS = 30.0


class OperationsSurface:
    """Serve the daemon's health, metrics and alerts (a part of Daemon)."""

    # The daemon's state this part reads or sets (Daemon.__init__ makes it):
    _http_failed: bool
    _keeper_tasks: list[asyncio.Task[None]]
    _stopping: bool
    alerts: AlertDispatcher | None
    clock: Clock
    events: EventLog | None
    http: OpsServer | None
    keepers: list[Keeper]
    log: Any
    ops: Operations
    settings: Settings

    def _start_operations(self, events: EventLog) -> None:
        events.subscribe(self.ops.tally.count)
        self.alerts = build_dispatcher(self.settings, self.clock)
        events.subscribe(self.alerts.on_event)
        self.ops.extra_figures.append(self.alerts.figures)
        self.ops.extra_figures.append(lambda: {"streams": self.stream_status()})
        self.ops.extra_metrics.append(self.alerts.metrics)
        self.ops.extra_metrics.append(gates_for(self.clock).metrics)  # request weight by host and account (live venues)

    async def _start_http(self) -> bool:
        """Serve the operations endpoint; return False (after a critical event) when the address is taken.

        A taken port does not stop the daemon: hedges unattended for want of a
        monitoring port would be worse. It says so loudly and keeps trying.
        """
        config = self.settings.http
        try:
            token = config.token.resolve("http.token") if config.token is not None else None
        except ConfigError as exc:
            raise StartupRefused(str(exc)) from exc
        server = OpsServer(self.ops, config, token)
        try:
            await server.start()
        except OSError as exc:
            if self.events is not None and self.http is None and not self._http_failed:
                self.events.emit(
                    "daemon", "", "http_unavailable", Severity.CRITICAL,
                    message=f"cannot serve /healthz, /metrics and /status on {config.host}:{config.port}: "
                    f"{exc.strerror or exc}; hedging goes on, and the endpoint is retried every {HTTP_RETRY_SECONDS:.0f}s",
                )
            self._http_failed = True
            return False
        self.http = server
        self.log.info("http_listening", host=config.host, port=server.port)
        return True

    async def _retry_http(self) -> None:
        while not await self._start_http():
            await self.clock.sleep(HTTP_RETRY_SECONDS)

    async def _startup_summary(self, patience: float = 60.0) -> None:
        """Once every keeper has ticked (or after `patience`), send the start-up summary."""
        waited = 0.0
        while waited < patience and any(k.status.updated_at is None for k in self.keepers):
            await self.clock.sleep(0.5)
            waited += 0.5
        severity, text = startup_summary(self.ops)
        assert self.events is not None
        self.events.emit("daemon", "", "startup_summary", severity, message=text)

    async def _feed_watchdog(self, interval: float) -> None:
        """Feed systemd's watchdog from the event loop: a blocked loop stops feeding it."""
        while True:
            if not self.ops.dead_tasks:
                systemd.notify("WATCHDOG=1")  # a daemon with a dead task must not look alive
            await self.clock.sleep(interval)

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """A task that dies (or a keeper that ends while nobody asked it to stop) leaves the daemon unable to hedge:
        it says so loudly, turns unhealthy, and stops feeding systemd's watchdog so that systemd restarts it."""
        if task.cancelled() or self._stopping:
            return
        error = task.exception()
        if error is None and task not in self._keeper_tasks:
            return  # a feed that ended, a summary sent: their work is done
        reason = repr(error) if error is not None else "the keeper stopped by itself"
        self.ops.dead_tasks[task.get_name()] = reason
        message = (
            f"daemon task {task.get_name()} died ({reason}): the daemon cannot do all its work, reports itself "
            "unhealthy and stops feeding the systemd watchdog, so systemd restarts it"
        )
        if self.events is not None:
            self.events.emit("daemon", "", "daemon_task_failed", Severity.CRITICAL, task=task.get_name(), error=reason, message=message)
        else:
            self.log.critical("daemon_task_failed", task=task.get_name(), error=reason, message=message)
        systemd.notify(f"STATUS=unhealthy: task {task.get_name()} died")

    async def _stop_operations(self) -> None:
        if self.http is not None:
            await self.http.stop()
            self.http = None
        if self.alerts is not None:
            await self.alerts.stop()

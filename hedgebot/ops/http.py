"""The operations endpoint over aiohttp: /healthz, /readyz, /metrics, /status.

Bound to 127.0.0.1:9310 unless the config says otherwise. With a bearer
token configured, every path but /healthz needs `Authorization: Bearer <token>`;
a non-loopback address without a token is refused by the config itself.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from hedgebot.clock import runs_simulated_time
from hedgebot.config import HttpConfig
from hedgebot.ops.fdguard import room_for_one_more
from hedgebot.ops.health import Operations
from hedgebot.ops.metrics import build_registry, render
from hedgebot.redact import redact_value

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = {"/healthz"}


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=_dumps(data), status=status, content_type="application/json")


def _dumps(data: Any) -> str:
    return json.dumps(redact_value(data), indent=2, default=str)


class OpsServer:
    """Serve the operations surface of one daemon."""

    def __init__(self, ops: Operations, config: HttpConfig, token: str | None = None, registry: CollectorRegistry | None = None) -> None:
        self.ops = ops
        self.config = config
        self._token = token
        self.registry = registry or build_registry(ops)
        self._runner: web.AppRunner | None = None
        self._server: asyncio.AbstractServer | None = None
        self.port: int | None = None
        self.refused = 0  # connections closed at once: over max_connections or into the descriptor reserve

    def app(self) -> web.Application:
        """Return the aiohttp application (tests serve it through a test server)."""
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/status", self.status)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self._token and request.path not in OPEN_PATHS:
            given = request.headers.get("Authorization", "")
            expected = f"Bearer {self._token}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return web.json_response({"error": "a bearer token is required"}, status=401, headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    async def healthz(self, request: web.Request) -> web.Response:
        """200 while every keeper ticked recently and no task of the daemon died, else 503."""
        health = self.ops.health()
        ok = self.ops.healthy()
        stalled = [f"{h.account}/{h.hedge}" for h in health if h.stalled]
        body: dict[str, Any] = {"ok": ok, "stalled": stalled}
        if self.ops.dead_tasks:
            body["dead_tasks"] = dict(self.ops.dead_tasks)
        return _json(body, 200 if ok else 503)

    async def readyz(self, request: web.Request) -> web.Response:
        """200 when start-up passed, the data is fresh and no hedge is halted, else 503 with the reasons."""
        ready, reasons = self.ops.ready()
        return _json({"ready": ready, "reasons": reasons}, 200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        """Prometheus text of our own registry."""
        body = render(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def status(self, request: web.Request) -> web.Response:
        """Every hedge with its figures, as JSON (serialized on a worker thread: a thousand hedges take a while)."""
        data = self.ops.status_json()
        text = _dumps(data) if runs_simulated_time() else await asyncio.to_thread(_dumps, data)
        return web.Response(text=text, content_type="application/json")

    async def start(self) -> None:
        """Listen on the configured address; raise OSError when it cannot.

        A connection is admitted only while fewer than `max_connections` are open and `fd_reserve`
        descriptors stay free; any other is closed at once. An idle or half-sent connection is
        closed after `idle_timeout_seconds` (aiohttp's keep-alive timer runs from the connection's start).
        """
        self._runner = web.AppRunner(
            self.app(), access_log=None, keepalive_timeout=self.config.idle_timeout_seconds, shutdown_timeout=2.0,
        )
        await self._runner.setup()
        handlers = self._runner.server
        assert handlers is not None

        def admit() -> asyncio.BaseProtocol:
            if len(handlers.connections) >= self.config.max_connections or not room_for_one_more(self.config.fd_reserve):
                self.refused += 1
                return _Refused()
            return handlers()

        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(admit, self.config.host, self.config.port, backlog=128)
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        sockets = self._server.sockets or []
        self.port = sockets[0].getsockname()[1] if sockets else self.config.port

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class _Refused(asyncio.Protocol):
    """A connection over the limits: closed at once, so it gives its descriptor back."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.Transport):
            transport.abort()
        else:
            transport.close()

"""The operations endpoint over aiohttp: /healthz, /readyz, /metrics, /status.

Bound to 127.0.0.1:9310 unless the config says otherwise. With a bearer
token configured, every path but /healthz needs `Authorization: Bearer <token>`;
a non-loopback address without a token is refused by the config itself.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from hedgebot.config import HttpConfig
from hedgebot.ops.health import Operations
from hedgebot.ops.metrics import build_registry, render
from hedgebot.redact import redact_value

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = {"/healthz"}


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(redact_value(data), indent=2, default=str), status=status, content_type="application/json")


class OpsServer:
    """Serve the operations surface of one daemon."""

    def __init__(self, ops: Operations, config: HttpConfig, token: str | None = None, registry: CollectorRegistry | None = None) -> None:
        self.ops = ops
        self.config = config
        self._token = token
        self.registry = registry or build_registry(ops)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

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
        """Every hedge with its figures, as JSON."""
        return _json(self.ops.status_json())

    async def start(self) -> None:
        """Listen on the configured address; raise OSError when it cannot."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        server = site._server  # the bound socket tells the port when the config asks for 0
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.config.port

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

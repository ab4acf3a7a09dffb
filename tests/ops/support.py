"""Shared pieces of the operations tests: a running paper daemon, receivers on 127.0.0.1, waiting for I/O."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from hedgebot.clock import SimClock
from hedgebot.config import Settings
from hedgebot.engine.daemon import Daemon
from tests.helpers import paper_settings_dict


async def eventually(condition: Callable[[], bool], limit: float = 10.0) -> None:
    """Let real I/O (a local HTTP round trip) happen until `condition` holds.

    The limit only stops a broken test from hanging; what is asserted never
    depends on how long the wait took.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("the condition was not reached")
        await asyncio.sleep(0.005)


def free_port() -> int:
    """Return a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Receiver:
    """A webhook or Telegram Bot API stand-in on 127.0.0.1 that records what it is sent."""

    received: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    arrivals: int = 0
    status: int = 200
    answer: dict[str, Any] | None = None
    release: asyncio.Event | None = None  # when set up, each request waits for it: a slow receiver
    server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.arrivals += 1
        body = await request.json()
        if self.release is not None:
            await self.release.wait()
        self.paths.append(request.path_qs)
        if self.status < 300:
            self.received.append(body)
        return web.json_response(self.answer if self.answer is not None else {"ok": self.status < 300}, status=self.status)

    async def start(self, port: int | None = None) -> str:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self.server = TestServer(app, host="127.0.0.1", port=port)
        await self.server.start_server()
        return f"http://127.0.0.1:{self.server.port}"

    async def close(self) -> None:
        if self.release is not None:
            self.release.set()
        if self.server is not None:
            await self.server.close()


def paper_settings(tmp_path: Any, extra: dict[str, Any] | None = None, **hedge: Any) -> Settings:
    """Return the tests' one-hedge paper config, with top-level sections added."""
    data = paper_settings_dict(tmp_path, **hedge)
    data.update(extra or {})
    return Settings(**data)


async def running_daemon(tmp_path: Any, extra: dict[str, Any] | None = None, ticks: float = 5, **hedge: Any) -> tuple[Daemon, SimClock]:
    """Start a paper daemon in simulated time and let it tick."""
    clock = SimClock()
    daemon = Daemon(paper_settings(tmp_path, extra, **hedge), clock)
    await daemon.start()
    await clock.advance(ticks)
    return daemon, clock

"""Shared pieces of the operations tests: a running paper daemon, receivers on 127.0.0.1, waiting for I/O."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
import time
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from hedgebot.clock import SimClock
from hedgebot.config import Settings
from hedgebot.engine.daemon import Daemon
from tests.helpers import paper_settings_dict


class ManualClock:
    """Simulated time that moves only when the test says so, beside real local I/O.

    The alert senders talk to receivers over real sockets on 127.0.0.1. With
    this clock their timeouts and backoffs fall due only at `advance`, never
    because a round trip took long on a busy machine.
    """

    def __init__(self, start: float = 1_600_000_000.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self._now + max(seconds, 0.0), next(self._seq), future))
        await future

    async def wait_for(self, event: asyncio.Event, timeout: float) -> bool:
        sleeper = asyncio.ensure_future(self.sleep(timeout))
        waiter = asyncio.ensure_future(event.wait())
        await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        sleeper.cancel()
        waiter.cancel()
        return event.is_set()

    async def advance(self, seconds: float) -> None:
        """Move time on by `seconds`, waking every sleeper due by then, in order."""
        until = self._now + seconds
        while self._timers and self._timers[0][0] <= until:
            due, _, future = heapq.heappop(self._timers)
            self._now = max(self._now, due)
            if not future.done():
                future.set_result(None)
            for _ in range(5):
                await asyncio.sleep(0)
        self._now = until
        for _ in range(5):
            await asyncio.sleep(0)


async def eventually(condition: Callable[[], bool], limit: float = 20.0) -> None:
    """Let real I/O (a local HTTP round trip) happen until `condition` holds.

    The limit only stops a broken test from hanging; what is asserted never
    depends on how long the wait took.
    """
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition was not reached")
        await asyncio.sleep(0.002)


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

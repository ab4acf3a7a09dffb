"""The emulator counts Binance's request weight per IP, answers 429 past the limit and bans a client that ignores it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest

from hedgebot.testing.binance_emulator import Emulator, serve
from hedgebot.testing.clock import SteppingClock
from tests.emulator_rig import START, free_port

pytestmark = pytest.mark.slow


@asynccontextmanager
async def served(emulator: Emulator) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    port = free_port()
    runner = await serve(emulator, "127.0.0.1", port)
    try:
        async with aiohttp.ClientSession() as session:
            yield session, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_every_answer_reports_the_weight_the_ip_used_this_minute_by_binances_documented_weights() -> None:
    clock = SteppingClock(START)
    async with served(Emulator(now=clock.now)) as (http, url):
        used = []
        for path in ("/fapi/v1/premiumIndex?symbol=BTCUSDT", "/fapi/v1/premiumIndex", "/fapi/v1/exchangeInfo"):
            async with http.get(url + path) as answer:
                used.append(int(answer.headers["X-MBX-USED-WEIGHT-1M"]))
        assert used == [1, 11, 12], "premiumIndex weighs 1 with a symbol and 10 without, exchangeInfo 1"
        async with http.get(url + "/api/v3/exchangeInfo") as answer:
            assert answer.headers["X-MBX-USED-WEIGHT-1M"] == "20", "spot weight is counted apart from futures"
        clock.advance(60.0)
        async with http.get(url + "/fapi/v1/exchangeInfo") as answer:
            assert answer.headers["X-MBX-USED-WEIGHT-1M"] == "1", "the count starts again with each minute"


async def test_past_the_limit_the_emulator_answers_429_with_retry_after_until_the_next_minute() -> None:
    clock = SteppingClock(START - START % 60 + 15)  # 15 s into a minute
    emulator = Emulator(now=clock.now)
    emulator.limiter.limits["/fapi/"] = 3
    async with served(emulator) as (http, url):
        statuses = []
        for _ in range(4):
            async with http.get(url + "/fapi/v1/exchangeInfo") as answer:
                statuses.append(answer.status)
                last = answer
                body = await answer.json()
        assert statuses == [200, 200, 200, 429]
        assert body["code"] == -1003 and last.headers["Retry-After"] == "45"


async def test_a_client_that_keeps_sending_after_a_429_is_banned_with_418_naming_the_bans_end_and_bans_grow() -> None:
    clock = SteppingClock(START - START % 60)
    emulator = Emulator(now=clock.now)
    emulator.limiter.limits["/fapi/"] = 1
    emulator.limiter.ban_after = 2
    async with served(emulator) as (http, url):
        statuses = []
        for _ in range(4):
            async with http.get(url + "/fapi/v1/time") as answer:
                statuses.append(answer.status)
                retry_after, body = answer.headers.get("Retry-After"), await answer.json()
        assert statuses == [200, 429, 429, 418]
        assert retry_after == "120" and f"banned until {int((clock.now() + 120) * 1000)}" in body["msg"]
        clock.advance(121.0)
        async with http.get(url + "/fapi/v1/time") as answer:
            assert answer.status == 200, "the ban is over"
        for _ in range(3):
            async with http.get(url + "/fapi/v1/time") as answer:
                retry_after = answer.headers.get("Retry-After")
        assert answer.status == 418 and retry_after == "240", "a repeat offender is banned twice as long"
        assert [seconds for _, _, seconds in emulator.limiter.bans] == [120.0, 240.0]

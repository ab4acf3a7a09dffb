"""Streams: updates wake listeners at once, failures reconnect with backoff, silence is stale, REST stands in meanwhile."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from hedgebot.clock import SimClock
from hedgebot.engine.streams import StreamedPort, StreamState, StreamSupervisor
from hedgebot.exchange.streaming import StreamSpec
from hedgebot.exchange.port import BadData, PriceQuote

D = Decimal
SYMBOL = "BTC/USDT:USDT"


class Feed:
    """A watcher that returns what the test pushes, or raises what the test drops."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.calls = 0

    async def watch(self) -> Any:
        self.calls += 1
        item = await self.queue.get()
        if isinstance(item, Exception):
            raise item
        return item

    def push(self, item: Any) -> None:
        self.queue.put_nowait(item)


class RestVenue:
    """The REST side: answers mark prices and counts the polls."""

    name = "rest"

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.polls = 0

    async def fetch_mark_price(self, symbol: str) -> PriceQuote:
        self.polls += 1
        return PriceQuote(D(40000), self.clock.now())


def quote(update: Any) -> PriceQuote:
    return PriceQuote(D(str(update["markPrice"])), update["timestamp"] / 1000)


@pytest.fixture
def clock() -> SimClock:
    return SimClock(1_700_000_000.0)


async def test_a_pushed_update_wakes_the_listener_within_one_event_loop_turn(clock: SimClock) -> None:
    feed = Feed()
    supervisor = StreamSupervisor(clock)
    supervisor.add(StreamSpec("positions", feed.watch))
    wake = asyncio.Event()
    supervisor.listen(lambda name, update: wake.set())
    supervisor.start()
    await asyncio.sleep(0)  # the stream task starts and waits
    feed.push({"contracts": 1})
    for _ in range(3):  # the queue hands over, the watcher returns, the supervisor notifies
        await asyncio.sleep(0)
    assert wake.is_set()
    assert supervisor.state("positions") is StreamState.LIVE
    await supervisor.stop()


async def test_a_dropped_stream_is_down_and_reconnects_after_a_jittered_backoff(clock: SimClock) -> None:
    feed = Feed()
    supervisor = StreamSupervisor(clock, seed=7, backoff_base=1.0, backoff_cap=30.0)
    supervisor.add(StreamSpec("orders", feed.watch))
    supervisor.start()
    await clock.settle()
    feed.push(ConnectionError("socket closed"))
    await clock.settle()
    assert supervisor.state("orders") is StreamState.DOWN
    assert supervisor.polling
    [health] = supervisor.health()
    assert (health.reconnects, health.error) == (1, "ConnectionError: socket closed")
    calls = feed.calls
    await clock.advance(1.0)  # the first backoff is drawn from [0, 1] s
    assert feed.calls == calls + 1, "the watcher is called again after the backoff"
    feed.push({"id": "1"})
    await clock.settle()
    assert supervisor.state("orders") is StreamState.LIVE and not supervisor.polling
    await supervisor.stop()


async def test_backoff_grows_while_failures_repeat_and_is_reproducible_from_the_seed(clock: SimClock) -> None:
    delays = []
    for _ in range(2):
        supervisor = StreamSupervisor(clock, seed=3, backoff_base=1.0, backoff_cap=60.0)
        delays.append([supervisor._backoff.delay(n) for n in range(1, 7)])
    assert delays[0] == delays[1]
    caps = [min(60.0, 2 ** (n - 1)) for n in range(1, 7)]
    assert all(0 <= d <= cap for d, cap in zip(delays[0], caps, strict=True))


async def test_a_silent_stream_is_stale_until_it_speaks_again(clock: SimClock) -> None:
    feed = Feed()
    supervisor = StreamSupervisor(clock)
    supervisor.add(StreamSpec("mark", feed.watch, stale_after=10.0))
    supervisor.start()
    await clock.settle()
    feed.push({"markPrice": 50000, "timestamp": 1_700_000_000_000})
    await clock.settle()
    assert supervisor.state("mark") is StreamState.LIVE
    await clock.advance(10.5)
    assert supervisor.state("mark") is StreamState.STALE and supervisor.polling
    feed.push({"markPrice": 50010, "timestamp": 1_700_000_011_000})
    await clock.settle()
    assert supervisor.state("mark") is StreamState.LIVE
    await supervisor.stop()


async def test_the_mark_price_comes_from_the_live_stream_and_from_rest_otherwise(clock: SimClock) -> None:
    feed = Feed()
    rest = RestVenue(clock)
    supervisor = StreamSupervisor(clock)
    supervisor.add(StreamSpec(f"mark {SYMBOL}", feed.watch, stale_after=10.0, quote=quote, symbol=SYMBOL))
    port = StreamedPort(rest, supervisor)  # type: ignore[arg-type]
    supervisor.start()
    await clock.settle()
    assert (await port.fetch_mark_price(SYMBOL)).price == D(40000) and rest.polls == 1  # nothing heard yet: poll
    feed.push({"markPrice": 50000, "timestamp": 1_700_000_000_000})
    await clock.settle()
    assert (await port.fetch_mark_price(SYMBOL)).price == D(50000) and rest.polls == 1  # streamed: no poll
    feed.push(ConnectionError("dropped"))
    await clock.settle()
    assert (await port.fetch_mark_price(SYMBOL)).price == D(40000) and rest.polls == 2  # dropped: polling again
    await clock.advance(1.0)
    feed.push({"markPrice": 50100, "timestamp": 1_700_000_001_000})
    await clock.settle()
    assert (await port.fetch_mark_price(SYMBOL)).price == D(50100) and rest.polls == 2  # restored: polling stops
    await clock.advance(11.0)
    assert (await port.fetch_mark_price(SYMBOL)).price == D(40000) and rest.polls == 3  # stale: not trusted
    await supervisor.stop()


async def test_health_is_data_for_status(clock: SimClock) -> None:
    feed = Feed()
    supervisor = StreamSupervisor(clock)
    supervisor.add(StreamSpec("balance", feed.watch))
    supervisor.start()
    await clock.settle()
    feed.push({"USDT": 1})
    await clock.settle()
    [health] = supervisor.health()
    assert health.to_json() == {"name": "balance", "state": "live", "last_message_at": 1_700_000_000.0, "messages": 1, "reconnects": 0, "error": ""}
    await supervisor.stop()


async def test_stream_state_is_in_the_metrics(clock: SimClock) -> None:
    from hedgebot.engine.streams import stream_metrics

    feed = Feed()
    supervisor = StreamSupervisor(clock)
    supervisor.add(StreamSpec(f"mark {SYMBOL}", feed.watch, stale_after=10.0, quote=quote, symbol=SYMBOL))
    supervisor.start()
    await clock.settle()
    feed.push(ConnectionError("reset by peer"))
    await clock.settle()
    samples = {(m.name, tuple(sorted(s.labels.items()))): s.value for m in stream_metrics("main", supervisor)() for s in m.samples}
    down = ("hedgebot_stream_state", (("account", "main"), ("state", "down"), ("stream", f"mark {SYMBOL}")))
    live = ("hedgebot_stream_state", (("account", "main"), ("state", "live"), ("stream", f"mark {SYMBOL}")))
    assert samples[down] == 1.0 and samples[live] == 0.0
    assert samples[("hedgebot_stream_reconnects", (("account", "main"), ("stream", f"mark {SYMBOL}")))] == 1.0
    assert samples[("hedgebot_stream_polling", (("account", "main"),))] == 1.0
    await supervisor.stop()


async def test_an_update_without_a_usable_price_is_answered_from_rest(clock: SimClock) -> None:
    feed = Feed()
    rest = RestVenue(clock)
    supervisor = StreamSupervisor(clock)

    def strict(update: Any) -> PriceQuote:
        if update.get("markPrice") is None:
            raise BadData("streamed mark price: none in this push")
        return quote(update)

    supervisor.add(StreamSpec(f"mark {SYMBOL}", feed.watch, stale_after=10.0, quote=strict, symbol=SYMBOL))
    port = StreamedPort(rest, supervisor)  # type: ignore[arg-type]
    supervisor.start()
    await clock.settle()
    feed.push({"markPrice": None, "timestamp": 1_700_000_000_000})
    await clock.settle()
    assert (await port.fetch_mark_price(SYMBOL)).price == D(40000) and rest.polls == 1
    await supervisor.stop()
